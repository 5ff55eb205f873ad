"""Where a stage's code lives and where its code records go: ``src/`` of the repository DVC runs in, never wherever
the interpreter finds ``sam4ir`` (the stage ``code`` writes the records; the report names their last commit)."""

from __future__ import annotations

from pathlib import Path

SRC = Path("src")
CODE_RECORDS = Path("data/code")


def module_file(src: Path, name: str) -> Path | None:
    """The file of module ``name`` under ``src`` (a package's ``__init__.py``), or None if it is not one."""
    path = src.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None

"""Thin DVC stage entry points (``python -m sam4ir.stages.<name>``): parse params, call the library, write outs."""

from __future__ import annotations

# First, before anything imports torch, numpy or OpenCV: the CPU code paths every stage computes with.
from sam4ir.cpu_pins import pin_cpu

pin_cpu()

import argparse  # noqa: E402
import atexit  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import sam4ir  # noqa: E402
from sam4ir.errors import Sam4irError  # noqa: E402


def command_parser(doc: str, **kwargs: object) -> argparse.ArgumentParser:
    """A command's parser whose ``--help`` prints ``doc`` (its module docstring) whole and as written: argparse
    would re-wrap its paragraphs and usage lines into one block, and a first line alone stops mid-sentence."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


def _sources(package: Path) -> dict[str, bytes]:
    return {p.relative_to(package).as_posix(): p.read_bytes() for p in package.rglob("*.py")}


def check_source(root: Path | None = None) -> None:
    """Stop when the ``sam4ir`` this interpreter imports is not the code in ``<root>/src`` (the repository whose
    dvc.yaml runs the stage): DVC fingerprints that folder's code, so other code (an editable install of another
    clone) would make results the lock file does not describe. Another folder with the same files passes: a
    ``dvc exp run --temp`` or queued experiment runs in a copy of the repository. Outside a sam4ir repository (no
    dvc.yaml and src/sam4ir), nothing to check."""
    root = Path.cwd() if root is None else root
    here = (root / "src" / "sam4ir").resolve()
    imported = Path(sam4ir.__file__).resolve().parent
    if not (root / "dvc.yaml").is_file() or not here.is_dir() or imported == here:
        return
    theirs, ours = _sources(imported), _sources(here)
    differ = sorted(name for name in theirs.keys() | ours.keys() if theirs.get(name) != ours.get(name))
    if differ:
        raise Sam4irError(f"{imported}: this interpreter imports sam4ir from there, whose {differ[0]} differs from "
                          f"this repository's {here}: run `pip install -e .` here (or set PYTHONPATH=src)")


# ``SAM4IR_TRACE_IMPORTS=<file>``: a stage process appends the sam4ir modules it imported, with its command line, to
# ``<file>`` when it exits (one JSON line): how the pipeline test checks that each stage's code record
# (sam4ir.stages.code) covers every module its process really ran.
TRACE_IMPORTS_ENV = "SAM4IR_TRACE_IMPORTS"


def _trace_imports(log: Path) -> None:
    modules = sorted(name for name, module in list(sys.modules.items())
                     if name.split(".")[0] == "sam4ir" and getattr(module, "__file__", None))
    with open(log, "a") as f:  # several processes may append: one short line each
        f.write(json.dumps({"argv": sys.orig_argv[1:], "modules": modules}) + "\n")


if os.environ.get(TRACE_IMPORTS_ENV):
    atexit.register(_trace_imports, Path(os.environ[TRACE_IMPORTS_ENV]))


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage; a :class:`Sam4irError` becomes one line on stderr and exit status 1. Run as a program (what
    dvc.yaml does), it first checks that it runs this repository's code (:func:`check_source`)."""
    try:
        if main.__module__ == "__main__":
            check_source()
        main()
    except Sam4irError as err:
        print(f"sam4ir: error: {err}", file=sys.stderr)
        sys.exit(1)

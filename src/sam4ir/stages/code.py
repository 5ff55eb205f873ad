"""Stage ``code``: for each stage entry point, one small file standing for exactly the code its process can import.

``data/code/<entry>.json`` (``<entry>``: the module a dvc.yaml command runs, ``sam4ir.stages.<entry>``) holds the
sorted list of this repository's ``src/sam4ir`` modules that the entry point imports, directly or through others, and
their sha256. The list is derived from the code, never kept by hand: every ``import`` and ``from ... import`` anywhere
in a module (inside functions too), a name a package imports lazily on first use (its ``{module: names}`` table for
PEP 562's ``__getattr__``, as ``sam4ir.sam`` has), and the packages that hold them (their ``__init__`` runs first). A stage depends on its entry's file, so an edit re-runs
exactly the stages whose processes can import the edited module. The files are read from ``src/`` of the repository
DVC runs in, never from wherever the interpreter finds ``sam4ir``; :func:`sam4ir.stages.check_source` stops a stage
whose interpreter imports another copy. The file also records the CPU pins every stage sets (``sam4ir.cpu_pins``).

    python -m sam4ir.stages.code        # what dvc.yaml runs; no params
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

from sam4ir.cpu_pins import OPENCV_AVX512, PINS
from sam4ir.errors import Sam4irError
from sam4ir.io import write_json
from sam4ir.stages import command_parser, run_stage
from sam4ir.stages.shared.source import CODE_RECORDS as OUT, SRC, module_file

PACKAGE = "sam4ir"
ENTRIES = PACKAGE + ".stages"  # every module of this package but its helpers is an entry point


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    """The absolute module a relative ``from`` import names, in module ``name``."""
    if not node.level:
        return node.module or ""
    parts = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
    return ".".join([*parts, *([node.module] if node.module else [])])


def lazy_table(tree: ast.Module) -> dict[str, str]:
    """{name: module} of a package that imports names on first use: a dict literal whose keys are ``sam4ir`` module
    names and whose values are tuples of the names each provides (the table its ``__getattr__`` reads)."""
    table: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if (isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.startswith(PACKAGE + ".")
                        and isinstance(value, (ast.Tuple, ast.List))):
                    table |= {item.value: key.value for item in value.elts if isinstance(item, ast.Constant)}
    return table


@lru_cache(maxsize=None)  # a package's __init__ is read again for every ``from package import x``
def parse(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as err:
        raise Sam4irError(f"{path}: not valid Python ({err.msg}, line {err.lineno})") from None


def imported_names(src: Path, path: Path, name: str) -> set[str]:
    """Every module name ``path`` (module ``name``) may import: its import statements anywhere in the file, each
    ``from m import x`` as ``m`` and ``m.x`` (x may be a submodule) or, where package ``m`` imports ``x`` lazily, the
    module that provides it. Names that are not modules are dropped by the caller."""
    names: set[str] = set()
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, name, path.name == "__init__.py")
            package = module_file(src, base) if base.split(".")[0] == PACKAGE else None
            lazy = lazy_table(parse(package)) if package is not None and package.name == "__init__.py" else {}
            names |= {base, *(lazy.get(alias.name, f"{base}.{alias.name}") for alias in node.names)}
    return names


def closure(src: Path, entry: str) -> dict[str, Path]:
    """{module name: file} of every ``sam4ir`` module under ``src`` that running ``entry`` may import, the packages
    that contain each one included (Python runs a package's ``__init__`` before any module inside it)."""
    found: dict[str, Path] = {}
    todo = [entry]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # the module and every package above it
            module = ".".join(parts[:i])
            if module in found or module.split(".")[0] != PACKAGE:
                continue
            path = module_file(src, module)
            if path is None:
                continue  # an attribute imported by name (from m import function), not a module
            found[module] = path
            todo.extend(imported_names(src, path, module))
    return dict(sorted(found.items()))


def entry_points(src: Path) -> list[str]:
    """The stage modules dvc.yaml can run: every module of ``sam4ir.stages`` outside its helpers' subpackages."""
    folder = src.joinpath(*ENTRIES.split("."))
    if not folder.is_dir():
        raise Sam4irError(f"{folder}: not found (run the code stage in the repository root)")
    return sorted(f"{ENTRIES}.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__")


def code_record(src: Path, entry: str) -> dict:
    """{entry, cpu_pins, modules: {name: sha256 of its file}, sha256}: what ``entry``'s process can run."""
    modules = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in closure(src, entry).items()}
    whole = hashlib.sha256("".join(f"{name}\0{digest}\n" for name, digest in modules.items()).encode()).hexdigest()
    return {"entry": entry, "cpu_pins": {**PINS, "where the processor has AVX-512": dict([OPENCV_AVX512])},
            "modules": modules, "sha256": whole}


def write_code_records(src: Path = SRC, out: Path = OUT) -> None:
    """``<out>/<stage module>.json`` for every entry point under ``src``; files of entries that no longer exist go."""
    entries = entry_points(src)
    for entry in entries:
        write_json(out / f"{entry.rsplit('.', 1)[1]}.json", code_record(src, entry))
    kept = {f"{e.rsplit('.', 1)[1]}.json" for e in entries}
    for stale in out.glob("*.json"):
        if stale.name not in kept:
            stale.unlink()


def main() -> None:
    command_parser(__doc__).parse_args()
    write_code_records()


if __name__ == "__main__":
    run_stage(main)

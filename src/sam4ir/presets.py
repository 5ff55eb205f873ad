"""Paper-scale configurations: partial params trees in ``configs/paper/<task>-<model>.yaml``.

``params.yaml`` stays the single source of truth every DVC stage reads; a preset only rewrites it, so
``dvc repro`` / ``dvc exp run`` see an ordinary params change and re-run exactly what it touches. A preset holds
only the keys it sets (the released network and recipe, SAM, data source), and its first line is a ``# comment``
describing it.

    sam4ir presets list
    sam4ir presets apply deblur-nafnet --dry-run    # print the change to params.yaml, write nothing
    sam4ir presets apply deblur-nafnet [--params params.yaml]

Applying edits params.yaml in place with a YAML round trip, so its comments and layout survive; the merged
result is checked against the params schema before anything is written, and ``git checkout params.yaml``
undoes it.
"""

from __future__ import annotations

import copy
import difflib
import io
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from sam4ir.params import config
from sam4ir.errors import Sam4irError
from sam4ir.io import write_bytes
from sam4ir.params.schema import parse_params
from sam4ir.stages import command_parser, run_stage

PRESETS_DIR = Path("configs/paper")  # relative to the repository root, where DVC runs every stage
# Replaced as a whole, never merged key by key: a released network's arguments are the complete constructor call.
REPLACED_UNDER = "model.args."
# Sections a preset may bring although params.yaml lacks them (the download data source is new).
NEW_SECTIONS = ("data.download",)


def preset_names(folder: str | Path = PRESETS_DIR) -> list[str]:
    """Names of the presets in ``folder`` (file names without ``.yaml``), sorted."""
    return sorted(path.stem for path in Path(folder).glob("*.yaml"))


def describe(name: str, folder: str | Path = PRESETS_DIR) -> str:
    """The preset's one-line description: its first line, a ``# comment``."""
    first = _path(name, folder).read_text().partition("\n")[0]
    return first.removeprefix("#").strip() if first.startswith("#") else ""


def load_preset(name: str, folder: str | Path = PRESETS_DIR) -> dict:
    """The partial params tree of preset ``name``; one-line error if unknown or not a YAML mapping."""
    return config.read_mapping(_path(name, folder))


def merge(base: dict, override: dict) -> dict:
    """``override`` deep-merged into a copy of ``base``: mappings merge key by key (except under ``REPLACED_UNDER``),
    anything else (scalars, lists) is replaced; ``base``'s key order is kept, new keys come last."""
    return _merge(base, override, "")


def check_keys(base: dict, override: dict, where: str = "preset", schema: str = "params.yaml") -> None:
    """One-line error naming the first key of ``override`` that ``base`` (the params ``schema``) does not have,
    or that is a mapping on one side only; keys under ``NEW_SECTIONS`` and ``REPLACED_UNDER`` are not checked."""
    _check(base, override, "", where, schema)


def apply(name: str, params_path: str | Path = "params.yaml", folder: str | Path = PRESETS_DIR,
          dry_run: bool = False) -> str:
    """Merge preset ``name`` into ``params_path`` (unless ``dry_run``) and return the change as a unified diff.

    The merged params must pass the schema; the file is rewritten atomically with its comments and layout kept.
    """
    base = config.read_mapping(params_path)
    parse_params(base, str(params_path))
    preset = load_preset(name, folder)
    check_keys(base, preset, where=str(_path(name, folder)), schema=str(params_path))
    parse_params(merge(base, preset), f"{params_path} with preset {name}")
    old = Path(params_path).read_text()
    yaml = _round_trip_yaml()
    tree = yaml.load(old)
    _merge_in_place(tree, preset, "")
    buffer = io.StringIO()
    yaml.dump(tree, buffer)
    new = buffer.getvalue()
    if not dry_run:
        write_bytes(params_path, new.encode())
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{params_path}",
                                        f"b/{params_path}"))


def main() -> None:
    parser = command_parser(__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="names and descriptions of the presets")
    apply_cmd = sub.add_parser("apply", help="merge a preset into params.yaml")
    apply_cmd.add_argument("name")
    apply_cmd.add_argument("--params", default="params.yaml")
    apply_cmd.add_argument("--dry-run", action="store_true", help="print the change, write nothing")
    args = parser.parse_args()
    if args.command == "list":
        names = _existing(PRESETS_DIR)
        width = max(map(len, names))
        for name in names:
            print(f"{name:<{width}}  {describe(name)}")
    else:
        print(apply(args.name, args.params, dry_run=args.dry_run), end="")
        done = "would change (dry run, nothing written)" if args.dry_run else f"changed; undo: git checkout {args.params}"
        print(f"{args.params}: preset '{args.name}' {done}")


def _existing(folder: str | Path) -> list[str]:
    names = preset_names(folder)
    if not names:
        raise Sam4irError(f"{folder}: no presets found (run from the repository root)")
    return names


def _path(name: str, folder: str | Path) -> Path:
    names = _existing(folder)
    if name not in names:
        raise Sam4irError(f"unknown preset {name!r}; known: {', '.join(names)}")
    return Path(folder) / f"{name}.yaml"


def _round_trip_yaml() -> YAML:
    """ruamel in round-trip mode, writing what PyYAML (DVC's and our reader, YAML 1.1) reads back unchanged:
    ``null`` rather than an empty value, and floats with a dot (PyYAML reads ``1e-07`` as a string)."""
    yaml = YAML()
    yaml.width = 4096  # never re-wrap a line the user wrote
    yaml.representer.add_representer(type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    yaml.representer.add_representer(float, _represent_float)
    return yaml


def _represent_float(representer: object, value: float) -> object:
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


def _replaced(dotted: str) -> bool:
    return dotted.startswith(REPLACED_UNDER)


def _merge(base: dict, override: dict, prefix: str) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        dotted = prefix + str(key)
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and not _replaced(dotted):
            merged[key] = _merge(merged[key], value, dotted + ".")
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _merge_in_place(tree: CommentedMap, override: dict, prefix: str) -> None:
    """``_merge`` on ruamel's round-trip tree: untouched keys keep their comments; new values are written as
    params.yaml writes them (block mappings, lists of plain values inline)."""
    for key, value in override.items():
        dotted = prefix + str(key)
        if isinstance(value, dict) and isinstance(tree.get(key), dict) and not _replaced(dotted):
            _merge_in_place(tree[key], value, dotted + ".")
        else:
            tree[key] = _node(value)


def _node(value: object) -> object:
    if isinstance(value, dict):
        return CommentedMap((key, _node(item)) for key, item in value.items())
    if isinstance(value, list):
        node = CommentedSeq(_node(item) for item in value)
        if any(isinstance(item, (dict, list)) for item in value):
            node.fa.set_block_style()
        else:
            node.fa.set_flow_style()
        return node
    return value


def _check(base: dict, override: dict, prefix: str, where: str, schema: str) -> None:
    for key, value in override.items():
        dotted = prefix + str(key)
        if any(dotted == new or dotted.startswith(new + ".") for new in NEW_SECTIONS):
            continue
        if key not in base:
            raise Sam4irError(f"{where}: key '{dotted}' is not a param of {schema}")
        if isinstance(value, dict) != isinstance(base[key], dict):
            kind = "a mapping" if isinstance(base[key], dict) else "a single value"
            raise Sam4irError(f"{where}: key '{dotted}' should be {kind}, as in {schema}")
        if isinstance(value, dict) and not _replaced(dotted):
            _check(base[key], value, dotted + ".", where, schema)


if __name__ == "__main__":
    run_stage(main)

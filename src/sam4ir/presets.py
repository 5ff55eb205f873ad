"""Paper-scale configurations: partial params trees in ``configs/paper/<task>-<model>.yaml``.

``params.yaml`` stays the single source of truth every DVC stage reads; a preset only rewrites it, so
``dvc repro`` / ``dvc exp run`` see an ordinary params change and re-run exactly what it touches. A preset holds
only the keys it sets (the released network and recipe, SAM, data source), and its first line is a ``# comment``
describing it.

    python -m sam4ir.presets list
    python -m sam4ir.presets apply deblur-nafnet [--params params.yaml]
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import yaml

from sam4ir import config
from sam4ir.errors import Sam4irError
from sam4ir.io import atomic_path
from sam4ir.stages import run_stage

PRESETS_DIR = Path("configs/paper")  # relative to the repository root, where DVC runs every stage
# Replaced as a whole, never merged key by key: another model's constructor takes other arguments.
REPLACED = ("model.args",)
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
    """``override`` deep-merged into a copy of ``base``: mappings merge key by key (except ``REPLACED``),
    anything else (scalars, lists) is replaced; ``base``'s key order is kept, new keys come last."""
    return _merge(base, override, "")


def check_keys(base: dict, override: dict, where: str = "preset", schema: str = "params.yaml") -> None:
    """One-line error naming the first key of ``override`` that ``base`` (the params ``schema``) does not have,
    or that is a mapping on one side only; keys under ``NEW_SECTIONS`` and ``REPLACED`` are not checked."""
    _check(base, override, "", where, schema)


def apply(name: str, params_path: str | Path = "params.yaml", folder: str | Path = PRESETS_DIR) -> dict:
    """Merge preset ``name`` into ``params_path`` and rewrite that file atomically; returns the merged params.

    The file's comments are not kept (a one-line header names the preset instead); its key order is.
    """
    base = config.load_params(params_path)
    base.pop("_path")
    preset = load_preset(name, folder)
    check_keys(base, preset, where=str(_path(name, folder)), schema=str(params_path))
    merged = merge(base, preset)
    header = f"# {Path(params_path).name}, last changed by: python -m sam4ir.presets apply {name}\n"
    with atomic_path(params_path) as tmp:
        tmp.write_text(header + yaml.dump(merged, Dumper=_Dumper, sort_keys=False, width=120))
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description="Paper-scale configuration presets for params.yaml.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="names and descriptions of the presets")
    apply_cmd = sub.add_parser("apply", help="merge a preset into params.yaml")
    apply_cmd.add_argument("name")
    apply_cmd.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    if args.command == "list":
        names = _existing(PRESETS_DIR)
        width = max(map(len, names))
        for name in names:
            print(f"{name:<{width}}  {describe(name)}")
    else:
        apply(args.name, args.params)
        print(f"{args.params}: preset '{args.name}' applied")


class _Dumper(yaml.SafeDumper):
    """Block mappings, and lists of plain values inline (``betas: [0.9, 0.9]``), as params.yaml is written."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    inline = not any(isinstance(value, (dict, list)) for value in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline)


_Dumper.add_representer(list, _represent_list)


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


def _merge(base: dict, override: dict, prefix: str) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        dotted = prefix + str(key)
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and dotted not in REPLACED:
            merged[key] = _merge(merged[key], value, dotted + ".")
        else:
            merged[key] = copy.deepcopy(value)
    return merged


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
        if isinstance(value, dict) and dotted not in REPLACED:
            _check(base[key], value, dotted + ".", where, schema)


if __name__ == "__main__":
    run_stage(main)

"""Reading ``params.yaml``: the single source of truth for every stage.

Stages pull values with :func:`get`, which names the dotted key and the file in its
error message, so a bad param is reported in one line before any work starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml

from sam4ir.errors import Sam4irError
from sam4ir.schema import check_params

_MISSING = object()


def read_mapping(path: str | Path) -> dict:
    """A YAML file whose top level is a mapping; one-line error if missing, invalid or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise Sam4irError(f"{path}: file not found")
    try:
        tree = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise Sam4irError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(tree, dict):
        raise Sam4irError(f"{path}: expected a mapping at the top level")
    return tree


def load_params(path: str | Path = "params.yaml") -> dict:
    """The whole file, checked against the schema before anything else happens (one line naming a bad key)."""
    params = read_mapping(path)
    check_params(params, str(path))
    params["_path"] = str(path)
    return params


def get(params: dict, key: str, default: Any = _MISSING, *, choices: Iterable | None = None,
        kind: type | tuple[type, ...] | None = None) -> Any:
    """Value at dotted ``key``; one-line error naming the key if missing, of the wrong type or not in ``choices``."""
    where = params.get("_path", "params.yaml")
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is not _MISSING:
                return default
            raise Sam4irError(f"{where}: missing param '{key}'")
        node = node[part]
    if choices is not None and node not in list(choices):
        raise Sam4irError(f"{where}: param '{key}' = {node!r} is not one of {sorted(map(str, choices))}")
    if kind is not None:
        if kind is float and isinstance(node, int) and not isinstance(node, bool):
            node = float(node)
        if not isinstance(node, kind) or (isinstance(node, bool) and kind in (int, float)):
            name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise Sam4irError(f"{where}: param '{key}' = {node!r} should be of type {name}")
    return node

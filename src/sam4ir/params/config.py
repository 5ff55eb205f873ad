"""Reading ``params.yaml``, once per stage, into the typed and frozen :class:`sam4ir.params.schema.Params`.

``SAM4IR_TRACE_PARAMS=<file>`` makes a process append the params keys it read, with its command line, to
``<file>`` (one JSON line) when it exits: how the pipeline test checks that each stage of ``dvc.yaml`` declares
exactly the params it reads.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path

import yaml

from sam4ir.errors import Sam4irError
from sam4ir.params.schema import Params, parse_params, start_trace

TRACE_ENV = "SAM4IR_TRACE_PARAMS"
_tracing = False


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


def load_params(path: str | Path = "params.yaml") -> Params:
    """The whole file, checked against the schema before anything else happens (one line naming a bad key)."""
    params = parse_params(read_mapping(path), str(path))
    if os.environ.get(TRACE_ENV):
        _trace_to(Path(os.environ[TRACE_ENV]))
    return params


def _trace_to(log: Path) -> None:
    """Record this process's reads into ``log`` at exit (once, however often it loads the params)."""
    global _tracing
    if _tracing:
        return
    _tracing = True
    reads = start_trace()

    def write() -> None:
        with open(log, "a") as f:  # several stages may append: one short line each
            f.write(json.dumps({"argv": sys.orig_argv[1:], "reads": sorted(reads)}) + "\n")
    atexit.register(write)

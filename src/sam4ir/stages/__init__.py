"""Thin DVC stage entry points (``python -m sam4ir.stages.<name>``): parse params, call the library, write outs."""

from __future__ import annotations

import sys
from typing import Callable

from sam4ir.errors import Sam4irError


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage; a :class:`Sam4irError` becomes one line on stderr and exit status 1."""
    try:
        main()
    except Sam4irError as err:
        print(f"sam4ir: error: {err}", file=sys.stderr)
        sys.exit(1)

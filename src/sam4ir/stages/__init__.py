"""Thin DVC stage entry points (``python -m sam4ir.stages.<name>``): parse params, call the library, write outs."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from sam4ir.errors import Sam4irError


def command_parser(doc: str, **kwargs: object) -> argparse.ArgumentParser:
    """A command's parser whose ``--help`` prints ``doc`` (its module docstring) whole and as written: argparse
    would re-wrap its paragraphs and usage lines into one block, and a first line alone stops mid-sentence."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage; a :class:`Sam4irError` becomes one line on stderr and exit status 1."""
    try:
        main()
    except Sam4irError as err:
        print(f"sam4ir: error: {err}", file=sys.stderr)
        sys.exit(1)

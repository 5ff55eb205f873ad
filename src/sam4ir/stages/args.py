"""A stage's command line, and its params read once into the typed :class:`sam4ir.schema.Params`."""

from __future__ import annotations

import argparse

from sam4ir.config import load_params
from sam4ir.errors import Sam4irError
from sam4ir.schema import Params


def stage_args(description: str, *, methods: tuple[str, ...] = ()) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--task", required=True)
    parser.add_argument("--params", default="params.yaml")
    if methods:
        parser.add_argument("--method", required=True, choices=methods)
    return parser.parse_args()


def load_task_params(args: argparse.Namespace) -> Params:
    """The params, refused in one line if ``--task`` is not one of their ``tasks``."""
    params = load_params(args.params)
    if args.task not in params.tasks:
        raise Sam4irError(f"{args.params}: task '{args.task}' is not in tasks {params.tasks}")
    return params

"""A stage's command line, and its params read once into the typed :class:`sam4ir.params.schema.Params`."""

from __future__ import annotations

import argparse

from sam4ir.params.config import load_params
from sam4ir.errors import Sam4irError
from sam4ir.io import limit_pixels
from sam4ir.params.schema import Params
from sam4ir.stages import command_parser


def stage_args(description: str, *, methods: tuple[str, ...] = ()) -> argparse.Namespace:
    parser = command_parser(description)
    parser.add_argument("--task", help="one task of the params' tasks, in this process (default: every task; "
                                       "sam4ir.stages.shared.tasks)")
    parser.add_argument("--params", default="params.yaml")
    if methods:
        parser.add_argument("--method", required=True, choices=methods)
    return parser.parse_args()


def load_task_params(args: argparse.Namespace) -> Params:
    """The params, refused in one line if ``--task`` is not one of their ``tasks`` or a device they ask for is not
    on this machine (checked by every stage, so by the first one DVC runs, not after data and masks)."""
    params = load_params(args.params)
    if args.task not in params.tasks:
        raise Sam4irError(f"{args.params}: task '{args.task}' is not in tasks {params.tasks}")
    check_devices(params)
    limit_pixels(params.snapshot()["data"]["max_pixels"])  # a guard on reading, not an input of any output
    return params


def check_devices(params: Params) -> None:
    """One line naming ``train.device`` or ``sam.device`` when it asks for CUDA or MPS this machine lacks. Read
    from the snapshot: a check of the machine, not an input of the stage's outputs (no dvc.yaml entry)."""
    import torch  # here, not at the top: a stage's --help stays quick

    values = params.snapshot()
    wanted = {"train.device": values["train"]["device"]}
    if values["sam"]["backend"] == "sam":
        wanted["sam.device"] = values["sam"]["device"]
    for key, device in wanted.items():
        kind, _, index = device.partition(":")
        if kind == "cuda" and not torch.cuda.is_available():
            raise params.error(key, f"{device!r}, but CUDA is not available here (torch.cuda.is_available() is "
                                    "False; use auto or cpu)")
        if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
            raise params.error(key, f"{device!r}, but this machine has {torch.cuda.device_count()} CUDA device(s)")
        if kind == "mps" and not torch.backends.mps.is_available():
            raise params.error(key, f"{device!r}, but MPS is not available here (use auto or cpu)")

"""The ``sam4ir`` command: one name for every entry point (``sam4ir <command> [args]``, or ``python -m sam4ir``).

Each command runs the ``main()`` of an existing module, which parses the remaining arguments itself, so
``sam4ir restore --help`` is ``python -m sam4ir.restore --help``; the modules stay runnable on their own
(dvc.yaml runs ``python -m sam4ir.stages.<name>``). This module imports nothing but the standard library until a
command runs, and its summaries are written here rather than read from the modules: ``sam4ir --help`` answers at
once, without loading torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NamedTuple, Optional, Sequence

from sam4ir.stages import run_stage  # light: the standard library and sam4ir.errors

PROG = "sam4ir"


class Command(NamedTuple):
    module: str
    summary: str


# name -> the module whose main() it runs; grouped as `sam4ir --help` lists them.
GROUPS: dict[str, dict[str, Command]] = {
    "pipeline stages (dvc.yaml runs them: `dvc repro` is the usual way)": {
        "prepare-data": Command("sam4ir.stages.prepare_data",
                                "Build each task's paired train/test data under data/prepared/<task>."),
        "sam-masks": Command("sam4ir.stages.sam_masks",
                             "Cache one SAM label map per prepared image under data/masks/<task>."),
        "train-baseline": Command("sam4ir.stages.train_baseline",
                                  "Train IR1 alone with its reconstruction loss (the paper's original row)."),
        "spf": Command("sam4ir.stages.spf", "Train the SPF teacher IR2 on the frozen baseline's restored images."),
        "distill": Command("sam4ir.stages.distill", "Train IR1 against the SPF teacher with the SPD and SGR losses."),
        "evaluate": Command("sam4ir.stages.evaluate", "Score the trained networks (PSNR/SSIM) on the test pairs."),
        "report": Command("sam4ir.stages.report", "Regenerate the tables, figures and image grids in reports/."),
        "code": Command("sam4ir.stages.code",
                        "Write data/code/<stage>.json: the modules each stage's process can import, and their sha256."),
    },
    "reports over finished experiments (dvc exp show)": {
        "ablation": Command("sam4ir.stages.ablation_report",
                            "Write reports/ablation.*: each configuration's gain over its control and no-prior runs."),
        "mechanism": Command("sam4ir.stages.mechanism_report",
                             "Write reports/mechanism.*: how much of the gain the priors' information explains."),
        "paper-tables": Command("sam4ir.stages.paper_tables",
                                "Write the paper's main and SAM-size tables under reports/."),
        "exp-table": Command("sam4ir.stages.exp_table",
                             "Print each experiment's gains over its control and no-prior runs, and rank them."),
        "positive-control": Command("sam4ir.stages.positive_control",
                                    "Write reports/positive_control.*: how much a wider teacher's lead distillation "
                                    "transfers."),
    },
    "tools": {
        "restore": Command("sam4ir.restore", "Restore images with a trained IR1 (no SAM needed)."),
        "presets": Command("sam4ir.presets", "List the paper-scale presets, or apply one to params.yaml."),
    },
}
COMMANDS: dict[str, Command] = {name: cmd for group in GROUPS.values() for name, cmd in group.items()}


def command_table() -> str:
    """The commands with their summaries, by group, as ``sam4ir --help`` prints them."""
    width = max(map(len, COMMANDS))
    blocks = []
    for title, group in GROUPS.items():
        lines = [f"  {name:<{width}}  {cmd.summary}" for name, cmd in group.items()]
        blocks.append("\n".join([f"{title}:", *lines]))
    return "\n\n".join(blocks)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Distil SAM's semantic priors into efficient image-restoration networks (CVPR 2024).",
        epilog=f"{command_table()}\n\n`{PROG} COMMAND --help` describes a command and its arguments.")
    top.add_argument("command", nargs="?", metavar="COMMAND", help="one of the commands below")
    top.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="the command's own arguments")
    return top


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run ``sam4ir COMMAND ARGS``: the command's module sees ``sam4ir COMMAND`` as its program name and ARGS as
    its arguments, exactly as when run with ``python -m``; an unknown command is one line and exit status 2."""
    top = parser()
    args = top.parse_args(argv)
    if args.command is None:
        top.error(f"no COMMAND given ({PROG} --help lists them)")
    if args.command not in COMMANDS:
        top.exit(2, f"{PROG}: error: unknown command {args.command!r}; known: {', '.join(COMMANDS)} "
                    f"(see {PROG} --help)\n")
    if os.getcwd() not in sys.path:  # as `python -m` does: a network named by import path (model.name
        sys.path.insert(0, os.getcwd())  # tests.own_nets.TinyDnCNN) imports from the project folder
    module = importlib.import_module(COMMANDS[args.command].module)
    sys.argv = [f"{PROG} {args.command}", *args.args]
    run_stage(module.main)

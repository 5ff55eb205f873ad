"""Stage ``train_baseline``: IR1 alone with its reconstruction loss (the paper's "original" row), every task."""

import argparse

from sam4ir.method.objectives import BaselineObjective
from sam4ir.stages import run_stage
from sam4ir.stages.shared.args import load_task_params, stage_args
from sam4ir.stages.shared.paths import TaskPaths
from sam4ir.stages.run import build_ir, finish_run, train_run
from sam4ir.stages.shared.tasks import run_tasks
from sam4ir.training.fit import TrainConfig


def run_task(args: argparse.Namespace) -> None:
    params = load_task_params(args)
    objective = BaselineObjective(build_ir(params), params.train.loss)
    train_run(params, TaskPaths(args.task), "baseline", objective, TrainConfig.from_params(params.train),
              with_masks=False)


def main() -> None:
    run_tasks(stage_args(__doc__), run_task, finish=finish_run("baseline"))


if __name__ == "__main__":
    run_stage(main)

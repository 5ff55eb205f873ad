"""Stage ``train_baseline``: IR1 alone with its reconstruction loss (the paper's "original" row)."""

from sam4ir.method.objectives import BaselineObjective
from sam4ir.stages import run_stage
from sam4ir.stages.args import load_task_params, stage_args
from sam4ir.stages.paths import TaskPaths
from sam4ir.stages.run import build_ir, train_run
from sam4ir.train import TrainConfig


def main() -> None:
    args = stage_args(__doc__)
    params = load_task_params(args)
    objective = BaselineObjective(build_ir(params), params.train.loss)
    train_run(params, TaskPaths(args.task), "baseline", objective, TrainConfig.from_params(params.train),
              with_masks=False)


if __name__ == "__main__":
    run_stage(main)

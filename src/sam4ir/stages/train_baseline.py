"""Stage ``train_baseline``: IR1 alone with its reconstruction loss (the paper's "original" row)."""

from sam4ir import config
from sam4ir.objectives import BaselineObjective
from sam4ir.losses import RECON_LOSSES
from sam4ir.stages import run_stage
from sam4ir.stages.common import TaskPaths, build_ir, load_task_params, stage_args, train_config, train_run


def main() -> None:
    args = stage_args(__doc__)
    params = load_task_params(args)
    cfg = train_config(params, "train")
    objective = BaselineObjective(build_ir(params), config.get(params, "train.loss", choices=RECON_LOSSES))
    train_run(params, TaskPaths(args.task), "baseline", objective, cfg, with_masks=False)


if __name__ == "__main__":
    run_stage(main)

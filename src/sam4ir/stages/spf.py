"""Stage ``spf``: the SPF scheme — the teacher IR2 trained alone on the frozen baseline's restored images.

``--method spf`` fuses the task's label maps (``spf.prior``); ``--method spf_no_prior`` trains the same teacher
with every pixel unlabelled (it reads no label map): the teacher of the ``no_prior`` control, so that the two
students differ only by the prior's information. IR2 starts from IR1's weights as the identity on ŷ₁
(``spf.ir2_init``) and trains for ``spf.iters`` at ``spf.lr`` with the rest of the baseline's recipe. No
``distill.*`` param is read: a distillation sweep never retrains a teacher.
"""

import argparse

from sam4ir.method.objectives import SpfObjective
from sam4ir.method.spf import build_ir2
from sam4ir.models import load_weights
from sam4ir.stages import run_stage
from sam4ir.stages.shared.args import load_task_params, stage_args
from sam4ir.stages.shared.paths import TaskPaths
from sam4ir.stages.run import build_ir, finish_run, train_run
from sam4ir.stages.shared.tasks import run_tasks
from sam4ir.training.fit import TrainConfig

SPF_METHODS = ("spf", "spf_no_prior")


def run_task(args: argparse.Namespace) -> None:
    params = load_task_params(args)
    paths = TaskPaths(args.task)
    baseline = paths.run("baseline") / "model.pt"
    ir1 = build_ir(params)
    load_weights(ir1, baseline)
    spf = params.spf
    ir2 = build_ir2(ir1, params.model.name, params.model.kwargs, spf.prior, spf.ir2_init)
    priors = args.method == "spf"
    objective = SpfObjective(ir1, ir2, recon=params.train.loss, prior=spf.prior, priors=priors)
    train_run(params, paths, args.method, objective, TrainConfig.from_params(params.train, iters=spf.iters, lr=spf.lr),
              with_masks=priors, init_files=(baseline,))


def main() -> None:
    args = stage_args(__doc__, methods=SPF_METHODS)
    run_tasks(args, run_task, forward=["--method", args.method], finish=finish_run(args.method))


if __name__ == "__main__":
    run_stage(main)

"""Stage ``distill``: the SPD scheme — IR1 trained with L_rec¹ + λ₁·L_SPD + λ₂·L_SGR against the SPF teacher.

The teacher is the ``spf`` stage's IR2 (``no_prior``: its no-region twin from ``spf_no_prior``), frozen
(``distill.teacher: frozen``, the paper's formula: no term trains IR2) or trained on with L_rec² (``joint``,
[ours]). IR2 restores the current student's output, detached (``distill.teacher_input: student``), or the frozen
baseline's (``baseline``: fixed targets). IR1 starts from the baseline for ``distill.iters`` at ``distill.lr``
(``distill.init: baseline``) or from scratch with the baseline's full recipe (``scratch``).

``--method control`` runs the same iterations with every distillation weight at 0 (L_rec¹ alone), so the report
separates the gain of the teacher from the gain of training longer; ``spd`` drops SGR; ``spd_sgr`` is the full
method; ``no_prior`` is ``spd_sgr`` against the no-region teacher with every pixel unlabelled (no label map read;
SGR, which relates regions, is identically zero there and is not computed), so ``spd_sgr - no_prior`` is the part
of the gain the priors' information is responsible for.
"""

import argparse
from pathlib import Path

from sam4ir.method.objectives import DISTILL_METHODS, DistillObjective
from sam4ir.models import load_model, load_weights
from sam4ir.stages import run_stage
from sam4ir.stages.shared.args import load_task_params, stage_args
from sam4ir.stages.shared.paths import TEACHER_RUNS, TaskPaths
from sam4ir.stages.run import build_ir, finish_run, train_run
from sam4ir.stages.shared.tasks import run_tasks
from sam4ir.training.fit import TrainConfig


def run_task(args: argparse.Namespace) -> None:
    params = load_task_params(args)
    paths, cfg = TaskPaths(args.task), params.distill
    baseline_file = paths.run("baseline") / "model.pt"
    ir1 = build_ir(params)
    init_files: tuple[Path, ...] = ()
    scratch = cfg.init == "scratch"
    if not scratch:
        load_weights(ir1, baseline_file)
        init_files = (baseline_file,)
    ir2 = baseline = None
    if args.method != "control":
        teacher_file = paths.run(TEACHER_RUNS[args.method]) / "ir2.pt"
        ir2 = load_model(teacher_file)
        init_files += (teacher_file,)
        if cfg.teacher_input == "baseline":
            baseline = load_model(baseline_file)
            init_files += (baseline_file,)
    objective = DistillObjective(ir1, ir2, cfg, params.spf, recon=params.train.loss, method=args.method,
                                 baseline=baseline)
    recipe = (TrainConfig.from_params(params.train) if scratch else
              TrainConfig.from_params(params.train, iters=cfg.iters, lr=cfg.lr))
    train_run(params, paths, args.method, objective, recipe, with_masks=objective.weights.uses_ir2 and objective.priors,
              init_files=init_files)


def main() -> None:
    args = stage_args(__doc__, methods=DISTILL_METHODS)
    run_tasks(args, run_task, forward=["--method", args.method], finish=finish_run(args.method))


if __name__ == "__main__":
    run_stage(main)

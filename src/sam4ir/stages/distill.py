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

from pathlib import Path
from typing import Optional

from torch import nn

from sam4ir import config
from sam4ir.analyzer import ANALYZERS
from sam4ir.errors import Sam4irError
from sam4ir.losses import RECON_LOSSES
from sam4ir.models import load_model, load_weights
from sam4ir.objectives import TEACHER_INPUTS, TEACHERS, DistillObjective, DistillWeights
from sam4ir.spd import SPD_LOSSES
from sam4ir.spf import PRIOR_CHANNELS
from sam4ir.stages import run_stage
from sam4ir.stages.common import (METHODS, TEACHER_RUNS, TaskPaths, build_ir, load_task_params,
                                  stage_args, train_config, train_run)


def method_weights(params: dict, method: str) -> DistillWeights:
    w = {k: config.get(params, f"distill.{k}_weight", kind=float) for k in ("recon2", "spd", "sgr")}
    for key, value in w.items():
        if value < 0:
            raise Sam4irError(f"{params['_path']}: param 'distill.{key}_weight' = {value} must be >= 0")
    if method == "control":
        return DistillWeights(recon2=0.0, spd=0.0, sgr=0.0)
    if method in ("spd", "no_prior"):
        w["sgr"] = 0.0  # no_prior: with no regions there is no relation to keep (SGR is exactly 0)
    return DistillWeights(**w)


def distill_objective(params: dict, ir1: nn.Module, ir2: Optional[nn.Module], method: str, *,
                      baseline: Optional[nn.Module] = None, analyzer_pretrained: bool = True) -> DistillObjective:
    """The objective of ``method`` for IR1 against the teacher ``ir2``, from the spf/distill params."""
    return DistillObjective(
        ir1, ir2, recon=config.get(params, "train.loss", choices=RECON_LOSSES),
        weights=method_weights(params, method), prior=config.get(params, "spf.prior", choices=PRIOR_CHANNELS),
        analyzer=config.get(params, "distill.analyzer", choices=ANALYZERS),
        spd_kind=config.get(params, "distill.spd_loss", choices=SPD_LOSSES),
        sgr_min_pixels=config.get(params, "distill.sgr_min_pixels", kind=int),
        sgr_max_regions=config.get(params, "distill.sgr_max_regions", kind=int),
        detach_spf_input=config.get(params, "spf.detach_input", kind=bool),
        priors=method != "no_prior", teacher=config.get(params, "distill.teacher", choices=TEACHERS),
        baseline=baseline, analyzer_pretrained=analyzer_pretrained)


def main() -> None:
    args = stage_args(__doc__, methods=METHODS[1:])
    params = load_task_params(args)
    paths = TaskPaths(args.task)
    baseline_file = paths.run("baseline") / "model.pt"
    ir1 = build_ir(params)
    init_files: tuple[Path, ...] = ()
    scratch = config.get(params, "distill.init", choices=("baseline", "scratch")) == "scratch"
    if not scratch:
        load_weights(ir1, baseline_file)
        init_files = (baseline_file,)
    ir2 = baseline = None
    if args.method != "control":
        teacher_file = paths.run(TEACHER_RUNS[args.method]) / "ir2.pt"
        ir2 = load_model(teacher_file)
        init_files += (teacher_file,)
        if config.get(params, "distill.teacher_input", choices=TEACHER_INPUTS) == "baseline":
            baseline = load_model(baseline_file)
            init_files += (baseline_file,)
    objective = distill_objective(params, ir1, ir2, args.method, baseline=baseline)
    train_run(params, paths, args.method, objective, train_config(params, "train" if scratch else "distill"),
              with_masks=objective.weights.uses_ir2 and objective.priors, init_files=init_files)


if __name__ == "__main__":
    run_stage(main)

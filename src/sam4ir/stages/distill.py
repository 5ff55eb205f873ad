"""Stage ``distill``: IR1 (from the baseline) and the SPF branch IR2 trained jointly with SPD/SGR.

``--method control`` runs the same extra iterations with every distillation weight at 0, so the report can
separate the gain of the semantic priors from the gain of training longer; ``spd`` drops SGR; ``spd_sgr`` is
the full method with the weights from params. Every run with IR2 first warms its teacher up alone
(``distill.teacher_iters``, IR1 fixed), so that distillation starts from a teacher already better than its student
and already informed by the prior. ``no_prior`` is ``spd_sgr`` with every pixel unlabelled (no label
maps read at all), so ``spd_sgr - no_prior`` is the part of the gain the priors' information is responsible for.
"""

from torch import nn

from sam4ir import config
from sam4ir.analyzer import ANALYZERS
from sam4ir.errors import Sam4irError
from sam4ir.losses import RECON_LOSSES
from sam4ir.models import load_weights
from sam4ir.objectives import DistillObjective, DistillWeights
from sam4ir.spd import SPD_LOSSES
from sam4ir.spf import IR2_INITS, PRIOR_CHANNELS, build_ir2
from sam4ir.stages import run_stage
from sam4ir.stages.common import (TaskPaths, build_ir, load_task_params, model_spec, stage_args, train_config,
                                  train_run)


def method_weights(params: dict, method: str) -> DistillWeights:
    w = {k: config.get(params, f"distill.{k}_weight", kind=float) for k in ("recon2", "spd", "sgr")}
    for key, value in w.items():
        if value < 0:
            raise Sam4irError(f"{params['_path']}: param 'distill.{key}_weight' = {value} must be >= 0")
    if method == "control":
        return DistillWeights(recon2=0.0, spd=0.0, sgr=0.0)
    if method == "spd":
        w["sgr"] = 0.0  # no_prior keeps spd_sgr's weights: it differs only by the prior's information
    return DistillWeights(**w)


def distill_objective(params: dict, ir1: nn.Module, name: str, kwargs: dict, method: str, *,
                      analyzer_pretrained: bool = True) -> DistillObjective:
    """The objective of ``method`` for IR1 (network ``name`` built with ``kwargs``), from the spf/distill params."""
    weights = method_weights(params, method)
    prior = config.get(params, "spf.prior", choices=PRIOR_CHANNELS)
    return DistillObjective(
        ir1, build_ir2(ir1, name, kwargs, prior, config.get(params, "spf.ir2_init", choices=IR2_INITS))
        if weights.uses_ir2 else None,
        recon=config.get(params, "train.loss", choices=RECON_LOSSES), weights=weights, prior=prior,
        analyzer=config.get(params, "distill.analyzer", choices=ANALYZERS),
        spd_kind=config.get(params, "distill.spd_loss", choices=SPD_LOSSES),
        sgr_min_pixels=config.get(params, "distill.sgr_min_pixels", kind=int),
        sgr_max_regions=config.get(params, "distill.sgr_max_regions", kind=int),
        detach_spf_input=config.get(params, "spf.detach_input", kind=bool),
        priors=method != "no_prior", analyzer_pretrained=analyzer_pretrained)


def main() -> None:
    args = stage_args(__doc__, method=True)
    params = load_task_params(args)
    paths = TaskPaths(args.task)
    cfg = train_config(params, "distill")
    ir1 = build_ir(params)
    init_file = None
    if config.get(params, "distill.init", choices=("baseline", "scratch")) == "baseline":
        init_file = paths.run("baseline") / "model.pt"
        load_weights(ir1, init_file)
    name, kwargs = model_spec(params)
    objective = distill_objective(params, ir1, name, kwargs, args.method)
    uses_ir2 = objective.weights.uses_ir2
    train_run(params, paths, args.method, objective, cfg, with_masks=uses_ir2 and objective.priors,
              init_file=init_file,
              warmup=(objective.teacher(), train_config(params, "teacher")) if uses_ir2 and objective.weights.recon2 > 0
              else None)


if __name__ == "__main__":
    run_stage(main)

"""Stage ``spf``: the SPF scheme — the teacher IR2 trained alone on the frozen baseline's restored images.

``--method spf`` fuses the task's label maps (``spf.prior``); ``--method spf_no_prior`` trains the same teacher
with every pixel unlabelled (it reads no label map): the teacher of the ``no_prior`` control, so that the two
students differ only by the prior's information. IR2 starts from IR1's weights as the identity on ŷ₁
(``spf.ir2_init``) and trains for ``spf.iters`` at ``spf.lr`` with the rest of the baseline's recipe. No
``distill.*`` param is read: a distillation sweep never retrains a teacher.
"""

from sam4ir import config
from sam4ir.losses import RECON_LOSSES
from sam4ir.models import load_weights
from sam4ir.objectives import SpfObjective
from sam4ir.spf import IR2_INITS, PRIOR_CHANNELS, build_ir2
from sam4ir.stages import run_stage
from sam4ir.stages.common import TaskPaths, build_ir, load_task_params, model_spec, stage_args, train_config, train_run

SPF_METHODS = ("spf", "spf_no_prior")


def main() -> None:
    args = stage_args(__doc__, methods=SPF_METHODS)
    params = load_task_params(args)
    paths = TaskPaths(args.task)
    baseline = paths.run("baseline") / "model.pt"
    ir1 = build_ir(params)
    load_weights(ir1, baseline)
    name, kwargs = model_spec(params)
    prior = config.get(params, "spf.prior", choices=PRIOR_CHANNELS)
    ir2 = build_ir2(ir1, name, kwargs, prior, config.get(params, "spf.ir2_init", choices=IR2_INITS))
    priors = args.method == "spf"
    objective = SpfObjective(ir1, ir2, recon=config.get(params, "train.loss", choices=RECON_LOSSES), prior=prior,
                             priors=priors)
    train_run(params, paths, args.method, objective, train_config(params, "spf"), with_masks=priors,
              init_files=(baseline,))


if __name__ == "__main__":
    run_stage(main)

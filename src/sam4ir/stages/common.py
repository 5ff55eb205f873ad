"""What the stage scripts share: where a task's files live, and turning params into library objects."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from dvclive import Live
import torch
from torch import nn

import sam4ir
from sam4ir import config, models
from sam4ir.errors import Sam4irError
from sam4ir.io import atomic_path, files_sha256
from sam4ir.train import TrainConfig

# no_prior: spd_sgr against the teacher trained with every pixel unlabelled (no region information)
METHODS = ("baseline", "control", "no_prior", "spd", "spd_sgr")
# the SPF teachers: IR2 trained on the frozen baseline's output with the label maps, and its no-region twin
TEACHER_RUNS = {"spd_sgr": "spf", "spd": "spf", "no_prior": "spf_no_prior"}
# the runs of the default DAG, which evaluate and report read (spd, the SPD-only row, is `-S distill.sgr_weight=0`
# of spd_sgr, or a `method` added to the distill matrix of dvc.yaml: it would cost a fifth of the demo's time)
EVALUATED = ("baseline", "control", "no_prior", "spd_sgr")


@dataclass(frozen=True)
class TaskPaths:
    """The on-disk layout of one task (all under ``data/``)."""

    task: str
    root: Path = Path("data")

    @property
    def prepared(self) -> Path:
        return self.root / "prepared" / self.task

    @property
    def masks(self) -> Path:
        return self.root / "masks" / self.task

    def run(self, method: str) -> Path:
        return self.root / "runs" / self.task / method

    def live(self, method: str) -> Path:
        return self.root / "live" / self.task / method

    def resume_state(self, method: str) -> Path:
        # Outside every DVC out on purpose: DVC deletes outs before re-running a stage, a resume state must survive.
        return self.root / ".resume" / f"{self.task}-{method}.pt"

    @property
    def eval(self) -> Path:
        return self.root / "eval" / self.task


def stage_args(description: str, *, methods: tuple[str, ...] = ()) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--task", required=True)
    parser.add_argument("--params", default="params.yaml")
    if methods:
        parser.add_argument("--method", required=True, choices=methods)
    return parser.parse_args()


def load_task_params(args: argparse.Namespace) -> dict:
    params = config.load_params(args.params)
    config.get(params, "tasks", kind=list)
    if args.task not in params["tasks"]:
        raise Sam4irError(f"{args.params}: task '{args.task}' is not in tasks {params['tasks']}")
    return params


def model_spec(params: dict) -> tuple[str, dict]:
    """``model.name`` and its constructor arguments (``model.args`` holds one entry per network)."""
    name = config.get(params, "model.name", choices=models.MODELS)
    return name, dict(config.get(params, f"model.args.{name}", kind=dict))


def build_ir(params: dict) -> nn.Module:
    """IR1 with initial weights drawn from ``train.seed``: a rerun, another machine or another seed of an
    ablation starts from weights fixed by the params alone (the caller's RNG is left untouched)."""
    name, kwargs = model_spec(params)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.get(params, "train.seed", kind=int))
        return models.build(name, **kwargs)


def train_config(params: dict, section: str) -> TrainConfig:
    """The recipe of ``train``; ``distill`` (the students) and ``spf`` (the teacher) override ``iters`` and ``lr``
    with their own keys and keep the rest of the baseline's recipe."""
    g = lambda key, kind, default=config._MISSING: config.get(params, f"train.{key}", default, kind=kind)  # noqa: E731
    cfg = dict(
        iters=g("iters", int), batch_size=g("batch_size", int), lr=g("lr", float), min_lr=g("min_lr", float),
        weight_decay=g("weight_decay", float), betas=tuple(g("betas", list)), grad_clip=g("grad_clip", float),
        seed=g("seed", int), val_every=g("val_every", int), log_every=g("log_every", int, 10),
        ckpt_every=g("ckpt_every", int),
        num_workers=g("num_workers", int), amp=g("amp", str), device=g("device", str))
    if section in ("distill", "spf"):
        cfg["iters"] = config.get(params, f"{section}.iters", kind=int)
        cfg["lr"] = config.get(params, f"{section}.lr", kind=float)
        cfg["min_lr"] = min(cfg["min_lr"], cfg["lr"])
    return TrainConfig(**cfg)


def open_live(path: Path, resumed_at: int) -> Live:
    """dvclive logger writing under ``path``; DVC stages declare its metrics and plots themselves.

    A run resumed from its checkpoint at step ``resumed_at`` first drops the rows the killed run logged after it,
    so every step appears once in the curves.
    """
    if resumed_at:
        for tsv in (path / "plots" / "metrics").glob("*.tsv"):
            header, *rows = tsv.read_text().splitlines(keepends=True)
            step = header.rstrip("\n").split("\t").index("step")
            kept = [r for r in rows if int(r.split("\t")[step]) <= resumed_at]
            with atomic_path(tsv) as tmp:
                tmp.write_text("".join([header, *kept]))
    return Live(dir=str(path), resume=resumed_at > 0, save_dvc_exp=False, dvcyaml=False)


def live_logger(live: Live):
    """``log(step, record)`` for :func:`sam4ir.train.fit`: every value becomes a dvclive curve; the summary
    (``metrics.json``) holds what a reader compares runs by, the monitor's last and best validation PSNR,
    not the last learning rate or loss."""
    def log(step: int, record: dict) -> None:
        live.step = step
        for key, value in record.items():
            live.log_metric(key, value)
        live.summary = val_psnr_summary(Path(live.plots_dir) / "metrics" / "val_psnr.tsv")
        live.make_summary()
    return log


def val_psnr_summary(tsv: Path) -> dict:
    """Last and best ``val_psnr`` of a dvclive TSV (a resumed run's earlier rows included), and the best's step."""
    if not tsv.is_file():
        return {}
    header, *rows = [line.split("\t") for line in tsv.read_text().splitlines()]
    steps = [int(r[header.index("step")]) for r in rows]
    values = [float(r[header.index("val_psnr")]) for r in rows]
    if not values:
        return {}
    best = max(range(len(values)), key=values.__getitem__)
    return {"val_psnr": values[-1], "val_psnr_best": values[best], "val_psnr_best_step": steps[best]}


def train_run(params: dict, paths: TaskPaths, method: str, objective: nn.Module, cfg: TrainConfig,
              *, with_masks: bool, init_files: tuple[Path, ...] = (), monitor: nn.Module | None = None) -> None:
    """Train ``objective`` on the task's training pairs, logging through dvclive; resumable after a kill.

    ``init_files``: the checkpoints the run starts from (part of its identity: a resume state made from other
    weights is never used). ``monitor``: the network whose held-out validation PSNR is logged (default IR1; the SPF
    teacher's runs log their loss only: the validation split has no label maps). Writes ``<run>/model.pt`` for
    IR1 (loadable strictly into the baseline class) and ``<run>/ir2.pt`` for a trained IR2.
    """
    from sam4ir.data import PairedDataset
    from sam4ir.train import fingerprint, fit, init_distributed, resolve_device, saved_iter
    from sam4ir.validation import held_out_psnr

    device = resolve_device(cfg.device)
    info = init_distributed(device)
    crop = config.get(params, "train.crop", kind=int)
    masks = paths.masks if with_masks else None
    augment = config.get(params, "train.augment", True, kind=bool)
    train_set = PairedDataset(paths.prepared, "train", crop=crop, augment=augment, masks_root=masks,
                              cache=config.get(params, "train.cache_images", "auto", choices=("auto", True, False)))
    data_id = sorted((p.name, p.stat().st_size) for p in (paths.prepared / "train").rglob("*.png"))
    code_id = files_sha256(sorted(Path(sam4ir.__file__).parent.rglob("*.py")))  # never resume older code's state
    run_id = fingerprint(paths.task, method, {k: v for k, v in params.items() if k != "_path"}, data_id,
                         files_sha256(init_files) if init_files else None, code_id)
    state_path = paths.resume_state(method)
    live = open_live(paths.live(method), saved_iter(state_path, run_id)) if info.main else None
    monitor = objective.nets["ir1"] if monitor is None and "ir1" in objective.nets else monitor
    validate = None
    if monitor is not None:
        validate = held_out_psnr(monitor, PairedDataset(paths.prepared, "val", crop=None, augment=False), n=4,
                                 crop=crop, device=device)
    fit(objective, train_set, cfg, state_path=state_path, run_id=run_id, desc=f"{paths.task}/{method}",
        log=live_logger(live) if live else None, info=info, device=device, validate=validate)
    if not info.main:
        return
    name, kwargs = model_spec(params)
    run = paths.run(method)
    if "ir1" in objective.nets:
        models.save_model(run / "model.pt", objective.nets["ir1"], name, kwargs)
    if "ir2" in objective.nets:
        from sam4ir.spf import prior_channels
        prior = config.get(params, "spf.prior")
        models.save_model(run / "ir2.pt", objective.nets["ir2"], name,
                          {**kwargs, "extra_in_channels": prior_channels(prior)})
    live.end()
    state_path.unlink(missing_ok=True)

"""One training run of a stage: IR1's initial weights, the task's training data, dvclive logging, the checkpoints."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path
from typing import Callable

import torch
from dvclive import Live
from torch import nn

import sam4ir
from sam4ir import models
from sam4ir.io import atomic_path, files_sha256
from sam4ir.params.schema import Params
from sam4ir.stages.shared.paths import TaskPaths
from sam4ir.training.fit import TrainConfig


def open_live(path: Path, resumed_at: int, backup: Path | None = None) -> Live:
    """dvclive logger writing under ``path``; DVC stages declare its metrics and plots themselves.

    DVC deletes a stage's outs before it re-runs the stage, curves included, so a killed run's rows would be lost
    when it resumes: :func:`live_logger` mirrors every row into ``backup`` (beside the resume state, outside every
    out). A run resumed from its checkpoint at step ``resumed_at`` gets back every row up to that step, and drops
    the rows the killed run logged after it, so its curves equal an uninterrupted run's. A fresh run (``resumed_at``
    0) starts an empty backup.
    """
    plots = path / "plots" / "metrics"
    if backup is not None:
        if resumed_at:
            for saved in backup.glob("*.tsv"):
                if not (plots / saved.name).is_file():
                    (plots / saved.name).parent.mkdir(parents=True, exist_ok=True)
                    (plots / saved.name).write_bytes(saved.read_bytes())
        else:
            shutil.rmtree(backup, ignore_errors=True)
    if resumed_at:
        for tsv in [*plots.glob("*.tsv"), *(backup.glob("*.tsv") if backup is not None else [])]:
            _keep_rows_up_to(tsv, resumed_at)
    return Live(dir=str(path), resume=resumed_at > 0, save_dvc_exp=False, dvcyaml=False)


def _keep_rows_up_to(tsv: Path, step: int) -> None:
    header, *rows = tsv.read_text().splitlines(keepends=True)
    column = header.rstrip("\n").split("\t").index("step")
    kept = [r for r in rows if int(r.split("\t")[column]) <= step]
    with atomic_path(tsv) as tmp:
        tmp.write_text("".join([header, *kept]))


def live_logger(live: Live, backup: Path | None = None):
    """``log(step, record)`` for :func:`sam4ir.training.fit.fit`: every value becomes a dvclive curve; the summary
    (``metrics.json``) holds what a reader compares runs by, the monitor's last and best validation PSNR,
    not the last learning rate or loss. Each row is also appended to ``backup`` (see :func:`open_live`)."""
    plots = Path(live.plots_dir) / "metrics"

    def log(step: int, record: dict) -> None:
        live.step = step
        for key, value in record.items():
            live.log_metric(key, value)
            if backup is not None:
                _mirror(plots / f"{key}.tsv", backup / f"{key}.tsv")
        live.summary = val_psnr_summary(plots / "val_psnr.tsv")
        live.make_summary()
    return log


def _mirror(tsv: Path, copy: Path) -> None:
    """Append the row dvclive just wrote to ``tsv`` to ``copy`` (the whole file the first time)."""
    if not copy.is_file():
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(tsv.read_bytes())
        return
    with open(tsv, "rb") as f:
        f.seek(max(0, f.seek(0, 2) - 4096))
        last = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    with open(copy, "ab") as f:
        f.write(last + b"\n")


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


def build_ir(params: Params) -> nn.Module:
    """IR1 with initial weights drawn from ``train.seed``: a rerun, another machine or another seed of an
    ablation starts from weights fixed by the params alone (the caller's RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(params.train.seed)
        return models.build(params.model.name, feature_layer=params.model.feature_layer, **params.model.kwargs)


def train_run(params: Params, paths: TaskPaths, method: str, objective: nn.Module, cfg: TrainConfig,
              *, with_masks: bool, init_files: tuple[Path, ...] = (), monitor: nn.Module | None = None) -> None:
    """Train ``objective`` on the task's training pairs, logging through dvclive; resumable after a kill.

    ``init_files``: the checkpoints the run starts from (part of its identity: a resume state made from other
    weights is never used). ``monitor``: the network whose held-out validation PSNR is logged (default IR1; the SPF
    teacher's runs log their loss only: the validation split has no label maps). Writes ``<run>/model.pt`` for
    IR1 (loadable strictly into the baseline class) and ``<run>/ir2.pt`` for a trained IR2.
    """
    from sam4ir.data import PairedDataset
    from sam4ir.training.fit import fingerprint, fit, init_distributed, resolve_device, saved_iter
    from sam4ir.training.validation import held_out_psnr

    device = resolve_device(cfg.device)
    info = init_distributed(device)
    crop = params.train.crop
    masks = paths.masks if with_masks else None
    train_set = PairedDataset(paths.prepared, "train", crop=crop, augment=params.train.augment, masks_root=masks,
                              cache=params.train.cache_images)
    data_id = sorted((p.name, p.stat().st_size) for p in (paths.prepared / "train").rglob("*.png"))
    code = sorted(Path(sam4ir.__file__).parent.rglob("*.py"))
    if models.is_import_path(params.model.name):  # a network of the user's own: its file is code of the run too
        code.append(Path(inspect.getsourcefile(models.locate(params.model.name))))
    code_id = files_sha256(code)  # never resume older code's state
    run_id = fingerprint(paths.task, method, params.snapshot(), data_id,
                         files_sha256(init_files) if init_files else None, code_id)
    state_path = paths.resume_state(method)
    curves = paths.resume_curves(method)
    live = open_live(paths.live(method), saved_iter(state_path, run_id), curves) if info.main else None
    monitor = objective.nets["ir1"] if monitor is None and "ir1" in objective.nets else monitor
    validate = None
    if monitor is not None:
        validate = held_out_psnr(monitor, PairedDataset(paths.prepared, "val", crop=None, augment=False), n=4,
                                 crop=crop, device=device)
    fit(objective, train_set, cfg, state_path=state_path, run_id=run_id, desc=f"{paths.task}/{method}",
        log=live_logger(live, curves) if live else None, info=info, device=device, validate=validate)
    if not info.main:
        return
    name, kwargs = params.model.name, params.model.kwargs
    run = paths.run(method)
    if "ir1" in objective.nets:
        models.save_model(run / "model.pt", objective.nets["ir1"], name, kwargs)
    if "ir2" in objective.nets:
        from sam4ir.method.spf import prior_channels
        models.save_model(run / "ir2.pt", objective.nets["ir2"], name,
                          {**kwargs, "extra_in_channels": prior_channels(params.spf.prior)})
    live.end()


def finish_run(method: str) -> Callable[[Params], None]:
    """A training stage's ``finish``: drop every task's resume state and curve backup of ``method``. Those outlive
    each task's run on purpose: DVC deletes the stage's outs before a re-run, and a task that had finished when
    another one failed then resumes from its final state instead of training again (sam4ir.stages.shared.tasks)."""
    def finish(params: Params) -> None:
        for task in params.tasks:
            paths = TaskPaths(task)
            paths.resume_state(method).unlink(missing_ok=True)
            shutil.rmtree(paths.resume_curves(method), ignore_errors=True)
    return finish

"""One training run of a stage: IR1's initial weights, the task's training data, dvclive logging, the checkpoints."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path
from typing import Callable

import torch
from torch import nn

import sam4ir
from sam4ir import models
from sam4ir.io import files_sha256
from sam4ir.schema import Params
from sam4ir.stages.live import live_logger, open_live
from sam4ir.stages.paths import TaskPaths
from sam4ir.train import TrainConfig


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
    from sam4ir.train import fingerprint, fit, init_distributed, resolve_device, saved_iter
    from sam4ir.validation import held_out_psnr

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


def clear_resume(method: str) -> Callable[[Params], None]:
    """A stage's ``finish``: drop every task's resume state and curve backup of ``method``. They outlive each
    task's run on purpose: DVC deletes the stage's outs before a re-run, and a task that had finished when another
    one failed then resumes from its final state instead of training again (sam4ir.stages.tasks)."""
    def clear(params: Params) -> None:
        for task in params.tasks:
            paths = TaskPaths(task)
            paths.resume_state(method).unlink(missing_ok=True)
            shutil.rmtree(paths.resume_curves(method), ignore_errors=True)
    return clear

"""The training loop shared by the baseline, control and distillation runs.

Why this shape:
- Every random draw of the run is a function of ``(seed, sample index)`` (:class:`SampleStream`), so a run killed
  and resumed from its last checkpoint ends with exactly the weights of an uninterrupted run, and ``N`` data-parallel
  processes see exactly the samples that one process with the same global batch would see.
- What is minimised lives in an objective module (``forward(batch) -> {'loss': ..., term: ...}``), so one loop serves
  every method and DDP can wrap the objective as a whole.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from sam4ir.errors import Sam4irError
from sam4ir.io import save_torch
from sam4ir.progress import progress_bar

if TYPE_CHECKING:
    from sam4ir.params.schema import Train

LogFn = Callable[[int, dict], None]
AMP_MODES = ("none", "bf16")
_GRAD_NORM = "_grad_norm"  # checked for divergence with the loss terms, not logged


CURVE_POINTS = 10  # validations at least, in a run with its own iters (the teachers', the students')


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation recipe (AdamW + cosine annealing, as NAFNet/HINet were trained)."""

    iters: int
    batch_size: int
    lr: float
    min_lr: float = 1e-7
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.9)
    grad_clip: float = 0.0
    seed: int = 0
    val_every: int = 50
    log_every: int = 10
    ckpt_every: int = 50
    num_workers: int = 0
    amp: str = "none"
    device: str = "auto"
    deterministic: bool = True

    @classmethod
    def from_params(cls, train: Train, *, iters: Optional[int] = None, lr: Optional[float] = None) -> "TrainConfig":
        """The recipe of ``params.train``. The SPF teacher and the SPD students give their own ``iters`` and ``lr``
        (``spf.*``, ``distill.*``) and keep the rest of the baseline's recipe, ``min_lr`` capped at their ``lr``;
        the keys they replace are not read. A run of its own ``iters`` validates at least ``CURVE_POINTS`` times
        (its curve shows a trend, not two dots); validation draws no random numbers, so training is unchanged."""
        own = {key: value for key, value in (("iters", iters), ("lr", lr)) if value is not None}
        values = {f.name: own[f.name] if f.name in own else getattr(train, f.name) for f in fields(cls)}
        if iters is not None:
            values["val_every"] = min(values["val_every"], max(1, iters // CURVE_POINTS))
        return cls(**{**values, "betas": tuple(values["betas"]), "min_lr": min(values["min_lr"], values["lr"])})

    def __post_init__(self) -> None:
        for key in ("iters", "batch_size", "val_every", "log_every", "ckpt_every"):
            if getattr(self, key) < 1:
                raise Sam4irError(f"train: {key} = {getattr(self, key)} must be >= 1")
        if self.amp not in AMP_MODES:
            raise Sam4irError(f"train: amp = {self.amp!r} is not one of {list(AMP_MODES)}")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by ``torchrun`` (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size())


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return torch.device(name)


class SampleStream(Dataset):
    """Sample ``k`` of a run: a random item of ``base`` with its random crop/flip, all seeded by ``(seed, k)``.

    ``base`` draws its augmentation from torch's global (CPU) RNG; it runs inside a forked RNG here so the caller's
    RNG is untouched and any DataLoader worker reproduces the same sample. Only the CPU generator is seeded:
    ``torch.manual_seed`` also queues a lazy CUDA seeding with a recorded stack trace, ~2 ms per sample (a fifth
    of the demo's training time), for no effect on the draws.
    """

    def __init__(self, base: Dataset, seed: int, length: int) -> None:
        self.base, self.seed, self.length = base, seed, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, k: int) -> dict:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(self.seed * 1_000_003 + k)
            idx = int(torch.randint(len(self.base), ()).item())
            return self.base[idx]



def training_loader(train_set: Dataset, cfg: TrainConfig, info: DistInfo, start: int = 0, *,
                    pin_memory: bool = False) -> DataLoader:
    """This process's DataLoader of the run: its rank's samples of the seeded stream from iteration ``start``
    (the benchmarks time exactly this)."""
    stream = SampleStream(train_set, cfg.seed, cfg.iters * cfg.batch_size)
    return DataLoader(stream, batch_size=cfg.batch_size // info.world, sampler=rank_indices(start, cfg, info),
                      num_workers=cfg.num_workers, pin_memory=pin_memory)

def rank_indices(start_iter: int, cfg: TrainConfig, info: DistInfo) -> list[int]:
    """Global sample ids this rank consumes from ``start_iter`` on: its slice of every global batch."""
    if cfg.batch_size % info.world:
        raise Sam4irError(f"train: batch_size {cfg.batch_size} is not divisible by {info.world} processes")
    per_rank = cfg.batch_size // info.world
    return [it * cfg.batch_size + info.rank * per_rank + j
            for it in range(start_iter, cfg.iters) for j in range(per_rank)]


def fingerprint(*parts: object) -> str:
    """Hash of everything that defines a run, so a resume state from another configuration is never used."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}


def fit(objective: nn.Module, train_set: Dataset, cfg: TrainConfig, *, state_path: Optional[Path] = None,
        run_id: str = "", desc: str = "train", log: Optional[LogFn] = None, validate: Optional[Callable[[], dict]] = None,
        info: DistInfo = DistInfo(), device: torch.device = torch.device("cpu")) -> None:
    """Minimise ``objective(batch)['loss']`` for ``cfg.iters`` iterations, resuming from ``state_path``.

    ``objective.nets`` (an ``nn.ModuleDict``) holds the networks whose weights are checkpointed; the resume state
    also keeps the optimiser and schedule, and is only reused if its ``run_id`` matches this run's. A run whose
    loss diverges stops with a one-line error naming ``desc`` (:func:`check_diverged`).
    """
    objective.to(device)
    if device.type == "cuda":  # the CPU's code paths are pinned before torch loads (sam4ir.cpu_pins)
        torch.use_deterministic_algorithms(cfg.deterministic)
        torch.backends.cudnn.benchmark = not cfg.deterministic
    params = [p for p in objective.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.iters, eta_min=cfg.min_lr)
    start = _resume(state_path, run_id, objective, opt, sched, device)
    if start >= cfg.iters:
        return
    model = objective
    if info.world > 1:
        model = nn.parallel.DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None)
    loader = training_loader(train_set, cfg, info, start, pin_memory=device.type == "cuda")
    bar = progress_bar(total=cfg.iters, initial=start, desc=desc, disable=not info.main, dynamic_ncols=True)
    for it, batch in zip(range(start, cfg.iters), loader):
        objective.train()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16"):
            terms = model(_to(batch, device))
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        watched = dict(terms)
        if cfg.grad_clip > 0:
            watched[_GRAD_NORM] = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        step = it + 1
        bar.update(1)
        record = _global_mean(watched, info)
        try:
            check_diverged(desc, step, record["loss"], record.pop(_GRAD_NORM, None))
        except Sam4irError:
            bar.close()  # the error then starts a line of its own
            raise
        if not info.main:
            continue
        record["lr"] = sched.get_last_lr()[0]
        bar.set_postfix(loss=f"{record['loss']:.4f}", refresh=False)  # a refresh per step would be a log line per step
        if validate is not None and (step % cfg.val_every == 0 or step == cfg.iters):
            objective.eval()
            with torch.no_grad():
                record.update(validate())
        if log is not None and (step % cfg.log_every == 0 or "val_psnr" in record or step == cfg.iters):
            log(step, record)
        if state_path is not None and (step % cfg.ckpt_every == 0 or step == cfg.iters):  # the last: see finish_run
            _save_state(state_path, run_id, step, objective, opt, sched)
    bar.close()


def check_diverged(desc: str, step: int, loss: float, grad_norm: Optional[float] = None) -> None:
    """Stop a run whose loss (or clipped gradient norm) is inf/NaN: every later step, checkpoint and evaluation
    would be NaN. Checked on the values :func:`_global_mean` already copied to the host for the log, so it adds
    no device sync; the step's update is already applied, but nothing is saved after it (the resume state of an
    earlier, finite step may stay; ``model.pt`` is written only when :func:`fit` returns). Every process sees the
    same global mean, so all of them stop together."""
    bad = [f"{name} is {value}" for name, value in (("loss", loss), ("gradient norm", grad_norm))
           if value is not None and not math.isfinite(value)]
    if bad:
        raise Sam4irError(f"{desc}: training diverged at iteration {step} ({', '.join(bad)}); no model saved "
                          "(usually train.lr / distill.lr / spf.lr too high, or train.amp bf16)")


def _global_mean(terms: dict[str, Tensor], info: DistInfo) -> dict[str, float]:
    """Loss terms averaged over all processes: what one process with the whole global batch would log."""
    values = torch.stack([v.detach().float() for v in terms.values()])
    if info.world > 1:
        dist.all_reduce(values)
        values /= info.world
    return dict(zip(terms, values.tolist()))


def _save_state(path: Path, run_id: str, step: int, objective: nn.Module, opt, sched) -> None:
    state = {"run_id": run_id, "iter": step, "nets": objective.nets.state_dict(),
             "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
    save_torch(path, state)


def _load_state(path: Optional[Path], run_id: str, device: torch.device) -> Optional[dict]:
    """The resume state at ``path`` if it belongs to ``run_id``; a damaged one (a crash while the disk filled, a
    bad copy) is reported in one line and set aside as ``<name>.corrupt``, and the run starts afresh."""
    if path is None or not path.is_file():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        if not isinstance(state, dict) or not {"run_id", "iter", "nets", "optimizer", "scheduler"} <= set(state):
            raise ValueError("not a sam4ir resume state")
    except Exception as err:  # torch.load raises whatever its unpickler or zip reader meets  # noqa: BLE001
        aside = path.with_name(path.name + ".corrupt")
        path.replace(aside)
        detail = " ".join(str(err).split())[:120] or type(err).__name__
        print(f"sam4ir: warning: {path}: damaged resume state ({detail}); moved to {aside.name}, starting afresh",
              file=sys.stderr)
        return None
    return state if state.get("run_id") == run_id else None


def saved_iter(path: Optional[Path], run_id: str) -> int:
    """Iteration a run with this ``run_id`` would resume from (0: start afresh)."""
    state = _load_state(path, run_id, torch.device("cpu"))
    return 0 if state is None else int(state["iter"])


def _resume(path: Optional[Path], run_id: str, objective: nn.Module, opt, sched, device: torch.device) -> int:
    state = _load_state(path, run_id, device)
    if state is None:
        return 0
    objective.nets.load_state_dict(state["nets"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    print(f"resuming {run_id} from iteration {state['iter']} ({path})")
    return int(state["iter"])

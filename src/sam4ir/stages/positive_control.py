"""Positive control for distillation itself: can this testbed detect a transfer from a clearly better teacher?

The teacher has no priors: IR1's architecture (``model.*``) :data:`WIDTH_FACTOR` times wider, same blocks, trained
with the baseline's recipe (``train.*``) on the task's prepared data. It is distilled into IR1 with the project's
own distillation term and weight (``distill.spd_weight`` x ``spd_loss(distill.spd_loss)``) on the ``images``
analyzer (the restored images: the one analyzer that compares networks of different widths), against its control:
the same schedule, seed and samples without the teacher term. Schedules (:data:`SCHEDULES`):

- ``demo``: IR1 from the baseline checkpoint for ``distill.iters`` at ``distill.lr`` (``distill.init: baseline``);
- ``scratch``: IR1 from new weights with the full baseline recipe (``distill.init: scratch``);
- candidates for a schedule that can show a transfer (longer, stronger): scored on the validation split only, so
  nothing is chosen on the test split.

A seed sets ``train.seed`` (the sample stream; from scratch also IR1's initial weights); the distilled run and its
control share it, so their difference is paired. Every student is scored with BasicSR's PSNR as ``evaluate`` scores
(``eval.crop_border``, ``eval.test_y_channel``, per-set means). Writes ``reports/positive_control.{md,csv,png}``.

Finished teachers and runs are kept in ``data/positive_control/<task>`` (ignored by git), keyed by the params, data,
checkpoints and schedule they depend on (not the code: ``--fresh`` recomputes), so an interrupted run goes on where
it stopped and a report over more tasks reuses what is done; ``--cached-only`` trains nothing and writes the page of
the finished pairs. Needs ``data/prepared`` and the baseline checkpoints (``dvc repro train_baseline``).

    python -m sam4ir.stages.positive_control [--tasks ...] [--seeds 0 1 2] [--schedules demo scratch]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import pandas as pd
import torch
from torch import Tensor, nn

from sam4ir import models
from sam4ir.data import PairedDataset
from sam4ir.data.transforms import random_transform
from sam4ir.errors import Sam4irError
from sam4ir.inference import to_tensor
from sam4ir.io import files_sha256, write_json
from sam4ir.method.analyzer import build_analyzer
from sam4ir.method.objectives import BaselineObjective, frozen, scale_warning
from sam4ir.method.spd import spd_loss
from sam4ir.models import RestorationOutput
from sam4ir.params.schema import Distill, Params
from sam4ir.progress import progress_bar
from sam4ir.stages import command_parser, run_stage
from sam4ir.stages.shared.paths import DATA, TaskPaths
from sam4ir.training.losses import recon_loss

WIDTH_FACTOR = 4
WIDTH_ARG = {"nafnet": "width", "hinet": "wf", "restormer": "dim"}  # each network's width argument
ANALYZER = "images"  # output distillation: the student's and the teacher's restored images
SPLITS = ("val", "test")
CACHE = DATA / "positive_control"


@dataclass(frozen=True)
class Schedule:
    """How the student is trained: ``init`` ``baseline`` (``distill.iters`` x ``iters_factor`` at ``distill.lr``)
    or ``scratch`` (``train.iters`` x ``iters_factor`` at ``train.lr``), with ``distill.spd_weight`` x
    ``spd_factor``. ``splits``: where its students are scored (candidates: the validation split only)."""

    init: str
    iters_factor: int = 1
    spd_factor: float = 1.0
    splits: tuple[str, ...] = SPLITS


CANDIDATE = ("val",)
SCHEDULES = {
    "demo": Schedule("baseline"),
    "scratch": Schedule("scratch"),
    # the weighted L1 term on images pulls IR1 about two orders of magnitude weaker than the PSNR loss (the
    # objective's first-step check): a weight that evens the pull, one that makes the teacher's pull dominate,
    # and the even weight with ten times the iterations or from scratch
    "demo_w100": Schedule("baseline", spd_factor=100.0, splits=CANDIDATE),
    "demo_w1000": Schedule("baseline", spd_factor=1000.0, splits=CANDIDATE),
    "demo_long_w100": Schedule("baseline", iters_factor=10, spd_factor=100.0, splits=CANDIDATE),
    "scratch_w100": Schedule("scratch", spd_factor=100.0, splits=CANDIDATE),
}
REPORTED = ("demo", "scratch")  # the schedules of the page's headline (test split)


class OutputDistillation(nn.Module):
    """IR1 with L_rec¹ + λ₁·L_SPD against a frozen teacher of any width, on the ``images`` analyzer.

    The terms are the project's own (:func:`recon_loss`, :func:`spd_loss`, :func:`build_analyzer`); the teacher
    restores the degraded input itself (a plain better network, no SPF fusion). Its output is the batch's
    ``teacher`` image when the data give it (:class:`TeacherTargets`), else the ``teacher`` network is run on the
    batch. ``distill=False`` is the control: L_rec¹ alone, no teacher read, so the two differ only by what the
    teacher passes on.
    """

    def __init__(self, ir1: nn.Module, cfg: Distill, *, recon: str, distill: bool = True,
                 teacher: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.nets = nn.ModuleDict({"ir1": ir1})
        self.teacher = frozen(teacher) if teacher is not None else None
        self.recon, self.kind = recon, cfg.spd_loss
        self.weight = cfg.spd_weight if distill else 0.0
        self.analyzer = build_analyzer(ANALYZER)
        self.scales_checked = False
        self.warning: Optional[str] = None  # scale_warning's line at the first step, kept for the report

    def train(self, mode: bool = True) -> "OutputDistillation":
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def _teacher_output(self, batch: dict) -> RestorationOutput:
        if "teacher" in batch:
            return RestorationOutput([batch["teacher"]], batch["teacher"])
        if self.teacher is None:
            raise Sam4irError("positive control: a distilled run needs a teacher network or teacher targets")
        with torch.no_grad():
            return self.teacher.forward_train(batch["input"])

    def forward(self, batch: dict) -> dict[str, Tensor]:
        out1 = self.nets["ir1"].forward_train(batch["input"])
        recon1 = recon_loss(self.recon, out1.images, batch["target"])
        terms = {"recon1": recon1.detach(), "loss": recon1}
        if self.weight == 0:
            return terms
        spd = spd_loss(*self.analyzer(out1, self._teacher_output(batch)), self.kind)
        weighted = self.weight * spd
        if self.training and not self.scales_checked and torch.is_grad_enabled():
            self.scales_checked = True
            self.warning = scale_warning(self.nets["ir1"], recon1, {"spd": weighted})
        return {**terms, "spd": spd.detach(), "loss": recon1 + weighted}


class TeacherTargets(PairedDataset):
    """Training pairs with the teacher's restoration of each whole image, computed once and cropped and flipped
    with the pair (``teacher`` in every item): offline distillation, the teacher's cost paid once per image
    instead of once per sample. A crop's target is the teacher's output on that region of the whole image (the
    teacher sees the crop's surroundings too)."""

    def __init__(self, root: Path, split: str, teacher: nn.Module, **kwargs) -> None:
        self.teacher = frozen(teacher)
        super().__init__(root, split, **kwargs)

    def _load(self, i: int, keep: bool = False) -> list:
        arrays = super()._load(i, keep)
        with torch.no_grad():
            restored = self.teacher(to_tensor(arrays[0]))[0]
        return [*arrays, restored.permute(1, 2, 0).numpy()]

    def __getitem__(self, i: int) -> dict:
        # the parent draws one transform from torch's RNG: replay that draw for the teacher's image
        before = torch.get_rng_state()
        item = super().__getitem__(i)
        after = torch.get_rng_state()
        arrays = self._cache[i] if self._cache is not None else self._load(i)
        torch.set_rng_state(before)
        transform = random_transform(*arrays[0].shape[:2], self.crop, self.augment)
        torch.set_rng_state(after)
        return {**item, "teacher": torch.from_numpy(transform.apply_one(arrays[-1]).transpose(2, 0, 1).copy())}


def wide_kwargs(params: Params, factor: int = WIDTH_FACTOR) -> dict:
    """The chosen network's constructor arguments with its width multiplied by ``factor`` (same blocks)."""
    name = params.model.name
    if name not in WIDTH_ARG:
        raise params.error("model.name", f"{name!r}: the positive control widens {', '.join(WIDTH_ARG)} only")
    kwargs = params.model.kwargs
    return {**kwargs, WIDTH_ARG[name]: kwargs[WIDTH_ARG[name]] * factor}


def build_net(params: Params, kwargs: dict, seed: int) -> nn.Module:
    """``model.name`` built with ``kwargs``, initial weights drawn from ``seed`` (the caller's RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return models.build(params.model.name, feature_layer=params.model.feature_layer, **kwargs)


def with_seed(params: Params, seed: int) -> Params:
    return params.model_copy(update={"train": params.train.model_copy(update={"seed": seed})})


def _fit(params: Params, paths: TaskPaths, objective: nn.Module, recipe, desc: str,
         teacher: Optional[nn.Module] = None) -> float:
    """Train ``objective`` on the task's training pairs (the baseline's data settings; with the ``teacher``'s
    targets when given); its wall time in s."""
    from sam4ir.training.fit import fit, resolve_device

    data = dict(crop=params.train.crop, augment=params.train.augment, cache=params.train.cache_images)
    train_set = (PairedDataset(paths.prepared, "train", **data) if teacher is None else
                 TeacherTargets(paths.prepared, "train", teacher, **data))
    start = time.perf_counter()
    fit(objective, train_set, recipe, desc=desc, device=resolve_device(recipe.device))
    objective.cpu()
    return time.perf_counter() - start


def split_psnr(net: nn.Module, params: Params, paths: TaskPaths, split: str) -> float:
    """``net``'s PSNR on the task's ``split`` as ``evaluate`` scores it: 8-bit outputs, BasicSR's PSNR with the
    task's ``eval`` conventions, the mean per set and then over the sets."""
    from sam4ir.data.paired import split_pairs
    from sam4ir.inference import to_uint8
    from sam4ir.io import read_image
    from sam4ir.metrics import calculate_psnr
    from sam4ir.scores import summarise_scores
    from sam4ir.stages.evaluate import check_finite

    if paths.task not in params.eval.test_y_channel:
        raise params.error(f"eval.test_y_channel.{paths.task}", "missing: say whether PSNR uses the Y channel")
    y_channel = params.eval.test_y_channel[paths.task]
    net = net.eval()
    rows = []
    for pair in split_pairs(paths.prepared, split):
        target = read_image(pair.target)
        with torch.no_grad():
            y = check_finite(net(to_tensor(read_image(pair.input))), paths.prepared, pair.name)
        rows.append({"method": "net", "set": pair.test_set,
                     "psnr": calculate_psnr(to_uint8(y), target, params.eval.crop_border, test_y_channel=y_channel,
                                            color_order="rgb")})
    return float(summarise_scores(pd.DataFrame(rows), ["psnr"])["net"]["psnr"])


class TaskControl:
    """One task's positive control: its teacher, baseline and runs, each computed once and kept in the cache."""

    def __init__(self, params: Params, task: str, *, fresh: bool = False, cache: Path = CACHE,
                 cached_only: bool = False) -> None:
        self.params, self.paths, self.fresh, self.cached_only = params, TaskPaths(task), fresh, cached_only
        self.cache = cache / task
        self.baseline_file = self.paths.run("baseline") / "model.pt"
        if not self.baseline_file.is_file():
            raise Sam4irError(f"{self.baseline_file}: baseline checkpoint missing (run `dvc repro train_baseline`)")
        data = sorted((p.name, p.stat().st_size) for p in self.paths.prepared.rglob("*.png"))
        if not data:
            raise Sam4irError(f"{self.paths.prepared}: no prepared images (run `dvc repro prepare_data`)")
        snap = params.snapshot()
        # what the teacher depends on; the students also on distill.* (read in `student`)
        self.identity = {key: snap[key] for key in ("model", "train", "eval")} | {"data": data}
        self.distill = snap["distill"]
        self._teacher: Optional[tuple[nn.Module, dict]] = None

    def _key(self, *parts: object) -> str:
        from sam4ir.training.fit import fingerprint
        return fingerprint(self.identity, *parts)

    def _cached(self, path: Path, key: str) -> Optional[dict]:
        if self.fresh or not path.is_file():
            return None
        record = json.loads(path.read_text())
        return record if record.get("key") == key else None

    def _save(self, path: Path, record: dict) -> dict:
        ignore = self.cache.parent / ".gitignore"  # results of runs, not sources: never committed
        if not ignore.is_file():
            ignore.parent.mkdir(parents=True, exist_ok=True)
            ignore.write_text("*\n")
        write_json(path, record)
        return record

    def teacher(self) -> tuple[nn.Module, dict]:
        """The wide teacher (trained once) and its record: parameter counts, PSNR per split, minutes."""
        if self._teacher is None:
            self._teacher = self._train_teacher()
        return self._teacher

    def _train_teacher(self) -> tuple[nn.Module, dict]:
        kwargs = wide_kwargs(self.params)
        key = self._key("teacher", kwargs)
        path, weights = self.cache / "teacher.json", self.cache / "teacher.pt"
        record = self._cached(path, key)
        if record is not None and weights.is_file():
            return models.load_model(weights), record
        if self.cached_only:
            raise Sam4irError(f"{path}: no finished teacher for these params (run without --cached-only)")
        from sam4ir.training.fit import TrainConfig
        net = build_net(self.params, kwargs, self.params.train.seed)
        seconds = _fit(self.params, self.paths, BaselineObjective(net, self.params.train.loss),
                       TrainConfig.from_params(self.params.train), f"{self.paths.task}/wide teacher")
        models.save_model(weights, net, self.params.model.name, kwargs)
        baseline = models.load_model(self.baseline_file)
        record = {"key": key, "kwargs": kwargs, "params": models.count_params(net),
                  "baseline_params": models.count_params(baseline), "minutes": seconds / 60,
                  "psnr": {s: split_psnr(net, self.params, self.paths, s) for s in SPLITS},
                  "baseline_psnr": {s: split_psnr(baseline, self.params, self.paths, s) for s in SPLITS}}
        return net, self._save(path, record)

    def student(self, name: str, seed: int, distilled: bool) -> Optional[dict]:
        """One student of schedule ``name`` at ``seed``, distilled or its control: PSNR per split and minutes
        (None when ``cached_only`` and it has not run)."""
        from sam4ir.stages.run import build_ir
        from sam4ir.training.fit import TrainConfig

        schedule = SCHEDULES[name]
        teacher, teacher_record = self.teacher()
        arm = "distilled" if distilled else "control"
        key = self._key("student", self.distill, asdict(schedule), seed, arm, teacher_record["key"],
                        files_sha256([self.baseline_file]))
        path = self.cache / name / f"seed{seed}-{arm}.json"
        record = self._cached(path, key)
        if record is not None or self.cached_only:
            return record
        params = with_seed(self.params, seed)
        cfg = params.distill.model_copy(update={"spd_weight": params.distill.spd_weight * schedule.spd_factor})
        ir1 = build_ir(params)
        if schedule.init == "baseline":
            models.load_weights(ir1, self.baseline_file)
            recipe = TrainConfig.from_params(params.train, iters=cfg.iters * schedule.iters_factor, lr=cfg.lr)
        elif schedule.init == "scratch":
            recipe = TrainConfig.from_params(params.train, iters=params.train.iters * schedule.iters_factor)
        else:
            raise Sam4irError(f"positive control: schedule {name!r} has unknown init {schedule.init!r}")
        objective = OutputDistillation(ir1, cfg, recon=params.train.loss, distill=distilled)
        seconds = _fit(params, self.paths, objective, recipe, f"{self.paths.task}/{name}/seed {seed}/{arm}",
                       teacher if distilled else None)
        record = {"key": key, "iters": recipe.iters, "lr": recipe.lr,
                  "spd_weight": cfg.spd_weight if distilled else 0.0,
                  "minutes": seconds / 60, "scale_warning": objective.warning,
                  "psnr": {s: split_psnr(ir1, params, self.paths, s) for s in schedule.splits}}
        return self._save(path, record)


def run_rows(control: TaskControl, schedules: list[str], seeds: list[int], bar) -> list[dict]:
    """One row per schedule x seed x split of the task: the teacher's and the baseline's PSNR and both students'."""
    _, teacher = control.teacher()
    rows = []
    for name in schedules:
        for seed in seeds:
            arms = {}
            for distilled in (True, False):
                arms[distilled] = control.student(name, seed, distilled)
                bar.update(1)
            if None in arms.values():  # --cached-only: a pair not finished yet
                continue
            for split in SCHEDULES[name].splits:
                rows.append({"task": control.paths.task, "schedule": name, "split": split, "seed": seed,
                             "init": SCHEDULES[name].init, "iters": arms[True]["iters"], "lr": arms[True]["lr"],
                             "spd_weight": arms[True]["spd_weight"],
                             "teacher_psnr": teacher["psnr"][split], "baseline_psnr": teacher["baseline_psnr"][split],
                             "distilled_psnr": arms[True]["psnr"][split], "control_psnr": arms[False]["psnr"][split],
                             "distilled_minutes": arms[True]["minutes"], "control_minutes": arms[False]["minutes"],
                             "teacher_params": teacher["params"], "width_factor": WIDTH_FACTOR,
                             "baseline_params": teacher["baseline_params"],
                             "teacher_minutes": teacher["minutes"], "scale_warning": arms[True]["scale_warning"]})
    return rows


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = command_parser(__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--tasks", nargs="+", help="default: the params' tasks")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--schedules", nargs="+", default=list(REPORTED), choices=list(SCHEDULES))
    parser.add_argument("--out", default="reports", help="folder of positive_control.{md,csv,png}")
    parser.add_argument("--no-report", action="store_true", help="only compute (another call writes the page)")
    parser.add_argument("--fresh", action="store_true", help="recompute the teacher and runs kept in the cache")
    parser.add_argument("--cached-only", action="store_true", help="train nothing: the page of the finished pairs")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> None:
    from sam4ir.params.config import load_params

    args = parse_args(argv)
    params = load_params(args.params)
    tasks = args.tasks or list(params.tasks)
    unknown = [t for t in tasks if t not in params.tasks]
    if unknown:
        raise Sam4irError(f"{args.params}: task '{unknown[0]}' is not in tasks {params.tasks}")
    controls = [TaskControl(params, task, fresh=args.fresh, cached_only=args.cached_only) for task in tasks]
    rows = []
    with progress_bar(total=len(tasks) * len(args.schedules) * len(args.seeds) * 2, desc="positive control") as bar:
        for control in controls:
            rows += run_rows(control, args.schedules, args.seeds, bar)
    if not args.no_report:
        from sam4ir.report.positive_control import write_report
        write_report(pd.DataFrame(rows), Path(args.out), tasks=tasks)


if __name__ == "__main__":
    run_stage(main)

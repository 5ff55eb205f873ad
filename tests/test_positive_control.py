"""The positive control for distillation: a wider teacher, the project's distillation term against a control that
differs only by it, teacher targets that follow each sample's crop, and a page whose sentence says what its
numbers say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from sam4ir import models
from sam4ir.data import PairedDataset
from sam4ir.io import write_image
from sam4ir.method.objectives import DistillObjective
from sam4ir.method.spd import spd_loss
from sam4ir.params.config import load_params
from sam4ir.report.positive_control import sentence, summary, transferring, write_report
from sam4ir.stages.positive_control import (OutputDistillation, TaskControl, TeacherTargets, build_net, run_rows,
                                            wide_kwargs)
from sam4ir.training.losses import recon_loss

ROOT = Path(__file__).resolve().parents[1]
SIDE = 48  # the training crop of params.yaml: the smallest image it takes


@pytest.fixture(scope="module")
def params():
    return load_params(ROOT / "params.yaml")


def tiny(params, iters: int = 2):
    """The repository's params with runs of a few iterations."""
    return params.model_copy(update={
        "train": params.train.model_copy(update={"iters": iters, "val_every": 1, "batch_size": 2}),
        "distill": params.distill.model_copy(update={"iters": iters})})


def write_pairs(root: Path, split: str, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        target = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
        noisy = np.clip(target + rng.normal(0, 25, target.shape), 0, 255).astype(np.uint8)
        write_image(root / split / "input" / f"p{i}.png", noisy)
        write_image(root / split / "target" / f"p{i}.png", target)


def test_the_teacher_is_wider_and_larger(params):
    kwargs = wide_kwargs(params)
    assert kwargs["width"] == 4 * params.model.kwargs["width"]
    assert {k: v for k, v in kwargs.items() if k != "width"} == {k: v for k, v in params.model.kwargs.items()
                                                                  if k != "width"}
    teacher, student = build_net(params, kwargs, 0), build_net(params, params.model.kwargs, 0)
    assert models.count_params(teacher) > 4 * models.count_params(student)


def batch(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"input": torch.rand(2, 3, 16, 16, generator=g), "target": torch.rand(2, 3, 16, 16, generator=g)}


def test_the_distilled_loss_adds_the_weighted_term_and_the_control_is_the_pipelines(params):
    student = build_net(params, params.model.kwargs, 0)
    teacher = build_net(params, wide_kwargs(params), 1)
    cfg = params.distill.model_copy(update={"spd_weight": 3.0})
    b = batch()
    distilled = OutputDistillation(student, cfg, recon="psnr", teacher=teacher)(b)
    control = OutputDistillation(student, cfg, recon="psnr", distill=False, teacher=teacher)(b)
    out_s, out_t = student(b["input"]), teacher(b["input"])
    recon = recon_loss("psnr", [out_s], b["target"])
    assert torch.allclose(distilled["loss"], recon + 3.0 * spd_loss(out_s, out_t, cfg.spd_loss))
    assert distilled["spd"] > 0 and "spd" not in control
    pipeline = DistillObjective(student, None, cfg, params.spf, recon="psnr", method="control")(b)
    assert torch.equal(control["loss"], pipeline["loss"])
    # the teacher's output given in the batch is the same term as the teacher run on it
    given = OutputDistillation(student, cfg, recon="psnr")({**b, "teacher": out_t.detach()})
    assert torch.allclose(given["loss"], distilled["loss"])


class Brighter(nn.Module):
    """A teacher whose output is known: its input plus 0.1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.1


def test_teacher_targets_follow_each_samples_crop_and_flip(tmp_path):
    write_pairs(tmp_path, "train", 3, seed=0)
    write_pairs(tmp_path, "val", 1, seed=1)
    data = TeacherTargets(tmp_path, "train", Brighter(), crop=16, augment=True, cache=True)
    torch.manual_seed(0)
    for i in range(8):
        item = data[i % len(data)]
        assert torch.allclose(item["teacher"], item["input"] + 0.1, atol=1e-6)
    # the replay leaves the sample stream as the plain pairs draw it: same crops, same RNG state after
    plain = PairedDataset(tmp_path, "train", crop=16, augment=True, cache=True)
    for dataset in (data, plain):
        torch.manual_seed(1)
        items = [dataset[i % len(dataset)] for i in range(5)]
        dataset.drawn = (items, torch.rand(1))
    for got, want in zip(data.drawn[0], plain.drawn[0]):
        assert torch.equal(got["input"], want["input"]) and torch.equal(got["target"], want["target"])
    assert torch.equal(data.drawn[1], plain.drawn[1])


def test_a_tiny_control_end_to_end(params, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prepared = tmp_path / "data" / "prepared" / "denoise"
    write_pairs(prepared, "train", 3, seed=0)
    write_pairs(prepared, "val", 2, seed=1)
    write_pairs(prepared, "test", 2, seed=2)
    small = tiny(params)
    models.save_model(tmp_path / "data" / "runs" / "baseline" / "denoise" / "model.pt",
                      build_net(small, small.model.kwargs, 0), small.model.name, small.model.kwargs)
    control = TaskControl(small, "denoise", cache=tmp_path / "cache")

    class Bar:
        n = 0

        def update(self, k: int) -> None:
            self.n += k

    bar = Bar()
    rows = pd.DataFrame(run_rows(control, ["demo"], [0, 1], bar))
    assert bar.n == 4 and len(rows) == 4  # 2 seeds x (val, test)
    assert (rows.teacher_params > rows.baseline_params).all()
    assert (rows.spd_weight == small.distill.spd_weight).all() and (rows.iters == 2).all()
    again = pd.DataFrame(run_rows(TaskControl(small, "denoise", cache=tmp_path / "cache"), ["demo"], [0, 1], bar))
    pd.testing.assert_frame_equal(rows, again)  # from the cache: the same numbers
    only = TaskControl(small, "denoise", cache=tmp_path / "cache", cached_only=True)
    assert len(run_rows(only, ["demo", "scratch"], [0, 1, 2], bar)) == 4  # only the finished pairs, nothing trained
    write_report(rows, tmp_path / "reports", tasks=["denoise"])
    page = (tmp_path / "reports" / "positive_control.md").read_text().splitlines()
    assert page[0] == sentence(rows)
    assert (tmp_path / "reports" / "positive_control.png").is_file()
    assert len(pd.read_csv(tmp_path / "reports" / "positive_control.csv")) == 4


def runs(gains: list[float], lead: float = 2.0, task: str = "denoise", schedule: str = "demo") -> pd.DataFrame:
    return pd.DataFrame([{"task": task, "schedule": schedule, "split": "test", "seed": s, "init": "baseline",
                          "iters": 100, "lr": 2e-4, "spd_weight": 1.0, "teacher_psnr": 30.0 + lead,
                          "baseline_psnr": 30.0, "distilled_psnr": 29.0 + g, "control_psnr": 29.0,
                          "distilled_minutes": 1.0, "control_minutes": 0.5, "teacher_params": 100,
                          "baseline_params": 10, "width_factor": 4, "teacher_minutes": 3.0,
                          "scale_warning": None}
                         for s, g in enumerate(gains)])


def test_the_sentence_reflects_the_numbers():
    clear = pd.concat([runs([0.10, 0.12, 0.11]), runs([0.01, -0.02, 0.015], task="derain", lead=1.0)])
    text = sentence(clear)
    assert "+2.00 dB on denoise" in text and "+1.00 dB on derain" in text
    assert "denoise +0.110 ± 0.010 dB (5.5 ± 0.5% of the lead, above zero at 3 seeds)" in text
    assert "derain +0.002 ± 0.019 dB (0.2 ± 1.9% of the lead, not distinguishable from zero at 3 seeds)" in text
    table = summary(clear, "test")
    assert table.set_index("task").loc["denoise", "per_seed"] == "+0.100 +0.120 +0.110"
    assert table.set_index("task").loc["denoise", "minutes"] == pytest.approx(4.5)
    assert "below zero" in sentence(runs([-0.10, -0.12, -0.11]))
    assert "denoise +0.100 dB (5.0% of the lead, one run, so no spread)" in sentence(runs([0.10]))


def test_the_page_names_a_weak_term(tmp_path):
    line = "sam4ir: warning: first distillation step: distill.spd_weight x L_SPD pulls 150x weaker"
    weak = runs([0.0, 0.001, -0.001]).assign(scale_warning=[None, line, None])
    write_report(weak, tmp_path, tasks=["denoise"])
    page = (tmp_path / "positive_control.md").read_text()
    assert "- denoise, demo (seed 1): distill.spd_weight x L_SPD pulls 150x weaker" in page


def test_the_closing_note_names_only_schedules_that_transfer_on_every_task():
    both = pd.concat([runs([0.10, 0.12, 0.11]), runs([0.10, 0.11, 0.12], task="derain"),
                      runs([0.10, 0.12, 0.11], schedule="scratch"), runs([0.1, -0.1, 0.0], task="derain",
                                                                        schedule="scratch")]).assign(split="val")
    note = transferring(summary(both, "val"), ["denoise", "derain"])
    assert note.startswith("Schedules whose transfer is above zero on every task") and "demo (5.5" in note
    assert "scratch" not in note
    note = transferring(summary(both[both.schedule == "scratch"], "val"), ["denoise", "derain"])
    assert note.startswith("No schedule tried") and "5.5 ± 0.5% of the lead (scratch, denoise)" in note

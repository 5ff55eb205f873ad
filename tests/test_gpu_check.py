"""benchmarks/gpu_check.sh --tiny (gpu_check.py): the GPU check's own code on CPU, so the one script a GPU user runs cannot rot.

Checks the JSON it writes has every figure the README quotes, each finite and in range, and that on CPU our
batched SamSegmenter gives exactly segment-anything's own partitions."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def positive(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def fraction(x: object) -> bool:
    return isinstance(x, float) and 0.0 <= x <= 1.0


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("gpu_check")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}
    # through the shell wrapper, from another folder: what a GPU user types
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--tiny", "--out", str(out),
                           "--tmp", str(out)], cwd=out, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "gpu_check.json").read_text())


def test_every_section_ran(report):
    assert report["errors"] == {}
    assert report["env"]["tiny"] is True and report["env"]["device"] == "cpu"
    assert report["env"]["torch"] == torch.__version__ and report["env"]["torch_accepted"] == ">=2.3,<3.0"
    assert set(report["seconds"]) == {"sam", "sam_relaxed", "train", "loader", "total"}
    assert all(positive(s) for s in report["seconds"].values())
    assert report["seconds"]["total"] >= sum(v for k, v in report["seconds"].items() if k != "total")


@pytest.mark.parametrize("section", ["sam", "sam_relaxed"])
def test_sam_against_the_reference_generator(report, section):
    sam = report[section]
    assert sam["model"] == "tiny" and sam["images"] >= 2 and sam["generator"]["points_per_side"] >= 2
    assert set(sam["cases"]) == {"ours_fp32", "ours_fp32_batch1", "reference_fp32"}  # bf16 runs on CUDA only
    for case in sam["cases"].values():
        assert positive(case["s_per_image"]) and positive(case["images_per_s"])
        assert math.isclose(case["s_per_image"] * case["images_per_s"], 1.0, rel_tol=1e-6)
        assert case["masks_per_image"] >= 0 and case["segments_per_image"] >= 0
        assert case["peak_mib"] is None  # CPU: no per-case peak
    assert positive(sam["speedup_fp32"])
    # on CPU the batched encoder is the one-image path: the same label maps, pixel for pixel
    for key in ("fp32", "fp32_batch1"):
        assert sam[f"same_partitions_{key}"] is True and sam[f"pixel_agreement_{key}"] == 1.0
    assert sam["cases"]["ours_fp32"]["masks_per_image"] == sam["cases"]["reference_fp32"]["masks_per_image"]
    if section == "sam_relaxed":
        assert sam["generator"]["pred_iou_thresh"] == sam["generator"]["stability_score_thresh"] == 0.0
        assert sam["cases"]["ours_fp32"]["segments_per_image"] >= 2  # a partition worth comparing


def test_budget_skips_sections_and_says_so(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--tiny", "--out",
                           str(tmp_path), "--sections", "sam,train", "--budget-s", "0"], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith("gpu_check: failed sections:")
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert "sam" not in report and "train" not in report and set(report["seconds"]) == {"total"}
    assert all(report["errors"][k].startswith("skipped: ") for k in ("sam", "train"))


def test_train_step_figures(report):
    train = report["train"]
    for case in ("baseline", "distill"):
        r = train[case]
        assert r["case"] == case and r["model"] == "nafnet" and r["width"] == 8
        assert positive(r["step_ms"]) and positive(r["trainable_m"]) and r["peak_mib"] >= 0
    assert math.isclose(train["distill_over_baseline_step"], train["distill"]["step_ms"] / train["baseline"]["step_ms"])


def test_loader_wait_fraction(report):
    loader = report["loader"]
    assert loader["pairs"] >= 2 and set(loader["runs"]) == {"0", "1"}
    for workers, run in loader["runs"].items():
        assert run["workers"] == int(workers)
        assert fraction(run["wait_fraction"]) and fraction(run["wait_fraction_all"]) and run["steady_steps"] >= 1
        assert positive(run["step_s"]) and positive(run["first_batch_s"]) and positive(run["samples_per_s"])
        assert run["wait_s_median"] >= 0
    # without workers every batch is decoded in the loop itself: some waiting is certain
    assert loader["runs"]["0"]["wait_fraction"] > 0


@pytest.mark.parametrize("version, ok", [("2.3.0", True), ("2.6.0+cu124", True), ("2.8.0a0+git5c7a9b2", True),
                                         (torch.__version__, True), ("2.2.2", False), ("1.13.1+cu117", False),
                                         ("3.0.0", False), ("nightly", False)])
def test_the_torch_it_finds_is_accepted_within_the_stated_range(version, ok):
    """A site's own torch (a CUDA build, a release candidate) runs the check when its release is in the range,
    and the line says which range either way."""
    from gpu_check import torch_verdict

    accepted, line = torch_verdict(version, "/site/torch")
    assert accepted is ok
    assert line.startswith(f"gpu_check: torch {version} (/site/torch) {'accepted' if ok else 'refused'}: ")
    assert ">=2.3,<3.0" in line and "requirements-notorch.txt" in line


def test_a_refused_torch_stops_before_any_section(tmp_path, monkeypatch):
    import gpu_check

    monkeypatch.setattr(gpu_check.torch, "__version__", "2.1.0+cu118")
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--tiny", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as stop:
        gpu_check.main()
    assert stop.value.code == 1 and not (tmp_path / "gpu_check.json").exists()

"""The paper-scale benchmarks run end to end at toy sizes (their figures are printed, never asserted on time), and
the synthetic sets they generate are what the training loader reads."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import synthetic  # noqa: E402

from sam4ir.data import PairedDataset  # noqa: E402
from sam4ir.io import read_image, read_label_map  # noqa: E402
from sam4ir.training.fit import SampleStream  # noqa: E402


def run(script: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("kind", ["noise", "blur", "rain", "flat"])
def test_synthetic_pairs_are_readable_pairs_with_label_maps(tmp_path, kind):
    written = synthetic.write_pairs(tmp_path / "data", (40, 56), 3, kind, masks_root=tmp_path / "masks")
    ds = PairedDataset(tmp_path / "data", "train", crop=32, augment=True, masks_root=tmp_path / "masks")
    assert len(ds) == 3 and written == sum(p.stat().st_size for p in tmp_path.rglob("*.png"))
    pair = ds.pairs[0]
    degraded, target = read_image(pair.input), read_image(pair.target)
    assert degraded.shape == target.shape == (40, 56, 3) and not np.array_equal(degraded, target)
    labels = read_label_map(tmp_path / "masks" / "train" / f"{pair.name}.png")
    assert labels.shape == (40, 56) and 1 < len(np.unique(labels)) <= 48
    assert ds[0]["input"].shape == (3, 32, 32)


def test_training_loader_draws_the_samples_of_the_training_stream(tmp_path):
    synthetic.write_pairs(tmp_path / "data", (40, 40), 4, "flat", masks_root=tmp_path / "masks")
    ds = PairedDataset(tmp_path / "data", "train", crop=16, augment=True, masks_root=tmp_path / "masks")
    batches = list(synthetic.training_loader(ds, batch=3, workers=0, batches=2, seed=5))
    assert [len(b["name"]) for b in batches] == [3, 3]
    stream = SampleStream(ds, 5, 6)
    for k in range(6):
        assert torch.equal(batches[k // 3]["mask"][k % 3], stream[k]["mask"])


def test_bench_data_prints_a_row_per_worker_count_and_the_memory_figures(tmp_path):
    out = run("bench_data.py", "--sets", "sidd_sub", "--pairs", "3", "--workers", "0,1", "--batches", "2",
              "--batch", "2", "--crop", "64", "--rss-pairs", "4", "--dir", str(tmp_path), cwd=tmp_path)
    rows = [line.split() for line in out.splitlines() if line.startswith("sidd_sub")]
    assert [r[3] for r in rows] == ["0", "1"]
    assert all(float(r[5]) > 0 for r in rows)  # samples/s
    assert re.search(r"workers 0: cached True, decoded 0\.0 GiB", out), out
    assert re.search(r"workers 1: cached True.*largest worker [1-9]\d* MiB", out), out
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone


def test_bench_dvc_scale_measures_every_command(tmp_path):
    out = run("bench_dvc_scale.py", "--pairs", "3", "--consumers", "1", "--deps", "fingerprints",
              "--dir", str(tmp_path), cwd=tmp_path)
    fig = json.loads(out.strip().splitlines()[-1])
    assert fig["files"] == 9 and fig["deps"] == "fingerprints"
    for key in ("first_repro_s", "noop_repro_s", "status_s", "push_s", "pull_s", "status_after_pull_s"):
        assert fig[key] > 0, key
    assert 0 < fig["stage_cmds_s"] < fig["first_repro_s"]
    assert list(tmp_path.iterdir()) == []


def test_bench_noop_times_a_fresh_clone_and_refuses_a_repo_whose_lock_is_stale(tmp_path):
    """bench_noop clones a committed DVC repository, shares its cache, and times ``dvc repro`` only when nothing
    runs: a repository whose committed dvc.lock does not match its pipeline is named as not a no-op."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text("stages:\n  a:\n    cmd: python -c \"open('a.txt', 'w').write('a')\"\n"
                                   "    outs: [a.txt]\n")
    subprocess.run([sys.executable, "-m", "dvc", "repro", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "a"], cwd=repo, check=True)
    out = run("bench_noop.py", "--repo", str(repo), "--runs", "2", "--series", "1", cwd=tmp_path)
    series, summary, interpreter = out.strip().splitlines()
    assert len(re.findall(r"\d+\.\d\d", series.split(";")[0])) == 2
    assert re.search(r"no-op dvc repro median \d+\.\d\d s over 2 runs", summary), summary
    assert re.fullmatch(rf"python {re.escape(platform.python_version())} \(.+\): 3M-addition loop \d+\.\d\d s",
                        interpreter), interpreter

    (repo / "dvc.yaml").write_text((repo / "dvc.yaml").read_text().replace("'a')", "'b')"))
    subprocess.run([*git, "commit", "-qam", "stale lock"], cwd=repo, check=True)
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_noop.py"), "--repo", str(repo)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "not a no-op, a stage ran" in proc.stderr

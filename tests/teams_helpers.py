"""What the team tests share (remotes, queues, several nodes): one tiny DVC project on folder data, built and run once
per test session (:func:`shared_project`), and cheap git clones of it with their own workspace and cache.

The project is this repository's working tree (without committed results) with the tiny pipeline's params
(tests/tiny_pipeline.py) on one task whose data is a folder ``data/real/denoise`` tracked by ``dvc add``, as
data/real/README.md tells users.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

import tiny_pipeline
from sam4ir.io import write_image
from test_pipeline import ran_stages  # noqa: F401  (for the team tests)
from test_subimages import smooth_image
from tiny_pipeline import REPO, built_once, copy_sources, tiny_params

TASK = "denoise"
FOLDER = f"data/real/{TASK}"
# The tiny pipeline's environment, one thread per process (the tests share the CPU), and a git identity for the
# commits git and DVC make, which CI's machine may not have configured.
ENV = {**tiny_pipeline.ENV, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1",
       "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
DVC = [sys.executable, "-m", "dvc"]


def run(cmd: list[str], cwd: Path) -> str:
    """stdout + stderr of ``cmd``, which must succeed; a repository's stages import its own ``src/``."""
    return tiny_pipeline.run(cmd, cwd, ENV)


def git(cwd: Path, *args: str) -> str:
    return run(["git", *args], cwd)


def restored_stages(log: str) -> set[str]:
    """The stages a dvc command took from the run-cache (``Stage 'x' is cached - skipping run``)."""
    return {line.split("'")[1] for line in log.splitlines() if "is cached - skipping run" in line}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def team_params() -> dict:
    """test_pipeline's tiny params on one task of folder data (two of its six training pairs held out)."""
    params = tiny_params()
    params["tasks"] = [TASK]
    params["data"].update(source="folder", val_pairs=2, folder={TASK: FOLDER})
    return params


def write_folder_data(root: Path, n_train: int = 6, n_test: int = 2, side: int = 48) -> None:
    """``root/{train,test}/{input,target}/pair<i>.png``: smooth colour images and their noisy copies."""
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            seed = i + 100 * (split == "test")
            clean = smooth_image((side, side), seed)
            noise = np.random.default_rng(seed).integers(-20, 21, clean.shape)
            write_image(root / split / "input" / f"pair{i}.png", np.clip(clean + noise, 0, 255).astype(np.uint8))
            write_image(root / split / "target" / f"pair{i}.png", clean)


def build_project(root: Path) -> Path:
    """A git + DVC project at ``root``: the sources, the team params, the folder data added with ``dvc add`` and
    committed, one ``dvc repro`` and its dvc.lock committed."""
    copy_sources(root)
    (root / "params.yaml").write_text(yaml.safe_dump(team_params(), sort_keys=False))
    write_folder_data(root / FOLDER)
    git(root, "init", "-q", "-b", "main")
    run(DVC + ["add", FOLDER], root)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "sources and folder data")
    run(DVC + ["repro"], root)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "results")
    return root


def shared_project(tmp_path_factory) -> Path:
    """The session's project, built by the first test that asks (under pytest-xdist too): the modules that need a
    run pipeline share this one run. Treat it as read-only; work in a :func:`clone` of it."""
    return built_once(tmp_path_factory, "team_project", lambda base: build_project(base / "repo")) / "repo"


def clone(project: Path, dest: Path, *, origin: Path | None = None) -> Path:
    """A git clone of ``origin`` (default: ``project``) at ``dest``, its workspace checked out from a cache of its
    own that starts as a hard-linked copy of ``project``'s (DVC never writes into a cache file, it adds new ones),
    so that a clone's runs and run-cache entries stay its own."""
    git(dest.parent, "clone", "-q", str(origin or project), str(dest))
    shutil.copytree(project / ".dvc" / "cache", dest / ".dvc" / "cache", copy_function=os.link)
    run(DVC + ["checkout"], dest)
    return dest


def exp_table(repo: Path) -> pd.DataFrame:
    """``dvc exp show`` of ``repo`` (its HEAD and that commit's experiments), one row per experiment by name (the
    workspace and HEAD by rev), every param and metric a column."""
    table = pd.read_csv(io.StringIO(run(DVC + ["exp", "show", "--csv", "--no-pager"], repo)))
    return table.set_index(table.Experiment.fillna(table.rev))


def metrics(row: pd.Series) -> dict[str, float]:
    """The metric columns of an :func:`exp_table` row (reports/metrics.json's ``<task>.<method>.<metric>``)."""
    return {key: value for key, value in row.items() if key.startswith(f"{TASK}.")}

"""The tiny pipeline the end-to-end tests run: this repository's code and DAG on a tiny copy of params.yaml, and
the helpers that run DVC in it (each copy imports its own ``src/``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def tiny_params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["tasks"] = ["derain"]  # one task keeps the suite fast; the DAG is the same for every task
    params["data"]["scenes"].update(size=48, scenes_train=4, scenes_val=2, scenes_test=2)
    params["train"].update(iters=6, batch_size=2, crop=32, val_every=3, ckpt_every=3)
    params["distill"].update(iters=4)
    params["spf"].update(iters=3)
    params["eval"]["save_images"] = 1
    params["report"].update(latency_runs=0, latency_size=32)  # no latency measured: every output byte-stable
    return params


# Stages call `python`: the interpreter running the tests, even when its venv is not activated.
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
for _trace in ("SAM4IR_TRACE_PARAMS", "SAM4IR_TRACE_IMPORTS"):
    ENV.pop(_trace, None)
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def traced(trace: Path) -> dict:
    """ENV where every stage process appends the params keys it read (sam4ir.params.config) and the sam4ir modules
    it imported (sam4ir.stages) to files in ``trace``."""
    trace.mkdir(parents=True, exist_ok=True)
    return {**ENV, "SAM4IR_TRACE_PARAMS": str(trace / "params.jsonl"), "SAM4IR_TRACE_IMPORTS": str(trace / "imports.jsonl")}


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> str:
    """``cmd`` in ``cwd``, whose stages import its own ``src/`` (each copy runs the code it was made with)."""
    env = {**(env or ENV), "PYTHONPATH": str(cwd / "src")} if (cwd / "src").is_dir() else (env or ENV)
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def dvc(*args: str, cwd: Path, env: dict | None = None) -> str:
    return run([sys.executable, "-m", "dvc", *args], cwd, env)


def copy_of(root: Path, dest: Path) -> Path:
    shutil.copytree(root, dest, symlinks=True)
    return dest


def dag_inputs() -> set[str]:
    """Committed files under data/ or reports/ that a stage of dvc.yaml depends on (e.g. the positive control's
    rows, which results.md states): inputs of the DAG, not its results."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {dep for stage in stages.values() for dep in stage.get("deps", []) if isinstance(dep, str)}


def copy_sources(root: Path) -> None:
    """The files git sees in this checkout (tracked or not ignored), without the committed results and dvc.lock."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    inputs = dag_inputs() | {"data/real/README.md"}
    for rel in files:
        results = rel.startswith(("data/", "reports/")) and rel not in inputs
        if results or rel == "dvc.lock" or not (REPO / rel).is_file():
            continue
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, root / rel)


def new_project(root: Path, env: dict) -> Path:
    """This repository's tracked and new files (not its results) with the tiny params, as a git repository whose
    `dvc repro` has run and whose results are committed."""
    copy_sources(root)
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    run(["git", "init", "-q"], root)
    run(GIT + ["add", "-A"], root)
    run(GIT + ["commit", "-qm", "code"], root)
    dvc("repro", cwd=root, env=env)
    run(GIT + ["add", "-A"], root)
    run(GIT + ["commit", "-qm", "results"], root)
    return root


def built_once(tmp_path_factory, name: str, build) -> Path:
    """``build(base)`` run once per test session, under parallel workers (pytest-xdist) too: the first worker to ask
    builds it under a lock in the session's shared temp folder, the others wait and reuse it; ``base/done`` marks a
    finished build (a failed one is retried by the next worker, which then fails on its own)."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder, above each worker's own
    base = shared / name
    with FileLock(str(shared / f"{name}.lock")):
        if not (base / "done").is_file():
            shutil.rmtree(base, ignore_errors=True)
            base.mkdir()
            build(base)
            (base / "done").write_text("")
    return base

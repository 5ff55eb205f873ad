"""A stage does every task: one process per task beside each other on a CPU, in this process otherwise."""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path

import pytest
import yaml

from sam4ir.errors import Sam4irError
from sam4ir.stages.shared import tasks as stage_tasks

REPO = Path(__file__).resolve().parents[1]

# A stage module of its own: each task writes who ran it (its process, its torch threads); FAIL_TASK fails one.
FAKE_STAGE = '''
import os, sys
from pathlib import Path
from sam4ir.stages import run_stage
from sam4ir.stages.shared.args import load_task_params, stage_args
from sam4ir.stages.shared.tasks import run_tasks

def run_task(args):
    load_task_params(args)
    if args.task == os.environ.get("FAIL_TASK"):
        raise SystemExit(1)
    Path(f"{args.task}.ran").write_text(f"{os.getpid()} {os.environ.get('OMP_NUM_THREADS')} {args.method}")

if __name__ == "__main__":
    run_stage(lambda: run_tasks(stage_args("fake", methods=("m",)), run_task, forward=["--method", "m"]))
'''


@pytest.fixture()
def stage(tmp_path, monkeypatch):
    (tmp_path / "fake_stage.py").write_text(FAKE_STAGE)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(tasks=["derain", "deblur", "denoise"], parallel_tasks=2)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setattr(stage_tasks, "cpu_cores", lambda: 4)
    return importlib.import_module("fake_stage")


def ran(task: str) -> list[str]:
    return Path(f"{task}.ran").read_text().split()


def run(stage, task=None, finish=None):
    args = argparse.Namespace(task=task, params="params.yaml", method="m")
    stage_tasks.run_tasks(args, stage.run_task, forward=["--method", "m"], finish=finish)


def test_every_task_runs_in_its_own_process_at_one_thread(stage):
    finished = []
    run(stage, finish=lambda params: finished.append(list(params.tasks)))
    for task in ("derain", "deblur", "denoise"):
        pid, threads, method = ran(task)
        assert int(pid) != os.getpid() and threads == "1" and method == "m"  # one thread each (sam4ir.cpu_pins)
    assert len({ran(t)[0] for t in ("derain", "deblur", "denoise")}) == 3
    assert finished == [["derain", "deblur", "denoise"]]


def test_a_failed_task_is_named_the_others_finish_and_nothing_is_finalised(stage, monkeypatch):
    monkeypatch.setenv("FAIL_TASK", "deblur")
    finished = []
    with pytest.raises(Sam4irError, match=r"params.yaml: task\(s\) deblur failed"):
        run(stage, finish=finished.append)
    assert Path("derain.ran").is_file() and Path("denoise.ran").is_file() and not Path("deblur.ran").exists()
    assert finished == []


def test_one_at_a_time_runs_in_this_process_and_one_task_alone(stage):
    params = yaml.safe_load(Path("params.yaml").read_text())
    Path("params.yaml").write_text(yaml.safe_dump({**params, "parallel_tasks": 1}))
    run(stage)
    assert all(int(ran(t)[0]) == os.getpid() for t in ("derain", "deblur", "denoise"))
    for t in ("derain", "deblur", "denoise"):
        Path(f"{t}.ran").unlink()
    run(stage, task="denoise")
    assert Path("denoise.ran").is_file() and not Path("derain.ran").exists()


def test_auto_is_one_task_per_core_without_cuda_and_one_under_torchrun(stage, monkeypatch):
    from sam4ir.params.config import load_params

    params = yaml.safe_load(Path("params.yaml").read_text())
    Path("params.yaml").write_text(yaml.safe_dump({**params, "parallel_tasks": "auto"}))
    monkeypatch.setattr(stage_tasks.torch.cuda, "is_available", lambda: False)
    assert stage_tasks.tasks_at_once(load_params("params.yaml")) == 3  # 4 cores, 3 tasks
    monkeypatch.setattr(stage_tasks, "cpu_cores", lambda: 2)
    assert stage_tasks.tasks_at_once(load_params("params.yaml")) == 2
    monkeypatch.setattr(stage_tasks.torch.cuda, "is_available", lambda: True)
    assert stage_tasks.tasks_at_once(load_params("params.yaml")) == 1
    monkeypatch.setattr(stage_tasks.torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert stage_tasks.tasks_at_once(load_params("params.yaml")) == 1


def test_a_bad_parallel_tasks_value_is_one_line_naming_the_key(stage):
    params = yaml.safe_load(Path("params.yaml").read_text())
    Path("params.yaml").write_text(yaml.safe_dump({**params, "parallel_tasks": 0}))
    with pytest.raises(Sam4irError, match="parallel_tasks"):
        run(stage)
    assert not any(Path(f"{t}.ran").exists() for t in ("derain", "deblur", "denoise"))

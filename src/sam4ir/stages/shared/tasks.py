"""A stage runs every task of ``tasks``: one DVC stage per step, the tasks at once where the hardware allows.

A stage command without ``--task`` (what ``dvc.yaml`` runs) does every task of the params. On a CPU-only machine it
runs ``parallel_tasks`` of them at once, each as its own ``--task`` process. Every process computes on one thread
(``sam4ir.cpu_pins``: a thread count changes how reductions are split, and so the bytes), so a machine's cores are
used by running tasks side by side, never by threads. With CUDA, or under ``torchrun``, the tasks run one after the
other in this process (each would want the whole GPU). ``--task T`` runs one task, in this process.

One stage per step instead of one per task and step keeps ``dvc.yaml`` and ``dvc.lock`` short, so a no-op
``dvc repro`` parses and checks less, and a fresh clone starts fewer processes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import torch

from sam4ir.params.config import load_params
from sam4ir.errors import Sam4irError
from sam4ir.params.schema import Params


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers and ``taskset`` narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def tasks_at_once(params: Params) -> int:
    """How many tasks run at once: ``parallel_tasks`` (``auto``: one per core on a CPU-only machine, one under CUDA
    or torchrun). Read from the snapshot: how to run, not an input of any output (no dvc.yaml entry)."""
    wanted = params.snapshot()["parallel_tasks"]
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return 1
    if wanted == "auto":
        wanted = 1 if torch.cuda.is_available() else cpu_cores()
    return max(1, min(wanted, len(params.tasks)))


def run_tasks(args: argparse.Namespace, run_task: Callable[[argparse.Namespace], None], *,
              forward: Sequence[str] = (), finish: Callable[[Params], None] | None = None) -> None:
    """``run_task(args)`` for ``args.task``, or for every task of the params; then ``finish(params)``, once every
    task has succeeded (a stage's whole-folder work: clearing the resume states).

    ``forward``: the stage's own options to pass on to each task's process (``--params`` always is). A task that
    fails prints its own one-line error; the others still finish (their resume states are kept either way), then
    this raises one line naming the failed tasks.
    """
    if args.task is not None:
        run_task(args)
        return
    params = load_params(args.params)
    at_once = tasks_at_once(params)
    if at_once == 1:
        for task in params.tasks:
            run_task(argparse.Namespace(**{**vars(args), "task": task}))
    else:
        failed = _in_processes(_stage_module(run_task), params.tasks, at_once,
                               ["--params", args.params, *forward])
        if failed:
            raise Sam4irError(f"{args.params}: task(s) {', '.join(failed)} failed (each one's error is above); "
                              "the finished tasks resume from their checkpoints on the next run")
    if finish is not None:
        finish(params)


def _stage_module(run_task: Callable) -> str:
    module = run_task.__module__
    if module == "__main__":  # python -m sam4ir.stages.<name>
        module = sys.modules["__main__"].__spec__.name
    return module


def _in_processes(module: str, tasks: Sequence[str], at_once: int, options: list[str]) -> list[str]:
    """Run ``python -m module --task T`` for every task, ``at_once`` at a time (each pins its own CPU code paths and
    thread: ``sam4ir.cpu_pins``); the tasks whose process failed."""
    def one(task: str) -> int:
        return subprocess.run([sys.executable, "-m", module, "--task", task, *options]).returncode

    with ThreadPoolExecutor(at_once) as pool:
        codes = list(pool.map(one, tasks))
    return [task for task, code in zip(tasks, codes) if code != 0]

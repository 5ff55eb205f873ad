"""Queued sweeps on one's own data: `dvc exp run --queue` over a distill.sgr_weight sweep on the project's folder
data (`dvc add data/real/denoise`: each queued experiment runs in a copy of the repository, which gets the folder
from DVC), `dvc queue start -j 2` runs two at once, and each experiment's metrics equal those of the same experiment
run in the workspace, one after the other, in another clone with a cache of its own (so that neither side is
restored from the other's run-cache).

The sweep varies a late param: each experiment runs (never restores) distill, evaluate and report, the two at once,
and the committed data, masks, baseline and teachers are reused; which stages another param (train.seed among them)
re-runs is tests/test_pipeline.py's test_a_param_reruns_only_the_stages_that_read_it."""

from __future__ import annotations

import time

import pytest

from teams_helpers import DVC, clone, exp_table, metrics, ran_stages, run, shared_project

pytestmark = pytest.mark.slow

SGR_WEIGHTS = (0.5, 2.0)  # neither is the committed one
STUDENT = {"distill", "evaluate", "report"}  # the stages distill.sgr_weight re-runs


def by_weight(repo) -> dict:
    """The experiments' ``dvc exp show`` rows by distill.sgr_weight (the workspace and HEAD left out)."""
    table = exp_table(repo)
    exps = table[table.typ.isin(["branch_base", "branch_commit"])]
    return {float(row["distill.sgr_weight"]): row for _, row in exps.iterrows()}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return shared_project(tmp_path_factory)


@pytest.fixture(scope="module")
def queued(project, tmp_path_factory) -> dict:
    repo = clone(project, tmp_path_factory.mktemp("queue") / "repo")
    grid = ["-S", f"distill.sgr_weight={','.join(map(str, SGR_WEIGHTS))}"]
    run(DVC + ["exp", "run", "--queue", *grid], repo)
    started = run(DVC + ["queue", "start", "-j", "2"], repo)
    deadline = time.monotonic() + 900
    try:
        while True:
            status = run(DVC + ["queue", "status"], repo)
            if "Queued" not in status and "Running" not in status:
                break
            assert time.monotonic() < deadline, f"the queue did not finish in 900 s:\n{status}"
            time.sleep(5)
    finally:
        run(DVC + ["queue", "stop", "--kill"], repo)  # the workers, however the wait ended
    logs = {name: run(DVC + ["queue", "logs", name], repo) for name in exp_table(repo).Experiment.dropna()}
    return {"repo": repo, "started": started, "status": status, "logs": logs}


@pytest.fixture(scope="module")
def sequential(project, tmp_path_factory):
    repo = clone(project, tmp_path_factory.mktemp("sequential") / "repo")
    logs = [run(DVC + ["exp", "run", "-S", f"distill.sgr_weight={weight}"], repo) for weight in SGR_WEIGHTS]
    assert [ran_stages(log) for log in logs] == [STUDENT] * len(SGR_WEIGHTS), logs  # run here, not restored
    return repo


def test_two_workers_run_the_grid(queued):
    assert "Started '2' new experiments task queue workers" in queued["started"], queued["started"]
    assert queued["status"].count("Success") == len(SGR_WEIGHTS), queued["status"]
    # each ran its student, evaluation and report (none restored from a run-cache); the teachers are the commit's
    assert [ran_stages(log) for log in queued["logs"].values()] == [STUDENT] * len(SGR_WEIGHTS), queued["logs"]


def test_queued_metrics_equal_sequential_ones(queued, sequential):
    ours, theirs = by_weight(queued["repo"]), by_weight(sequential)
    assert set(ours) == set(theirs) == set(SGR_WEIGHTS)
    for weight in SGR_WEIGHTS:
        assert metrics(ours[weight]) == metrics(theirs[weight]) != {}, weight
    assert metrics(ours[0.5]) != metrics(ours[2.0])  # the swept param reaches the results

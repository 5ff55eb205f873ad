"""Queued sweeps on one's own data: `dvc exp run --queue` over a train.seed x distill.sgr_weight grid on the
project's folder data (`dvc add data/real/denoise`: each queued experiment runs in a copy of the repository, which
gets the folder from DVC), `dvc queue start -j 2` runs two at once, and each experiment's metrics equal those of the
same experiment run in the workspace, one after the other, in another clone with a cache of its own (so that neither
side is restored from the other's run-cache)."""

from __future__ import annotations

import time

import pytest

from teams_helpers import DVC, clone, exp_table, metrics, ran_stages, run, shared_project

pytestmark = pytest.mark.slow

SEEDS, SGR_WEIGHT = (0, 1), 0.5


def by_seed(repo) -> dict:
    """The experiments' ``dvc exp show`` rows by train.seed (the workspace and HEAD left out)."""
    table = exp_table(repo)
    exps = table[table.typ.isin(["branch_base", "branch_commit"])]
    return {int(row["train.seed"]): row for _, row in exps.iterrows()}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return shared_project(tmp_path_factory)


@pytest.fixture(scope="module")
def queued(project, tmp_path_factory) -> dict:
    repo = clone(project, tmp_path_factory.mktemp("queue") / "repo")
    grid = ["-S", f"train.seed={','.join(map(str, SEEDS))}", "-S", f"distill.sgr_weight={SGR_WEIGHT}"]
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
    for seed in SEEDS:
        run(DVC + ["exp", "run", "-S", f"train.seed={seed}", "-S", f"distill.sgr_weight={SGR_WEIGHT}"], repo)
    return repo


def test_two_workers_run_the_grid(queued):
    assert "Started '2' new experiments task queue workers" in queued["started"], queued["started"]
    assert queued["status"].count("Success") == len(SEEDS), queued["status"]
    stages = sorted(ran_stages(log) for log in queued["logs"].values())
    # seed 0 keeps the committed teachers and baseline; seed 1 trains its own
    assert stages == sorted([{"distill", "evaluate", "report"}, {"train_baseline", "spf", "spf_no_prior", "control",
                                                             "no_prior", "distill", "evaluate", "report"}])


def test_queued_metrics_equal_sequential_ones(queued, sequential):
    ours, theirs = by_seed(queued["repo"]), by_seed(sequential)
    assert set(ours) == set(theirs) == set(SEEDS)
    for seed in SEEDS:
        assert ours[seed]["distill.sgr_weight"] == theirs[seed]["distill.sgr_weight"] == SGR_WEIGHT
        assert metrics(ours[seed]) == metrics(theirs[seed]) != {}, seed
    assert metrics(ours[0]) != metrics(ours[1])  # the seed reaches the results

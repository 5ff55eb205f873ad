"""`python -m sam4ir.stages.exp_table` ranks a sweep: per task each experiment's gains over its own control and
no-prior runs, the seeds of one configuration (same params but train.seed / data.seed) grouped into mean ± std,
and the best configuration by distilled − no-prior marked."""

from __future__ import annotations

import json

import pytest

from sam4ir.report.ablation import experiment_rows
from sam4ir.report.sweep import rank_configs, run_deltas
from sam4ir.stages.exp_table import exp_tables

# distill.sgr_weight -> per seed: spd_sgr − no_prior (the control is 0.05 below no_prior in every run)
SWEEP = {0.0: [0.00, 0.01, -0.01], 0.5: [0.10, 0.12, 0.08], 1.0: [0.04, 0.06, 0.05]}


def _revision(name: str, seed: int, sgr: float, gain: float) -> dict:
    """One experiment as `dvc exp show --json` (DVC 3) lays it out; data.seed moves with train.seed."""
    base = 25.0 + seed
    psnr = {"baseline": base, "control": base, "no_prior": base + 0.05, "spd_sgr": base + 0.05 + gain,
            "ir2": base + 0.3, "ir2_no_prior": base + 0.1}
    params = {"train": {"seed": seed}, "data": {"seed": 100 + seed}, "distill": {"sgr_weight": sgr}}
    metrics = {"reports/metrics.json": {"data": {"derain": {m: {"psnr": v, "ssim": 0.5} for m, v in psnr.items()}}}}
    return {"rev": name.encode().hex().ljust(40, "0"), "name": name,
            "data": {"params": {"params.yaml": {"data": params}}, "metrics": metrics}}


def exp_show() -> list[dict]:
    experiments = [{"name": f"sgr{sgr}-s{seed}", "revs": [_revision(f"sgr{sgr}-s{seed}", seed, sgr, gain)],
                    "executor": {"state": "success"}}
                   for sgr, gains in SWEEP.items() for seed, gain in enumerate(gains)]
    head = {**_revision("main", 0, 1.0, 9.0), "rev": "abc1234" + "0" * 33, "experiments": experiments}
    return json.loads(json.dumps([head]))  # the baseline commit's outlier gain (9 dB) is never counted


@pytest.fixture(scope="module")
def rows():
    return experiment_rows(exp_show(), experiments_only=True)


def test_seeds_of_one_configuration_are_grouped_and_the_best_is_marked(rows):
    ranked = rank_configs(run_deltas(rows)).set_index("config")
    # train.seed and data.seed both vary within a configuration: neither splits it
    assert list(ranked.index) == [f"distill.sgr_weight={v}" for v in SWEEP]
    assert (ranked.runs == 3).all() and (ranked.seeds == "0 1 2").all()
    assert ranked.loc["distill.sgr_weight=0.5", "d_no_prior"] == pytest.approx(0.10)
    assert ranked.loc["distill.sgr_weight=0.5", "d_no_prior_std"] == pytest.approx(0.02)
    assert ranked.loc["distill.sgr_weight=0.5", "d_control"] == pytest.approx(0.15)
    assert ranked.loc["distill.sgr_weight=0.0", "d_teacher_prior"] == pytest.approx(0.2)
    assert ranked.index[ranked.best].tolist() == ["distill.sgr_weight=0.5"]


def test_printed_tables_show_each_experiment_and_the_ranking_at_three_decimals(rows):
    runs, configs = exp_tables(rows)["derain"]
    assert len(runs) == 9 and "main" not in set(runs.experiment)
    run = runs.set_index("experiment").loc["sgr1.0-s2"]
    assert run["changed params"] == "distill.sgr_weight=1.0" and run.d_no_prior == "+0.050"
    summary = configs.set_index("changed params")
    assert summary.loc["distill.sgr_weight=0.5", "d_no_prior"] == "+0.100 ± 0.020"
    assert summary.loc["distill.sgr_weight=0.5", "best"] == "<- best"
    assert (summary.drop(index="distill.sgr_weight=0.5").best == "").all()
    assert max(map(len, configs.to_string(index=False).splitlines())) <= 120


def test_a_single_experiment_is_named_by_what_it_changed_and_not_ranked():
    """One experiment of the sweep alone: its configuration reads `distill.sgr_weight=0.5` (what it changed from
    its baseline commit), and with nothing to rank against it is not marked best."""
    show = exp_show()
    show[0]["experiments"] = [e for e in show[0]["experiments"] if e["name"] == "sgr0.5-s1"]
    runs, configs = exp_tables(experiment_rows(show, experiments_only=True))["derain"]
    assert list(runs["changed params"]) == ["distill.sgr_weight=0.5"] and list(runs.seed) == [1]
    assert list(configs["changed params"]) == ["distill.sgr_weight=0.5"] and list(configs.best) == [""]
    assert "<- best" not in configs.to_string()

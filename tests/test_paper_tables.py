"""The main table (task x model x method) and the SAM-size table from a `dvc exp show --json` built with DVC's own
classes: means over seeds, gains paired within each experiment, parameter counts from `evaluate`, per-set rows
and their average, and the workspace / baseline commit never counted."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from dvc.repo.experiments.serialize import ExpExecutor, ExpRange, ExpState, SerializableExp

from sam4ir.errors import Sam4irError
from sam4ir.report.paper_tables import paper_table, read_table_rows, table_rows
from sam4ir.stages.paper_tables import build

BASELINE = "def5678" + "0" * 33
MODELS = {"nafnet": 42423, "hinet": 86278}
GAIN = {"nafnet": [0.2, 0.3, 0.25], "hinet": [0.1, -0.1, 0.05]}  # spd_sgr - control per seed


def _metrics(model: str, seed: int) -> dict:
    base = 25.0 + seed + (1.0 if model == "hinet" else 0.0)
    psnr = {"input": base - 5, "baseline": base, "control": base + 0.1, "no_prior": base + 0.1,
            "spd_sgr": base + 0.1 + GAIN[model][seed], "ir2": base + 1}
    methods = {m: {"psnr": p, "ssim": p / 100, "params": MODELS[model], "sets": {
        "rain100h": {"psnr": p - 1, "ssim": 0.5}, "rain100l": {"psnr": p + 1, "ssim": 0.6}}} for m, p in psnr.items()}
    return {**methods, "masks": {"backend": "sam", "segments_per_image": 10.0 + seed}}


def _state(rev: str, model: str, seed: int, name: str | None = None, **kw) -> ExpState:
    params = {"params.yaml": {"data": {"model": {"name": model, "args": {"nafnet": {"width": 12}, "hinet": {"wf": 8}}},
                                       "train": {"seed": seed}, "data": {"source": "scenes"},
                                       "sam": {"model_type": "vit_b"}}}}
    metrics = {"reports/metrics.json": {"data": {"derain": _metrics(model, seed)}}}
    return ExpState(rev=rev, name=name, data=SerializableExp(rev=rev, params=params, metrics=metrics), **kw)


def exp_show() -> list[dict]:
    ranges = []
    for model in MODELS:
        for seed in range(3):
            name = f"{model}-s{seed}"
            rev = name.encode().hex().ljust(40, "0")
            ranges.append(ExpRange(revs=[_state(rev, model, seed, name)], executor=ExpExecutor(state="success"),
                                   name=name))
    outliers = [_state("workspace", "nafnet", 0), _state(BASELINE, "nafnet", 0, "main", experiments=ranges)]
    for state in outliers:  # any of them counted would show: 99 dB
        state.data.metrics["reports/metrics.json"]["data"]["derain"]["baseline"]["psnr"] = 99.0
    return json.loads(json.dumps([s.dumpd() for s in outliers], default=str))


@pytest.fixture(scope="module")
def table():
    return paper_table(table_rows(exp_show(), "model.name"), "model.name")


def test_each_model_method_and_set_is_a_mean_over_three_seeds(table):
    assert set(table["model.name"]) == set(MODELS) and (table.runs == 3).all()
    assert set(table.set) == {"rain100h", "rain100l", "mean"}
    row = table[(table["model.name"] == "nafnet") & (table.method == "baseline") & (table.set == "mean")].iloc[0]
    assert row.psnr == pytest.approx(26.0)  # 25, 26, 27: the 99 dB of main and the workspace are not counted
    assert list(table[(table["model.name"] == "hinet") & (table.set == "mean")].method) == [
        "baseline", "control", "no_prior", "spd_sgr", "ir2"]


def test_gains_are_paired_per_experiment_with_verdicts(table):
    mean = table[table.set == "mean"].set_index(["model.name", "method"])
    assert mean.loc[("nafnet", "spd_sgr"), "d_psnr_control"] == pytest.approx(0.25)
    assert mean.loc[("nafnet", "spd_sgr"), "d_psnr_baseline"] == pytest.approx(0.35)
    assert mean.loc[("nafnet", "spd_sgr"), "d_psnr_control_verdict"] == "above zero"
    assert mean.loc[("hinet", "spd_sgr"), "d_psnr_control_verdict"] == "not distinguishable from zero"
    assert mean.loc[("nafnet", "baseline"), "d_psnr_control"] == pytest.approx(-0.1)


def test_parameter_counts_are_equal_for_baseline_and_distilled(table):
    for model, n in MODELS.items():
        assert set(table[table["model.name"] == model].params) == {n}


def test_experiments_that_change_other_params_are_left_out():
    """An ablation of the same commit (here distill.sgr_weight) is not a row of the main table."""
    show = exp_show()
    ablation = show[1]["experiments"][0]["revs"][0]["data"]["params"]["params.yaml"]["data"]
    ablation["distill"] = {"sgr_weight": 0.0}
    rows = table_rows(show, "model.name")
    assert "nafnet-s0" not in set(rows.experiment) and len(set(rows.experiment)) == 5


def test_pages_open_with_the_answer_and_name_experiments_commit_and_runs_table(tmp_path):
    rows = table_rows(exp_show(), "model.name")
    _, main_md = build("main", rows)
    lines = main_md.splitlines()
    assert lines[0] == "# Main table: every IR model with and without the method" and lines[1] == ""
    assert lines[2].startswith("What this testbed can detect")
    lines = lines[:2] + lines[4:]
    assert lines[2].startswith("With 3 seeds per configuration, with priors from SAM's masks (`sam.backend: sam`), "
                               "the distilled network beats its controls (the control run and its no-prior twin) "
                               "only with `model.name=nafnet` on derain:")
    assert lines[4].startswith("| config | task | distilled − control (dB) |")
    assert "teacher IR2 − baseline IR1 (dB)" in lines[4] and "teacher − student" not in main_md
    assert "Source: 6 finished experiment(s) of commit def5678, seeds [0, 1, 2]: hinet-s0," in main_md
    assert "Regenerate: `sam4ir paper-tables main --runs reports/main_runs.csv`." in main_md
    assert "/tmp" not in main_md and "| nafnet |" in main_md
    sam_table, sam_md = build("sam_size", table_rows(exp_show(), "sam.model_type"))
    assert set(sam_table["sam.model_type"]) == {"vit_b"} and "segments_per_image" in sam_md
    assert sam_table.segments_per_image.iloc[0] == pytest.approx(11.0)


def test_a_table_is_regenerated_from_its_runs_table(tmp_path):
    """What the command writes as <kind>_runs.csv gives the same table and page back."""
    rows = table_rows(exp_show(), "model.name")
    table, text = build("main", rows)
    rows.to_csv(tmp_path / "main_runs.csv", index=False)
    again, again_text = build("main", read_table_rows(tmp_path / "main_runs.csv", "model.name"))
    assert again_text == text
    pd.testing.assert_frame_equal(again, table, check_dtype=False)
    with pytest.raises(Sam4irError, match="main_runs.csv: not the rows of a paper table .missing sam.model_type"):
        read_table_rows(tmp_path / "main_runs.csv", "sam.model_type")

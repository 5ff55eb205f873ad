"""Aggregation of per-image scores into the field's table numbers, and the report's result tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sam4ir.data.paired import Pair
from sam4ir.report.ablation import deltas_vs_control, experiment_rows, summarise
from sam4ir.report.mechanism import EFFECTS, effects_per_run, summarise_effects
from sam4ir.report.verdict import verdict
from sam4ir.report.tables import per_set_table, results_table, sets_side_by_side
from sam4ir.scores import summarise_scores


def _per_image(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["method", "set", "psnr", "ssim"])


def test_pair_test_set_is_the_name_prefix():
    assert Pair("rain100h__12", Path("a"), Path("b")).test_set == "rain100h"
    assert Pair("gopro_test__GOPR0384_11_00_000047", Path("a"), Path("b")).test_set == "gopro_test"
    assert Pair("astronaut_00", Path("a"), Path("b")).test_set == "test"


def test_several_sets_average_the_set_means_not_the_images():
    # big set: 3 images at 30 dB; small set: 1 image at 20 dB. Pooled mean would be 27.5; the field's average is 25.
    per_image = _per_image([("baseline", "big", 30.0, 0.9)] * 3 + [("baseline", "small", 20.0, 0.5)])
    summary = summarise_scores(per_image, ["psnr", "ssim"])
    assert summary == {"baseline": {"psnr": 25.0, "ssim": 0.7,
                                    "sets": {"big": {"psnr": 30.0, "ssim": 0.9}, "small": {"psnr": 20.0, "ssim": 0.5}}}}


def test_one_set_is_the_plain_mean_without_a_sets_entry():
    per_image = _per_image([("spd", "test", 20.0, 0.5), ("spd", "test", 21.0, 0.6), ("input", "test", 10.0, 0.1)])
    assert summarise_scores(per_image, ["psnr", "ssim"]) == {"spd": {"psnr": 20.5, "ssim": 0.55},
                                                             "input": {"psnr": 10.0, "ssim": 0.1}}


METRICS = {
    "input": {"psnr": 20.0, "ssim": 0.5, "sets": {"a": {"psnr": 19.0, "ssim": 0.4}, "b": {"psnr": 21.0, "ssim": 0.6}}},
    "baseline": {"psnr": 25.0, "ssim": 0.8, "sets": {"a": {"psnr": 24.0, "ssim": 0.7}, "b": {"psnr": 26.0, "ssim": 0.9}}},
    "spd_sgr": {"psnr": 25.5, "ssim": 0.81, "sets": {"a": {"psnr": 24.25, "ssim": 0.72}, "b": {"psnr": 26.75, "ssim": 0.9}}},
}


def test_per_set_table_deltas_against_the_baseline_of_the_same_set():
    table = per_set_table(METRICS, task="derain").set_index(["set", "method"])
    assert list(table.index) == [(s, m) for m in ("baseline", "spd_sgr") for s in ("a", "b", "average")]
    assert table.loc[("a", "spd_sgr"), "d_psnr"] == pytest.approx(0.25)
    assert table.loc[("b", "spd_sgr"), "d_psnr"] == pytest.approx(0.75)
    assert table.loc[("average", "spd_sgr"), "d_psnr"] == pytest.approx(0.5)
    assert table.loc[("a", "spd_sgr"), "d_ssim"] == pytest.approx(0.02)
    assert (table.loc[(slice(None), "baseline"), "d_psnr"] == 0).all()


def test_single_set_task_has_one_row_per_method_and_no_average():
    single = {m: {k: v for k, v in r.items() if k != "sets"} for m, r in METRICS.items()}
    table = per_set_table(single, task="denoise")
    assert set(table.set) == {"test"} and len(table) == len(METRICS) - 1  # every method but the input
    spd_sgr = table.set_index("method").loc["spd_sgr"]
    assert spd_sgr.psnr == single["spd_sgr"]["psnr"] and spd_sgr.d_psnr == spd_sgr.psnr - single["baseline"]["psnr"]


def test_sets_side_by_side_is_the_papers_layout():
    wide = sets_side_by_side(per_set_table(METRICS, task="derain"))
    assert list(wide.columns) == ["task", "method", "a", "b", "average"]
    assert wide.set_index("method").loc["spd_sgr", "b"] == "26.75/0.9000"
    assert wide.set_index("method").loc["baseline", "average"] == "25.00/0.8000"


def test_results_table_rows_and_deltas():
    table = results_table(METRICS, task="derain", model="nafnet", params={"baseline": 10, "spd_sgr": 10},
                          priors="classical").set_index("method")
    assert list(table.index) == ["baseline", "spd_sgr"]  # the input is a column, not a row
    assert table.loc["spd_sgr", "d_psnr"] == pytest.approx(0.5) and table.loc["spd_sgr", "input_psnr"] == 20.0
    assert not table.needs_sam_at_inference.any()


def _revision(name: str | None, seed: int, sgr: float, control: float, ours: float, spd_loss: str = "l1") -> dict:
    """One revision as `dvc exp show --json` (DVC 3) lays it out, with one task's evaluation metrics."""
    params = {"train": {"seed": seed, "betas": [0.9, 0.9]},
              "distill": {"spd_weight": 1, "sgr_weight": sgr, "spd_loss": spd_loss}, "model": {"name": "nafnet"}}
    metrics = {"data/eval/derain/metrics.json": {"data": {
        "control": {"psnr": control, "ssim": 0.5}, "spd_sgr": {"psnr": ours, "ssim": 0.6}}},
        "data/live/derain/spd_sgr/metrics.json": {"data": {"psnr": 99.0}}}  # training logs are not results
    return {"rev": name or "0" * 40, "name": name, "data": {"params": {"params.yaml": {"data": params}}, "metrics": metrics}}


def test_ablation_gains_over_control_with_spread_over_seeds():
    head = _revision(None, 0, 1.0, 20.0, 21.0)
    exp_show = [{**_revision(None, 0, 1.0, 20.0, 21.0), "rev": "workspace"},  # the workspace repeats HEAD
                {**head, "experiments": [
                    {"name": "seed-1", "revs": [_revision("seed-1", 1, 1.0, 22.0, 22.5)]},
                    {"name": "sgr-0.5", "revs": [_revision("sgr-0.5", 0, 0.5, 20.0, 20.25)]},
                    {"name": "l2", "revs": [_revision("l2", 0, 1.0, 20.0, 19.5, spd_loss="l2")]}]}]
    rows = experiment_rows(exp_show)
    assert len(rows) == 8 and set(rows.method) == {"control", "spd_sgr"}  # 4 distinct runs x 2 methods
    gains = summarise(deltas_vs_control(rows)).set_index("config")
    # every changed param but the seed defines a configuration (the l2 run is not a third "seed"), named by what
    # it changed from HEAD; the workspace (HEAD's params, seed 0) and seed-1 are the same configuration
    assert set(gains.index) == {"defaults", "distill.sgr_weight=0.5", "distill.spd_loss=l2"}
    full = gains.loc["defaults"]
    assert full.runs == 2 and full.d_psnr == pytest.approx(0.75) and full.d_psnr_std == pytest.approx(0.3535534, abs=1e-6)
    assert full.d_ssim == pytest.approx(0.1)
    assert gains.loc["distill.sgr_weight=0.5", "d_psnr"] == pytest.approx(0.25)
    assert gains.loc["distill.spd_loss=l2", "d_psnr"] == pytest.approx(-0.5)
    assert rows.set_index("experiment").loc["l2", "distill.spd_loss"].iloc[0] == "l2"  # the changed params' text


def _prior_run(name: str | None, seed: int, backend: str, ours: float, no_prior: float) -> dict:
    """An experiment of the mechanism loop: one seed, one prior source, every row the report pairs."""
    params = {"train": {"seed": seed}, "sam": {"backend": backend}}
    psnr = {"baseline": 20.0 + seed, "control": 20.1 + seed, "no_prior": no_prior + seed, "spd_sgr": ours + seed,
            "ir2": 21.0 + seed, "ir2_no_prior": 20.5 + seed}
    metrics = {"data/eval/deblur/metrics.json": {"data": {m: {"psnr": v, "ssim": 0.5} for m, v in psnr.items()}}}
    return {"rev": name or "0" * 40, "name": name, "data": {"params": {"params.yaml": {"data": params}}, "metrics": metrics}}


def test_mechanism_pairs_by_seed_and_says_whether_a_gain_is_distinguishable_from_zero():
    runs = [("oracle", 0, 20.5, 20.2), ("oracle", 1, 20.6, 20.2), ("oracle", 2, 20.4, 20.2),  # +0.3, +0.4, +0.2
            ("shuffled", 0, 20.3, 20.2), ("shuffled", 1, 20.1, 20.2), ("shuffled", 2, 20.25, 20.2),  # mixed signs
            ("none", 0, 20.2, 20.2), ("none", 1, 20.2, 20.2)]  # two seeds only
    head = {**_prior_run(None, 0, "classical", 30.0, 20.0), "rev": "abc"}  # committed results: never counted
    exp_show = [{**head, "rev": "workspace"}, {**head, "experiments": [
        {"name": f"{b}-{s}", "revs": [_prior_run(f"{b}-{s}", s, b, ours, none)]} for b, s, ours, none in runs]}]
    rows = experiment_rows(exp_show, experiments_only=True)
    assert "classical" not in set(rows.config.str.split("=").str[1]) and rows.experiment.nunique() == len(runs)
    effects = effects_per_run(rows)
    assert len(effects) == len(runs) * len(EFFECTS)
    table = summarise_effects(effects).set_index(["config", "effect"])
    oracle = table.loc[("sam.backend=oracle", "attributable")]
    assert oracle.seeds == 3 and oracle["mean"] == pytest.approx(0.3) and oracle["std"] == pytest.approx(0.1)
    assert oracle.verdict == "above zero"
    assert table.loc[("sam.backend=shuffled", "attributable"), "verdict"] == "not distinguishable from zero"
    assert table.loc[("sam.backend=none", "attributable"), "verdict"] == "undecided: 2 seeds, need 3"
    assert table.loc[("sam.backend=oracle", "total"), "mean"] == pytest.approx(0.4)  # spd_sgr - control
    assert table.loc[("sam.backend=oracle", "teacher"), "mean"] == pytest.approx(1.0)  # ir2 - baseline
    assert table.loc[("sam.backend=oracle", "teacher_prior"), "mean"] == pytest.approx(0.5)


def test_verdict_below_zero_and_small_spread():
    assert verdict(pd.Series([-0.3, -0.2, -0.25])) == "below zero"
    assert verdict(pd.Series([0.3, 0.01, 0.6])) == "not distinguishable from zero"  # same sign, mean < 2 std


def test_an_interrupted_report_leaves_no_results_md_beside_newer_files(tmp_path):
    """results.md is the reader's entry point: removed first, written last, so it never describes other numbers
    than the CSVs beside it."""
    from sam4ir.stages.report import publish, write_text

    entry, csv = tmp_path / "results.md", tmp_path / "results.csv"
    write_text(entry, "old report\n")
    write_text(csv, "old\n")

    def killed() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        publish([lambda: write_text(csv, "new\n"), killed], entry, "new report\n")
    assert csv.read_text() == "new\n" and not entry.exists()
    order = []
    publish([lambda: order.append(entry.exists()), lambda: write_text(csv, "newer\n")], entry, "new report\n")
    assert order == [False] and entry.read_text() == "new report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.md"]


def _metrics(student: float, teacher: float) -> dict:
    """One task's evaluate metrics: the distilled student ``student`` dB above both controls, the teacher
    ``teacher`` dB above its no-prior twin."""
    psnr = {"baseline": 25.0, "control": 25.1, "no_prior": 25.1, "spd_sgr": 25.1 + student, "ir2": 25.5 + teacher,
            "ir2_no_prior": 25.5}
    return {"input": {"psnr": 20.0, "ssim": 0.4}, **{m: {"psnr": v, "ssim": 0.8} for m, v in psnr.items()}}


def test_results_md_opens_with_its_answer_then_the_table(monkeypatch):
    """results.md's first line under the title answers whether the distilled network beats its controls on this
    run and with which priors; the table follows; no "Verdict" heading, no "no verdict"."""
    from sam4ir.stages import report

    monkeypatch.setattr(report, "code_commit", lambda code: f"commit 0123abcd of {len(code)} files")
    monkeypatch.setattr(report, "report_code", lambda: ["src/sam4ir/io.py", "src/sam4ir/stages/report.py"])
    summary = {"derain": _metrics(-0.02, 0.1), "deblur": _metrics(-0.01, -0.03)}
    monkeypatch.setattr(report, "load_control", lambda: None)
    lines = report.opening(summary, 3, {"derain": "classical", "deblur": "classical"}, ["derain", "deblur"], "baseline")
    assert lines[:2] == ["# sam4ir results", ""]
    # what this testbed can detect comes first: here no positive control has run, and the page says so
    assert lines[2].startswith("What this testbed can detect is not measured") and lines[3] == ""
    lines = lines[:2] + lines[4:]
    assert lines[2] == (
        "On this run (seed 3), with priors from the classical stand-in for SAM (`sam.backend: classical`), the "
        "distilled network does not beat its controls (the control run and its no-prior twin) on any of the 2 tasks: "
        "distilled − control -0.020 to -0.010 dB, distilled − no-prior -0.020 to -0.010 dB; the teacher's largest "
        "gain from its priors is +0.100 dB on derain, one run, so no spread.")
    table = lines[4].splitlines()
    assert table[0] == ("| task | distilled − control (dB) | distilled − no-prior (dB) | teacher IR2 − baseline IR1 "
                        "(dB) | teacher − no-prior teacher (dB) |")
    assert table[2] == "| derain | -0.020 | -0.020 | +0.600 | +0.100 |" and table[3].startswith("| deblur |")
    text = "\n".join(lines)
    assert "Verdict" not in text and "no verdict" not in text and "teacher − student" not in text
    assert "Code: commit 0123abcd of 2 files (the last to change a module this stage runs: `data/code/report.json`)" in text


def test_a_sam_run_names_sams_priors(monkeypatch):
    from sam4ir.stages import report

    monkeypatch.setattr(report, "code_commit", lambda code: "commit 0123abcd")
    monkeypatch.setattr(report, "report_code", lambda: [])
    lines = report.opening({"derain": _metrics(0.3, 0.2)}, 0, {"derain": "sam"}, ["derain"], "baseline")
    assert lines[2].startswith("What this testbed can detect")
    assert lines[4].startswith("On this run (seed 0), with priors from SAM's masks (`sam.backend: sam`), the distilled "
                               "network beats its controls (the control run and its no-prior twin) on derain:")


def _nets():
    from torch import nn

    return nn.Conv2d(3, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1), nn.Conv2d(4, 3, 3, padding=1)


def test_latency_lives_apart_from_the_cost_table(tmp_path):
    """cost.csv is a function of the networks (byte-identical twice); the latency, a measurement of the machine,
    is latency.csv, which results.md links in one line."""
    from sam4ir.report.cost_table import LATENCY_COLUMNS, cost_table, latency_table
    from sam4ir.stages.report import latency_line, write_csv

    kwargs = {"prior_channels": 1, "size": 32}
    for name in ("a", "b"):
        write_csv(tmp_path / f"cost_{name}.csv", cost_table(*_nets(), sam_model_type="vit_b", **kwargs))
    assert (tmp_path / "cost_a.csv").read_bytes() == (tmp_path / "cost_b.csv").read_bytes()
    cost = pd.read_csv(tmp_path / "cost_a.csv")
    assert not any("latency" in c for c in cost.columns)
    assert list(cost.params[:2]) == [84, 84] and cost.needs_sam.tolist() == [False, False, True]
    latency = latency_table(*_nets(), runs=2, **kwargs)
    assert list(latency.columns) == LATENCY_COLUMNS and len(latency) == 3
    assert (latency.latency_ms > 0).all() and latency.latency_ratio.iloc[0] == 1.0 and (latency.runs == 2).all()
    assert latency.cpu.iloc[0] and (latency.threads >= 1).all()
    empty = latency_table(*_nets(), runs=0, **kwargs)
    assert empty.empty and list(empty.columns) == LATENCY_COLUMNS
    assert latency_line(20, 256) == ("CPU latency (median of 20 runs on one 256×256 image) is a measurement of the "
                                     "machine, not a result: [`latency.csv`](latency.csv).")
    assert latency_line(0, 256) == "No latency measured (`report.latency_runs: 0`)."


def _git(cwd: Path, *args: str) -> str:
    import subprocess

    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "HOME": str(cwd), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_code_commit_is_the_last_that_changed_the_code(tmp_path, monkeypatch):
    """A later commit that touches only reports leaves the line as it was, so a fresh clone of it reproduces
    results.md; an edit under src/ not yet committed is said."""
    from sam4ir.report.provenance import code_commit

    _git(tmp_path, "init", "-q")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    (tmp_path / "params.yaml").write_text("a: 1\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "code")
    code = _git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "results.md").write_text("r\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "reports")
    monkeypatch.chdir(tmp_path)
    assert code_commit() == f"commit {code[:8]}"
    (tmp_path / "src" / "a.py").write_text("x = 2\n")
    assert code_commit() == f"commit {code[:8]} + uncommitted changes"
    monkeypatch.chdir(tmp_path / "reports")  # inside the checkout, from a folder below its root: still the root's
    assert code_commit().startswith(f"commit {code[:8]}")
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    (tmp_path / "src" / "other.py").write_text("y = 1\n")  # code the report does not run
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "other code")
    assert code_commit(["src/a.py"]) == f"commit {code[:8]}" and code_commit() != f"commit {code[:8]}"


def test_image_grids_show_the_no_prior_run():
    from sam4ir.stages.report import GRID_COLUMNS

    assert GRID_COLUMNS.index("control") < GRID_COLUMNS.index("no_prior") < GRID_COLUMNS.index("spd_sgr")

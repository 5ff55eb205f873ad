"""The ablation report counts each finished experiment once, never the workspace nor the baseline commit (whose
committed results may come from another machine), and gives every row of a configuration the same ``runs``.

The fake ``dvc exp show --json`` is built with DVC's own dataclasses (``ExpState.dumpd()``, what the command
writes), so the test follows DVC's layout rather than a hand-written copy of it.
"""

from __future__ import annotations

import json
import sys
from itertools import combinations
from pathlib import Path

import pandas as pd
import pytest
from dvc.repo.experiments.serialize import ExpExecutor, ExpRange, ExpState, SerializableError, SerializableExp

from sam4ir.errors import Sam4irError
from sam4ir.report import ablation
from sam4ir.report.ablation import deltas_vs_control, experiment_rows, figure, read_runs, summarise, unfinished
from sam4ir.report.provenance import provenance
from sam4ir.stages.report import write_csv

BASELINE = "abc1234" + "0" * 33
TASKS = ("derain", "deblur")
# config (distill.sgr_weight) -> per seed 0, 1, 2: gain of spd_sgr over control, and over no_prior
GAINS = {1.0: ([0.3, 0.4, 0.2], [0.2, 0.3, 0.1]), 0.5: ([0.1, -0.2, 0.05], [0.0, -0.3, -0.05])}


def _data(rev: str, seed: int, sgr: float, metrics: dict[str, dict] | None) -> SerializableExp:
    params = {"params.yaml": {"data": {"train": {"seed": seed, "betas": [0.9, 0.9]},
                                       "distill": {"spd_weight": 1.0, "sgr_weight": sgr}}}}
    files = {f"data/eval/{task}/metrics.json": {"data": methods} for task, methods in (metrics or {}).items()}
    files["data/live/derain/spd_sgr/metrics.json"] = {"data": {"psnr": 99.0}}  # training logs are not results
    return SerializableExp(rev=rev, params=params, metrics=files if metrics is not None else {})


def _metrics(seed: int, sgr: float, control: float = 25.0) -> dict[str, dict]:
    """Every method `evaluate` writes, per task; a different control per task and seed so absolute PSNRs vary."""
    vs_control, vs_no_prior = (gains[seed] for gains in GAINS[sgr])
    out = {}
    for i, task in enumerate(TASKS):
        c = control + i + 0.5 * seed
        psnr = {"input": c - 5, "baseline": c - 0.1, "control": c, "no_prior": c + vs_control - vs_no_prior,
                "spd_sgr": c + vs_control, "ir2": c + 1.0, "ir2_no_prior": c + 0.5}
        out[task] = {m: {"psnr": v, "ssim": 0.5 + v / 100} for m, v in psnr.items()}
    return out


def _experiment(name: str, seed: int, sgr: float, state: str = "success") -> ExpRange:
    rev = name.encode().hex().ljust(40, "0")
    if state == "failed":
        tip = ExpState(rev=rev, name=name, error=SerializableError("exit 1", "ReproductionError"))
    else:  # queued experiments carry their params but no metrics yet (dvc.repo.experiments.collect.collect_queued)
        metrics = _metrics(seed, sgr) if state == "success" else None
        tip = ExpState(rev=rev, name=name, data=_data(rev, seed, sgr, metrics))
    return ExpRange(revs=[tip], executor=ExpExecutor(state=state, name="dvc-task"), name=name)


def exp_show(drop: tuple[str, str, str] | None = None) -> list[dict]:
    """`main` and the workspace (with outlier results: any of them counted would show), 3 seeds of 2
    configurations, one queued and one failed experiment; ``drop`` = (experiment, task, method) left out."""
    ranges = [_experiment(f"sgr{sgr}-s{seed}", seed, sgr) for sgr in GAINS for seed in range(3)]
    if drop:
        name, task, method = drop
        tip = next(r.revs[0] for r in ranges if r.name == name)
        del tip.data.metrics[f"data/eval/{task}/metrics.json"]["data"][method]
    ranges += [_experiment("sgr1.0-s3", 3, 1.0, "queued"), _experiment("sgr0.5-s3", 3, 0.5, "failed")]
    states = [ExpState(rev="workspace", data=_data("workspace", 0, 1.0, _metrics(0, 1.0, control=60.0))),
              ExpState(rev=BASELINE, name="main", data=_data(BASELINE, 0, 1.0, _metrics(0, 1.0, control=99.0)),
                       experiments=ranges)]
    return json.loads(json.dumps([s.dumpd() for s in states], default=str))  # as `dvc exp show --json` prints it


@pytest.fixture(scope="module")
def gains() -> pd.DataFrame:
    return summarise(deltas_vs_control(experiment_rows(exp_show(), experiments_only=True)))


def test_main_and_workspace_are_not_runs_and_every_row_has_three(gains):
    rows = experiment_rows(exp_show(), experiments_only=True)
    assert set(rows.experiment) == {f"sgr{sgr}-s{seed}" for sgr in GAINS for seed in range(3)}
    assert rows.psnr.max() < 60 and set(rows.commit) == {"abc1234"}
    assert set(gains.config) == {"distill.sgr_weight=1.0", "distill.sgr_weight=0.5"}  # betas: a list, yet equal
    assert len(gains) == 2 * len(TASKS) * 5  # baseline, no_prior, spd_sgr, ir2, ir2_no_prior
    assert (gains.runs == 3).all() and (gains.seeds == "0 1 2").all() and (gains.missing == "").all()
    assert (gains.d_psnr_std.fillna(0) >= 0).all() and (gains.d_psnr_min <= gains.d_psnr_max).all()


def test_gains_over_control_and_no_prior_with_spread_and_verdict(gains):
    ours = gains[gains.method == "spd_sgr"].set_index(["config", "task"])
    full = ours.loc[("distill.sgr_weight=1.0", "deblur")]
    assert full.d_psnr == pytest.approx(0.3) and full.d_psnr_std == pytest.approx(0.1)  # ddof 1
    assert (full.d_psnr_min, full.d_psnr_max) == (pytest.approx(0.2), pytest.approx(0.4))
    assert full.d_psnr_verdict == "above zero" and full.d_psnr_no_prior == pytest.approx(0.2)
    half = ours.loc[("distill.sgr_weight=0.5", "derain")]
    assert half.d_psnr_std > 0 and half.d_psnr_verdict == "not distinguishable from zero"
    assert half.d_psnr_no_prior_verdict == "not distinguishable from zero"
    # only spd_sgr and ir2 have a no-prior twin; no verdict where there is nothing to judge
    assert set(gains.loc[gains.d_psnr_no_prior.notna(), "method"]) == {"spd_sgr", "ir2"}
    assert (gains.loc[gains.d_psnr_no_prior.isna(), "d_psnr_no_prior_verdict"] == "").all()


def test_missing_row_is_named_not_hidden_in_fewer_runs():
    rows = experiment_rows(exp_show(drop=("sgr0.5-s1", "derain", "spd_sgr")), experiments_only=True)
    gains = summarise(deltas_vs_control(rows)).set_index(["config", "task", "method"])
    assert (gains.runs == 3).all()
    hole = gains.loc[("distill.sgr_weight=0.5", "derain", "spd_sgr")]
    assert hole.missing == "sgr0.5-s1" and hole.d_psnr == pytest.approx(0.075)  # seeds 0 and 2 only
    assert (gains.drop(index=[hole.name]).missing == "").all()


def test_unfinished_experiments_are_named_and_not_counted():
    assert unfinished(exp_show()) == ["sgr1.0-s3 (queued)", "sgr0.5-s3 (failed)"]
    assert 3 not in set(experiment_rows(exp_show(), experiments_only=True).seed)


def test_figure_has_no_overlapping_labels_and_names_commit_and_seeds():
    rows = experiment_rows(exp_show(), experiments_only=True)
    fig = figure(deltas_vs_control(rows), provenance(rows))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert fig._suptitle.get_text() == "Ablation gains (commit abc1234, seeds [0, 1, 2])"
    for ax in fig.axes:
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            boxes = [t.get_window_extent(renderer) for t in labels if t.get_visible() and t.get_text()]
            assert not any(a.overlaps(b) for a, b in combinations(boxes, 2)), ax.get_title()
    (legend,) = fig.legends  # one legend for the whole figure, right of every panel
    assert {t.get_text() for t in legend.get_texts()} == set(rows.config)
    right = max(ax.get_window_extent(renderer).x1 for ax in fig.axes)
    assert legend.get_window_extent(renderer).x0 >= right


DEFAULTS = {"train.seed": 0, "train.betas": "[0.9, 0.9]", "distill.spd_weight": 1.0, "distill.sgr_weight": 1.0,
            "sam.backend": "classical"}


def test_a_runs_table_gives_its_rows_back_and_a_subset_is_its_own_study(tmp_path, monkeypatch):
    """A page is regenerated from the runs table it wrote: the same rows, configurations named against the
    commit's params (here faked: no such commit in this repository)."""
    monkeypatch.setattr(ablation, "commit_params", lambda commit: DEFAULTS)
    rows = experiment_rows(exp_show(), experiments_only=True)
    assert set(rows.config) == {"distill.sgr_weight=1.0", "distill.sgr_weight=0.5"}
    write_csv(tmp_path / "runs.csv", rows)
    back = read_runs(tmp_path / "runs.csv")
    assert list(back.columns) == list(rows.columns) and back.config.tolist() == rows.config.tolist()
    keys = ["experiment", "commit", "seed", "task", "method", "distill.sgr_weight"]
    pd.testing.assert_frame_equal(back[keys], rows[keys])
    assert (back.psnr - rows.psnr).abs().max() < 1e-6 and (back.ssim - rows.ssim).abs().max() < 1e-6
    half = read_runs(tmp_path / "runs.csv", prefix="sgr0.5")
    assert set(half.config) == {"distill.sgr_weight=0.5"} and set(half.seed) == {0, 1, 2}
    full = read_runs(tmp_path / "runs.csv", prefix="sgr1.0")  # changed nothing: no param column left
    assert set(full.config) == {"defaults"} and "distill.sgr_weight" not in full


def test_a_file_that_is_not_a_runs_table_is_one_line(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(Sam4irError, match=r"x.csv: not a runs table .* missing experiment, commit, seed, task"):
        read_runs(tmp_path / "x.csv")
    with pytest.raises(Sam4irError, match="nothing.csv: cannot read it as a table"):
        read_runs(tmp_path / "nothing.csv")
    with pytest.raises(Sam4irError, match="no experiment whose name starts with 'zz'"):
        write_csv(tmp_path / "r.csv", experiment_rows(exp_show(), experiments_only=True))
        read_runs(tmp_path / "r.csv", prefix="zz")


def _page(tmp_path: Path, monkeypatch, *argv: str) -> dict[str, bytes]:
    """Run `sam4ir mechanism` in ``tmp_path`` with ``argv``; the bytes of every file it wrote."""
    from sam4ir.stages import ablation_report, mechanism_report

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ablation, "commit_params", lambda commit: DEFAULTS)
    monkeypatch.setattr(ablation_report, "commit_params", lambda commit: DEFAULTS)
    monkeypatch.setattr(ablation_report, "_commit_time", lambda commit: 0)
    monkeypatch.setattr(sys, "argv", ["sam4ir mechanism", *argv])
    mechanism_report.main()
    return {p.name: p.read_bytes() for p in sorted((tmp_path / "reports").iterdir())}


def test_a_page_regenerated_from_its_runs_table_is_the_same_bytes(tmp_path, monkeypatch):
    """From `dvc exp show` output, then twice from the runs table it wrote: the same page, naming the
    experiments, their commit and the runs table, never the file the rows were read from; the same figure bytes."""
    (tmp_path / "exp.json").write_text(json.dumps(exp_show()))
    first = _page(tmp_path, monkeypatch, "--json", "exp.json", "--out", "study")
    second = _page(tmp_path, monkeypatch, "--runs", "reports/study_runs.csv", "--out", "study")
    third = _page(tmp_path, monkeypatch, "--runs", "reports/study_runs.csv", "--out", "study")
    assert sorted(first) == ["study.csv", "study.md", "study.png", "study_runs.csv"]
    assert second == third
    page = second["study.md"].decode()
    # the same text but where a verdict sits on its boundary (this data's mean = 2 std exactly): the runs table
    # holds six decimals
    same = [a == b for a, b in zip(page.splitlines(), first["study.md"].decode().splitlines())]
    assert sum(same) >= len(same) - 8
    lines = page.splitlines()
    assert lines[0] == "# Does the student inherit the teacher's gain? Distillation settings compared"
    assert lines[2].startswith("What this testbed can detect is not measured")  # no positive control in tmp_path
    lines = lines[:2] + lines[4:]
    assert lines[2].startswith("With 3 seeds per configuration, with priors from the classical stand-in for SAM "
                               "(`sam.backend: classical`), the distilled network ")
    assert lines[2].endswith("the teacher's largest gain from its priors is +0.500 ± 0.000 dB on deblur (one teacher "
                             "for every configuration), above zero at 3 seeds.")
    assert lines[4].startswith("| config | task |")
    assert "Source: 6 finished experiment(s) of commit abc1234, seeds [0, 1, 2]: sgr0.5-s0," in page
    assert "Regenerate: `sam4ir mechanism --runs reports/study_runs.csv --out study`." in page
    assert "exp.json" not in page and str(tmp_path) not in page


def test_mechanism_figure_labels_do_not_overlap():
    from sam4ir.report.mechanism import effects_per_run
    from sam4ir.stages.mechanism_report import figure as mechanism_figure

    rows = experiment_rows(exp_show(), experiments_only=True)
    fig = mechanism_figure(effects_per_run(rows), "title")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    drawn = [t for ax in fig.axes for t in ax.get_xticklabels()  # the locator also lists ticks beyond the axis
             if min(ax.get_xlim()) <= t.get_position()[0] <= max(ax.get_xlim())]
    texts = [fig._supxlabel, *drawn, *(t for ax in fig.axes for t in (*ax.get_yticklabels(), ax.xaxis.label, ax.title))]
    boxes = [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text()]
    assert not any(a.overlaps(b) for a, b in combinations(boxes, 2))

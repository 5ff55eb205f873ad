"""The sentence every report opens with follows its numbers: a clear win over both controls is called one, no win
is called none while the teacher's gain is stated with its judgement (never a verb that contradicts the number),
one run is said to have no spread, the priors are named, and the table under it keeps the page's order."""

from __future__ import annotations

import pandas as pd
import pytest

from sam4ir.report.configs import config_labels, describe, ordered
from sam4ir.report.mechanism import effects_per_run
from sam4ir.report.tables import run_rows
from sam4ir.report.verdict import answer, headline_table, judged, shared_effects, verdict, verdict_section

CLASSICAL = "the classical stand-in for SAM (`sam.backend: classical`)"


def _rows(config: str, per_seed: list[dict[str, float]], task: str = "derain") -> pd.DataFrame:
    """The long table of experiment rows: one experiment per seed, one task, PSNR per method."""
    return pd.DataFrame([{"experiment": f"{config}-s{seed}", "config": config, "seed": seed, "task": task,
                          "method": method, "psnr": psnr}
                         for seed, methods in enumerate(per_seed) for method, psnr in methods.items()])


def _run(student_gain: float, teacher_gain: float, base: float = 25.0) -> dict[str, float]:
    """One seed: the distilled student ``student_gain`` above its control and its no-prior twin (same PSNR), the
    teacher ``teacher_gain`` above its no-prior twin."""
    return {"baseline": base, "control": base + 0.1, "no_prior": base + 0.1, "spd_sgr": base + 0.1 + student_gain,
            "ir2": base + 0.5 + teacher_gain, "ir2_no_prior": base + 0.5}


def test_a_clear_win_over_both_controls_is_called_one():
    effects = effects_per_run(_rows("a=1", [_run(0.30, 0.2), _run(0.35, 0.25), _run(0.25, 0.3)]))
    sentence = answer(effects, priors=CLASSICAL)
    assert sentence.startswith(f"Over 3 seeds, with priors from {CLASSICAL}, the distilled network beats its "
                               "controls (the control run and its no-prior twin) on derain: distilled − control "
                               "+0.300 dB, distilled − no-prior +0.300 dB;")
    assert sentence.endswith("the teacher's largest gain from its priors is +0.250 ± 0.050 dB, above zero at 3 seeds.")


def test_no_win_while_the_teacher_gains_reads_without_contradiction():
    """The case the study found: the teacher gains from the priors, the student does not."""
    effects = effects_per_run(_rows("a=1", [_run(0.01, 0.2), _run(-0.02, 0.25), _run(0.005, 0.3)]))
    sentence = answer(effects)
    assert "the distilled network does not beat its controls (the control run and its no-prior twin) on derain: " \
           "distilled − control -0.002 dB, distilled − no-prior -0.002 dB;" in sentence
    assert "does not gain" not in sentence and " beats " not in sentence


def test_a_noisy_teacher_gain_is_stated_then_judged():
    effects = effects_per_run(_rows("a=1", [_run(0.0, 0.05), _run(0.0, 0.33), _run(0.0, 0.19)]))
    assert answer(effects).endswith("the teacher's largest gain from its priors is +0.190 ± 0.140 dB, not "
                                    "distinguishable from zero at 3 seeds.")


def test_one_run_has_no_spread_and_no_judgement():
    lines = verdict_section(effects_per_run(_rows("params.yaml", [_run(0.4, 0.2)])), priors=CLASSICAL)
    assert lines[0].startswith(f"On this run (seed 0), with priors from {CLASSICAL}, the distilled network beats its "
                               "controls")
    assert lines[0].endswith("+0.200 dB, one run, so no spread.")
    text = "\n".join(lines)
    assert "One seed per configuration: no spread, so no difference is judged against zero." in text
    assert "above zero" not in text.split("Rule:")[0]  # a single run is never judged
    assert "| derain | +0.400 | +0.400 | +0.700 | +0.200 |" in text
    assert verdict(pd.Series([0.4])) == "one seed: no spread" and judged(pd.Series([0.4])) == "one run, so no spread"


def test_two_seeds_are_too_few_to_judge():
    assert verdict(pd.Series([0.3, 0.31])) == "undecided: 2 seeds, need 3"
    assert judged(pd.Series([0.3, 0.31])) == "too few seeds to judge (2 of 3)"


def test_prior_sources_are_named_and_read_from_none_to_oracle():
    sources = {"oracle": [_run(0.3, 0.4), _run(0.35, 0.5), _run(0.25, 0.45)], "classical": [_run(0.0, 0.1)] * 3,
               "none": [_run(0.0, 0.0)] * 3, "shuffled": [_run(-0.01, 0.0)] * 3}
    rows = pd.concat([_rows(f"sam.backend={b}", runs) for b, runs in sources.items()])
    configs = ordered(rows.config)
    assert configs == [f"sam.backend={b}" for b in ("none", "shuffled", "classical", "oracle")]
    effects = effects_per_run(rows.assign(config=pd.Categorical(rows.config, configs)))
    sentence = answer(effects)
    assert "beats its controls (the control run and its no-prior twin) only with exact segments " \
           "(`sam.backend=oracle`) on derain:" in sentence
    assert sentence.endswith("the teacher's largest gain from its priors is +0.450 ± 0.050 dB with exact segments "
                             "(`sam.backend=oracle`), above zero at 3 seeds.")
    table = headline_table(effects)
    assert list(table.config) == configs
    assert list(table.columns[2:]) == ["distilled − control (dB)", "distilled − no-prior (dB)",
                                       "teacher IR2 − baseline IR1 (dB)", "teacher − no-prior teacher (dB)"]
    assert table.set_index("config").loc["sam.backend=oracle", "distilled − no-prior (dB)"] == \
        "+0.300 ± 0.050 (n=3) > 0"


def test_none_of_several_prior_sources_lists_them():
    rows = pd.concat([_rows(f"sam.backend={b}", [_run(-0.01, 0.1), _run(0.0, 0.1), _run(-0.02, 0.1)])
                      for b in ("none", "oracle")])
    assert "does not beat its controls (the control run and its no-prior twin) with any of the 2 prior sources " \
           "(`sam.backend`: none, oracle), on derain:" in answer(effects_per_run(rows))


def test_a_teacher_every_configuration_shares_is_judged_over_all_seeds():
    """An ablation of the student alone: one teacher, whichever configuration ran the seed."""
    rows = pd.concat([_rows("distill.sgr_weight=0.0", [_run(0.0, 0.3), _run(0.01, 0.2), _run(-0.01, 0.25)]),
                      _rows("defaults", [_run(0.2, 0.3)])])
    effects = effects_per_run(rows)
    assert "teacher_prior" in shared_effects(effects) and "total" not in shared_effects(effects)
    assert answer(effects).endswith("the teacher's largest gain from its priors is +0.250 ± 0.050 dB (one teacher "
                                    "for every configuration), above zero at 3 seeds.")
    # a one-seed configuration above both controls is not judged a win beside configurations of 3 seeds
    assert answer(effects).startswith("With 1 to 3 seeds per configuration, the distilled network does not beat its "
                                      "controls (the control run and its no-prior twin) with any of the 2 "
                                      "configurations (1 with fewer than 3 seeds: not judged), on derain:")


def test_results_md_answer_from_one_runs_metrics():
    """results.md: the workspace's metrics.json files, read as one experiment of one seed."""
    metrics = {"derain": {"input": {"psnr": 20.0}, **{m: {"psnr": v, "ssim": 0.5} for m, v in _run(0.2, 0.1).items()},
                          "masks": {"backend": "classical"}}}
    rows = run_rows(metrics, seed=7)
    assert set(rows.method) == {"input", *_run(0, 0)} and set(rows.seed) == {7}
    assert answer(effects_per_run(rows)).startswith("On this run (seed 7), the distilled network beats its controls")


def test_tasks_keep_the_pages_order():
    rows = pd.concat([_rows("a=1", [_run(0.1, 0.1)], task=task) for task in ("derain", "deblur")])
    lines = verdict_section(effects_per_run(rows), tasks=["derain", "deblur", "denoise"])
    table = "\n".join(lines).splitlines()
    assert [line[:9] for line in table if line.startswith("| de")] == ["| derain ", "| deblur "]
    assert "on every task" in lines[0]


def test_no_rows_for_an_answer_says_so():
    empty = effects_per_run(_rows("a=1", [{"baseline": 20.0, "spd": 21.0}]))
    assert verdict_section(empty)[0].startswith("No run has the rows this page's question needs")


def test_labels_name_only_what_an_experiment_changed():
    base = {"train.seed": 0, "distill.sgr_weight": 1.0, "sam.backend": "classical"}
    runs = [{**base, "train.seed": 1}, {**base, "distill.sgr_weight": 0.5}, {**base, "sam.backend": "oracle"}]
    labels, keys = config_labels(runs, [base] * 3)
    assert labels == ["defaults", "distill.sgr_weight=0.5", "sam.backend=oracle"]
    assert keys == ["distill.sgr_weight", "sam.backend"]
    assert config_labels([{**base, "train.seed": 2}, runs[1]], [base] * 2)[0] == ["distill.sgr_weight=1.0",
                                                                                 "distill.sgr_weight=0.5"]
    assert describe("sam.backend=shuffled") == "another image's segments (`sam.backend=shuffled`)"
    assert describe("distill.sgr_weight=0.5") == "`distill.sgr_weight=0.5`"


@pytest.mark.parametrize("values, word", [([0.3, 0.4, 0.2], "above zero"), ([0.3, 0.01, 0.6], "not distinguishable")])
def test_judgement_states_the_verdict_and_count(values, word):
    assert judged(pd.Series(values)).startswith(word) and judged(pd.Series(values)).endswith("at 3 seeds")

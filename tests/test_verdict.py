"""The verdict the reports open with follows their numbers: a clear gain is called one, no gain is called none,
one seed is said to have no spread, and the sentence names the configuration it speaks of."""

from __future__ import annotations

import pandas as pd
import pytest

from sam4ir.report.mechanism import effects_per_run
from sam4ir.report.tables import run_rows
from sam4ir.report.verdict import headline_sentences, headline_table, spread, verdict, verdict_section


def _rows(config: str, per_seed: list[dict[str, float]]) -> pd.DataFrame:
    """The long table of experiment rows: one experiment per seed, one task (derain), PSNR per method."""
    return pd.DataFrame([{"experiment": f"{config}-s{seed}", "config": config, "seed": seed, "task": "derain",
                          "method": method, "psnr": psnr}
                         for seed, methods in enumerate(per_seed) for method, psnr in methods.items()])


def _run(student_gain: float, teacher_gain: float, base: float = 25.0) -> dict[str, float]:
    """One seed: the distilled student ``student_gain`` above its control and its no-prior twin (same PSNR), the
    teacher ``teacher_gain`` above its no-prior twin."""
    return {"baseline": base, "control": base + 0.1, "no_prior": base + 0.1, "spd_sgr": base + 0.1 + student_gain,
            "ir2": base + 0.5 + teacher_gain, "ir2_no_prior": base + 0.5}


def test_a_clear_gain_is_called_a_gain():
    effects = effects_per_run(_rows("a=1", [_run(0.30, 0.2), _run(0.35, 0.25), _run(0.25, 0.3)]))
    (sentence,) = headline_sentences(effects)
    assert "the distilled student gains vs its no-prior twin: +0.300 ± 0.050 dB (3 seeds: above zero)" in sentence
    assert "the teacher gains with the priors" in sentence and "+0.250 ± 0.050 dB (3 seeds: above zero)" in sentence


def test_no_gain_is_called_none_while_the_teacher_gains():
    """The case the study found: the teacher gains from the priors, the student does not."""
    effects = effects_per_run(_rows("a=1", [_run(0.01, 0.2), _run(-0.02, 0.25), _run(0.005, 0.3)]))
    (sentence,) = headline_sentences(effects)
    assert "the teacher gains with the priors" in sentence
    assert "the distilled student does not gain vs its no-prior twin: -0.002 ± 0.016 dB (3 seeds: not " \
           "distinguishable from zero)" in sentence
    assert "gains vs its no-prior" not in sentence


def test_a_loss_is_called_a_loss():
    effects = effects_per_run(_rows("a=1", [_run(-0.3, 0.0), _run(-0.35, 0.0), _run(-0.25, 0.0)]))
    assert "the distilled student loses vs its no-prior twin: -0.300 ± 0.050 dB (3 seeds: below zero)" in \
        headline_sentences(effects)[0]


def test_one_seed_has_no_spread_and_no_verdict_said_once():
    lines = verdict_section(effects_per_run(_rows("params.yaml", [_run(0.4, 0.2)])))
    text = "\n".join(lines)
    assert "One seed per configuration: no spread, so no verdict." in text
    assert "above zero" not in text.split("Rule:")[0]  # a single run is never called a gain
    assert "| derain | +0.400 | +0.400 |" in text  # distilled − control, distilled − no-prior
    assert verdict(pd.Series([0.4])) == "one seed: no spread" and spread(pd.Series([0.4])) == \
        "+0.400 dB (one seed: no spread)"


def test_two_seeds_are_too_few_to_judge():
    assert verdict(pd.Series([0.3, 0.31])) == "undecided: 2 seeds, need 3"


def test_the_sentence_speaks_of_the_configuration_whose_teacher_gains_most():
    rows = pd.concat([_rows("sam.backend=none", [_run(0.0, 0.0)] * 3),
                      _rows("sam.backend=oracle", [_run(0.01, 0.4), _run(-0.01, 0.5), _run(0.0, 0.45)])])
    sentence, _, how = headline_sentences(effects_per_run(rows))
    assert sentence.startswith("- **derain** (`sam.backend=oracle`): the teacher gains with the priors")
    assert how.startswith("Each task's sentence speaks of the configuration with the best teacher − no-prior teacher")
    table = headline_table(effects_per_run(rows))
    assert list(table.config) == ["sam.backend=none", "sam.backend=oracle"]
    assert table.set_index("config").loc["sam.backend=oracle", "teacher − no-prior teacher (dB)"] == \
        "+0.450 ± 0.050 (n=3) > 0"
    assert table.set_index("config").loc["sam.backend=oracle", "distilled − no-prior (dB)"] == \
        "+0.000 ± 0.010 (n=3) ≈ 0"


def test_a_shared_teacher_leaves_the_choice_to_the_student():
    """An ablation of the student alone (one teacher for every configuration): the best distilled − no-prior."""
    rows = pd.concat([_rows("distill.sgr_weight=0.0", [_run(0.0, 0.3), _run(0.01, 0.3), _run(-0.01, 0.3)]),
                      _rows("distill.sgr_weight=1.0", [_run(0.2, 0.3), _run(0.25, 0.3), _run(0.3, 0.3)])])
    assert headline_sentences(effects_per_run(rows))[0].startswith("- **derain** (`distill.sgr_weight=1.0`)")


def test_results_md_verdict_from_one_runs_metrics():
    """results.md: the workspace's metrics.json files, read as one experiment of one seed."""
    metrics = {"derain": {"input": {"psnr": 20.0}, **{m: {"psnr": v, "ssim": 0.5} for m, v in _run(0.2, 0.1).items()},
                          "masks": {"backend": "classical"}}}
    rows = run_rows(metrics, seed=7)
    assert set(rows.method) == {"input", *_run(0, 0)} and set(rows.seed) == {7}
    (sentence,) = headline_sentences(effects_per_run(rows))
    assert "the distilled student vs its no-prior twin: +0.200 dB;" in sentence and "seeds" not in sentence
    assert " gains " not in sentence  # one run: no verb that claims a gain


def test_tasks_keep_the_pages_order():
    rows = pd.concat([_rows("a=1", [_run(0.1, 0.1)]).assign(task=task) for task in ("derain", "deblur")])
    lines = "\n".join(verdict_section(effects_per_run(rows), tasks=["derain", "deblur", "denoise"])).splitlines()
    assert [line[:12] for line in lines if line.startswith("- **")] == ["- **derain**", "- **deblur**"]
    assert [line[:9] for line in lines if line.startswith("| de")] == ["| derain ", "| deblur "]


def test_no_rows_for_a_verdict_says_so():
    empty = effects_per_run(_rows("a=1", [{"baseline": 20.0, "spd": 21.0}]))
    assert "No run has the rows a verdict needs" in "\n".join(verdict_section(empty))


@pytest.mark.parametrize("values, word", [([0.3, 0.4, 0.2], "above zero"), ([0.3, 0.01, 0.6], "not distinguishable")])
def test_spread_states_mean_std_and_count(values, word):
    text = spread(pd.Series(values))
    assert text.startswith(f"{pd.Series(values).mean():+.3f} ± {pd.Series(values).std():.3f} dB (3 seeds: {word}")

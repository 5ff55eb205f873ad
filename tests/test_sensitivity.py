"""What a page's testbed can detect: the positive control's share of a teacher's lead, times the teacher's gain from
its priors, set against the page's own seed spread — and the pages that state it first."""

from __future__ import annotations

import pandas as pd

from sam4ir.report.positive_control import section
from sam4ir.report.sensitivity import load_control, sensitivity
from test_positive_control import runs


def effects(prior_gain: float, attributable: list[float], config: str = "sam.backend=oracle",
            task: str = "denoise", **params: str) -> pd.DataFrame:
    """Per-seed effects of one configuration: the teacher's gain from its priors, the student's attributable gain."""
    rows = [{"config": config, "task": task, "seed": s, "effect": e, "value": v, **params}
            for s, a in enumerate(attributable)
            for e, v in (("teacher_prior", prior_gain), ("attributable", a))]
    return pd.DataFrame(rows)


def test_a_testbed_that_passes_nothing_says_a_null_verdict_is_expected():
    control = runs([0.0, 0.001, -0.001])  # 0.0% of a 2 dB lead
    text = sensitivity(effects(0.2, [0.01, -0.01, 0.0]), control)
    assert "a 10-parameter student" in text and "leads it by +2.00 dB gains" in text
    assert "0.0% of the lead (above zero on 0 of 1 tasks)" in text
    assert "+0.200 dB (denoise)" in text and "predicts a student gain of at most +0.0002 dB" in text
    assert "below the 0.020 dB" in text and "a null verdict below is expected" in text


def test_a_testbed_that_passes_half_the_lead_can_resolve_the_priors():
    control = runs([0.9, 1.0, 1.1])  # 50 ± 5% of a 2 dB lead, above zero
    text = sensitivity(effects(0.2, [0.01, -0.01, 0.0]), control)
    assert "50.0% of the lead (above zero on 1 of 1 tasks)" in text
    assert "at most +0.1200 dB, above the 0.020 dB the seeds can resolve there" in text
    assert "null verdict" not in text


def test_each_configuration_is_held_to_the_schedule_that_trains_it():
    control = pd.concat([runs([0.0, 0.0, 0.0]), runs([0.9, 1.0, 1.1], schedule="scratch")])
    scratch = effects(0.2, [0.01, -0.01, 0.0], config="distill.init=scratch", **{"distill.init": "scratch"})
    text = sensitivity(scratch, control)
    assert "from scratch with the baseline's full recipe, 50.0% of the lead" in text
    assert "demo" not in text and "+0.1200 dB" in text
    both = pd.concat([effects(0.1, [0.01, -0.01, 0.0], config="defaults", **{"distill.init": "baseline"}), scratch])
    assert "at the rate of its schedule" in sensitivity(both, control)


def test_the_largest_prior_gain_with_seeds_enough_is_the_one_judged():
    one_seed = effects(0.5, [0.0], config="distill.iters=300")
    seeded = effects(0.2, [0.01, -0.01, 0.0], config="sam.backend=oracle")
    text = sensitivity(pd.concat([one_seed, seeded]), runs([0.0, 0.001, -0.001]))
    assert "+0.200 dB (exact segments (`sam.backend=oracle`) on denoise)" in text
    alone = sensitivity(one_seed, runs([0.0, 0.001, -0.001]))
    assert "+0.500 dB (denoise)" in alone and "no spread to judge it against" in alone


def test_without_a_positive_control_or_prior_gain_the_page_says_so(tmp_path):
    assert load_control(tmp_path / "absent.csv") is None
    assert "is not measured" in sensitivity(effects(0.2, [0.0, 0.0, 0.0]), None)
    teacher_only = effects(0.2, [0.0, 0.01, -0.01]).replace({"effect": {"teacher_prior": "teacher"}})
    assert "largest gain over the baseline (no no-prior teacher here), +0.200 dB" in sensitivity(teacher_only,
                                                                                                 runs([0.0, 0.0, 0.0]))
    assert "gain nothing from their priors" in sensitivity(effects(-0.1, [0.0, 0.0, 0.0]), runs([0.9, 1.0, 1.1]))


def test_the_positive_control_rows_travel_to_other_pages():
    lines = section(pd.concat([runs([0.0, 0.001, -0.001]), runs([0.9, 1.0, 1.1], schedule="scratch")]))
    table = "\n".join(lines)
    assert lines[0].startswith("## Positive control")
    assert "| denoise | demo |" in table and "| denoise | scratch |" in table and "above zero" in table
    assert section(runs([0.0]).assign(split="val")) == []

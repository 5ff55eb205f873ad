"""What a page's testbed can detect, said before its verdict: the positive control
(``reports/positive_control.csv``: a teacher without priors, clearly better than IR1, distilled into IR1) measures
what share of a teacher's lead this testbed's distillation passes on; that share times the teacher's gain from its
priors predicts the student's gain from them, which is then set against the smallest mean the reports' rule could
call above zero at the page's own seed spread. A null verdict where the prediction is below that resolution says
nothing about the priors — the reader must know that before reading the verdict.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sam4ir.report.configs import describe
from sam4ir.report.positive_control import SCHEDULE_WORDS, percent, summary
from sam4ir.report.tables import read_csv
from sam4ir.report.verdict import MIN_SEEDS

CONTROL_CSV = Path("reports/positive_control.csv")
# distill.init -> the positive control's schedule that trains the student the same way
SCHEDULE_OF_INIT = {"baseline": "demo", "scratch": "scratch"}


def load_control(path: Path = CONTROL_CSV) -> pd.DataFrame | None:
    """The positive control's per-run rows, or None where it has not been run (the page then says so)."""
    return read_csv(path) if path.exists() else None


def _shares(table: pd.DataFrame) -> str:
    """``0.0–1.4% of the lead (above zero on 0 of 3 tasks)`` for one schedule's rows of :func:`summary`."""
    low, high = percent(table.share_mean.min()), percent(table.share_mean.max())
    span = f"{low}%" if low == high else f"{low} to {high}%"
    above = int((table.verdict == "above zero").sum())
    return f"{span} of the lead (above zero on {above} of {len(table)} tasks)"


def _cells(effects: pd.DataFrame, table: pd.DataFrame, default_init: str) -> pd.DataFrame:
    """Per configuration x task: the teacher's gain from its priors (``teacher_prior``, else ``teacher``), the
    student gain the positive control's share predicts for it (its mean share + 2 std, the generous end), and
    the resolution: 2 std of distilled − no-prior over the seeds (none below :data:`MIN_SEEDS` seeds)."""
    lead_effect = "teacher_prior" if (effects.effect == "teacher_prior").any() else "teacher"
    rows = []
    for (config, task), part in effects.groupby(["config", "task"], sort=False, observed=True):
        init = part["distill.init"].iloc[0] if "distill.init" in part else default_init
        control = table[(table.task == task) & (table.schedule == SCHEDULE_OF_INIT.get(str(init), "demo"))]
        lead, student = part[part.effect == lead_effect].value, part[part.effect == "attributable"].value
        if control.empty or lead.empty:
            continue
        share = control.share_mean.iloc[0] + 2 * (0.0 if pd.isna(control.share_std.iloc[0])
                                                  else control.share_std.iloc[0])
        rows.append({"config": str(config), "task": str(task), "schedule": control.schedule.iloc[0], "of": lead_effect,
                     "lead": lead.mean(), "predicted": max(lead.mean(), 0.0) * max(share, 0.0),
                     "resolution": 2 * student.std() if len(student) >= MIN_SEEDS else float("nan")})
    return pd.DataFrame(rows)


def sensitivity(effects: pd.DataFrame, control: pd.DataFrame | None, *, default_init: str = "baseline",
                link: str = "positive_control.md") -> str:
    """One sentence: the share of a teacher's lead the positive control passes on under the page's schedule(s),
    what that predicts from the largest teacher gain from priors on the page, and whether the page's seeds could
    resolve it. ``default_init``: the ``distill.init`` of configurations that do not change it."""
    if control is None or control.empty:
        return ("What this testbed can detect is not measured: the positive control has not been run "
                "(`sam4ir positive-control`), so a null verdict below says nothing about the priors.")
    table = summary(control, "test")
    if table.empty:
        return ("What this testbed can detect is not measured on the test split: the positive control has no test "
                "scores, so a null verdict below says nothing about the priors.")
    cells = _cells(effects, table, default_init)
    schedules = list(dict.fromkeys(cells.schedule)) if not cells.empty else [SCHEDULE_OF_INIT[default_init]]
    passed = "; ".join(f"{SCHEDULE_WORDS.get(s, s)}, {_shares(table[table.schedule == s])}" for s in schedules)
    low, high = (f"{v:+.2f}" for v in (table.lead.min(), table.lead.max()))
    student = f"{int(control.baseline_params.iloc[0]):,}-parameter " if "baseline_params" in control else ""
    head = (f"What this testbed can detect: in the [positive control]({link}) a {student}student distilled from a "
            f"teacher without priors that leads it by {low if low == high else f'{low} to {high}'} dB gains {passed}")
    if cells.empty or (cells.lead <= 0).all():
        return head + "; the teachers here gain nothing from their priors, so there is nothing to pass on."
    judged = cells.dropna(subset=["resolution"])  # configurations with seeds enough to judge come first
    pool = judged if not judged.empty else cells
    best = pool.loc[pool.lead.idxmax()]
    where = f"{describe(best.config)} on {best.task}" if cells.config.nunique() > 1 else best.task
    if pd.isna(best.resolution):
        tail = (f"; with fewer than {MIN_SEEDS} seeds there is no spread to judge it against: the seed studies "
                "([`mechanism.md`](mechanism.md)) say whether such a gain can be resolved")
    elif best.predicted > best.resolution:
        tail = (f", above the {best.resolution:.3f} dB the seeds can resolve there: a transfer of that size would "
                "show below")
    else:
        tail = (f", below the {best.resolution:.3f} dB the seeds' spread there lets the rule call above zero (2 std "
                "of distilled − no-prior): a null verdict below is expected whether or not the priors help")
    rate = "at that rate" if len(schedules) == 1 else "at the rate of its schedule"
    gain = "from its priors" if best.of == "teacher_prior" else "over the baseline (no no-prior teacher here)"
    return (head + f"; {rate} the teacher's largest gain {gain}, {best.lead:+.3f} dB ({where}), "
            f"predicts a student gain of at most {best.predicted:+.4f} dB" + tail + ".")

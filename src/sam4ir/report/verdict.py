"""The verdict every report opens with: per task, is distillation's gain distinguishable from zero, and does the
teacher gain from the priors that the student should inherit? One rule, stated once, used by every page.

Input: the per-run effects of :func:`sam4ir.report.mechanism.effects_per_run` (one row per experiment x task x
effect: ``config``, ``seed``, ``value`` in dB).
"""

from __future__ import annotations

import pandas as pd

from sam4ir.report.tables import to_markdown

MIN_SEEDS = 3
RULE = (f"a difference is *above* (*below*) *zero* when every seed has the same sign and |mean| > 2 std (ddof 1), "
        f"with at least {MIN_SEEDS} seeds; otherwise *not distinguishable from zero*")
# effect (sam4ir.report.mechanism.EFFECTS) -> its column in the verdict table
HEADLINE = {"total": "distilled − control", "attributable": "distilled − no-prior",
            "teacher": "teacher − student (IR2 − baseline)", "teacher_prior": "teacher − no-prior teacher"}

# the sentence's clauses: effect, subject, relation (``teacher`` only where the runs have no no-prior teacher)
SENTENCE = [("teacher_prior", "the teacher", "with the priors (vs IR2 without them)"),
            ("teacher", "the teacher", "over the student it starts from (IR2 − baseline)"),
            ("attributable", "the distilled student", "vs its no-prior twin"),
            ("total", "and", "vs the control run")]


def verdict(values: pd.Series) -> str:
    """Plain words for a set of per-seed differences, by :data:`RULE`."""
    n, mean, std = len(values), values.mean(), values.std()
    if n == 1:
        return "one seed: no spread"
    if n < MIN_SEEDS:
        return f"undecided: {n} seeds, need {MIN_SEEDS}"
    if (values > 0).all() and mean > 2 * std:
        return "above zero"
    if (values < 0).all() and -mean > 2 * std:
        return "below zero"
    return "not distinguishable from zero"


def spread(values: pd.Series, single: bool = False) -> str:
    """``+0.123 ± 0.045 dB (3 seeds: above zero)``, ``+0.123 dB (one seed: no spread)``, or with ``single`` (every
    value of the page is one seed, said once) ``+0.123 dB``."""
    if len(values) == 1:
        return f"{values.iloc[0]:+.3f} dB" + ("" if single else f" ({verdict(values)})")
    return f"{values.mean():+.3f} ± {values.std():.3f} dB ({len(values)} seeds: {verdict(values)})"


# the verdict table's marks (its legend says the rest: no mark = too few seeds to judge)
MARKS = {"above zero": "> 0", "below zero": "< 0", "not distinguishable from zero": "≈ 0"}


def _cell(values: pd.Series, single: bool) -> str:
    """``+0.123 ± 0.045 (n=3) > 0``; ``+0.123`` when every value of the page is one seed."""
    if single:
        return f"{values.iloc[0]:+.3f}"
    std = f" ± {values.std():.3f}" if len(values) > 1 else ""
    return f"{values.mean():+.3f}{std} (n={len(values)}) {MARKS.get(verdict(values), '')}".rstrip()


def _clause(subject: str, relation: str, values: pd.Series, single: bool) -> str:
    """``the distilled student does not gain vs its no-prior twin: +0.001 ± 0.010 dB (3 seeds: ...)``: the verb
    follows the verdict; with too few seeds to judge there is none (``the distilled student vs ...: +0.001 dB``)."""
    verb = {"above zero": " gains", "below zero": " loses", "not distinguishable from zero": " does not gain"}.get(
        verdict(values), "")
    return f"{subject}{verb} {relation}: {spread(values, single)}"


def _single(effects: pd.DataFrame) -> bool:
    """Whether every configuration of the page ran one seed (then the page says so once, not in every cell)."""
    return bool((effects.groupby(["config", "task", "effect"]).size() == 1).all())


def headline_table(effects: pd.DataFrame) -> pd.DataFrame:
    """Per configuration x task: one :func:`_cell` per :data:`HEADLINE` effect the runs have, in dB (no ``config``
    column when there is one configuration)."""
    part = effects[effects.effect.isin(HEADLINE)]
    single = _single(effects)
    cells = part.groupby(["config", "task", "effect"], sort=True, observed=True)["value"].apply(
        lambda v: _cell(v, single)).unstack("effect")
    names = {effect: f"{name} (dB)" for effect, name in HEADLINE.items()}
    table = cells[[e for e in HEADLINE if e in cells]].rename(columns=names).fillna("").reset_index()
    return table.drop(columns="config") if table.config.nunique() == 1 else table


def _chosen(part: pd.DataFrame) -> tuple[str, str]:
    """The configuration a task's sentence speaks of, and why: the one whose teacher gains most from its priors
    (the fairest test of whether the student inherits them; an ablation of the student alone shares one teacher,
    so ties go to the best distilled − no-prior), or without no-prior teachers the best distilled − no-prior."""
    keys = [e for e in ("teacher_prior", "attributable") if (part.effect == e).any()]
    if not keys:
        return str(part.config.iloc[0]), "the first configuration"
    means = part[part.effect.isin(keys)].groupby(["config", "effect"])["value"].mean().unstack("effect")
    best = means[keys].sort_values(keys, ascending=False, kind="stable").index[0]
    why = " (ties: the best distilled − no-prior)" if len(keys) == 2 else ""
    return str(best), f"the configuration with the best {HEADLINE[keys[0]]}{why}"


def headline_sentences(effects: pd.DataFrame) -> list[str]:
    """One sentence per task, e.g. "derain: the teacher gains with the priors (vs IR2 without them): +0.183 ±
    0.090 dB (3 seeds: above zero); the distilled student does not gain vs its no-prior twin: −0.050 ± 0.030 dB
    (3 seeds: not distinguishable from zero); ...". With several configurations, the one of :func:`_chosen`,
    named, and a last line saying how it was chosen."""
    lines, single, rules = [], _single(effects), set()
    for task, part in effects.groupby("task", sort=True, observed=True):
        config, why = _chosen(part)
        runs = part[part.config == config].groupby("effect")["value"]
        values = {effect: runs.get_group(effect) for effect in HEADLINE if effect in runs.groups}
        clauses = [_clause(subject, relation, values[effect], single) for effect, subject, relation in SENTENCE
                   if effect in values and not (effect == "teacher" and "teacher_prior" in values)]
        several = part.config.nunique() > 1
        rules |= {why} if several else set()
        lines.append(f"- **{task}**" + (f" (`{config}`)" if several else "") + ": " + "; ".join(clauses) + ".")
    if rules:
        lines += ["", f"Each task's sentence speaks of {' or '.join(sorted(rules))}; the table below has them all."]
    return lines


def verdict_section(effects: pd.DataFrame, tasks: list[str] | None = None) -> list[str]:
    """Markdown lines the reports open with: the sentences, then the compact table, then the rule; tasks in the
    order of ``tasks`` (the page's own), else alphabetical."""
    if effects.empty:
        return ["## Verdict", "", "No run has the rows a verdict needs (control, no-prior, IR2).", ""]
    if tasks:
        effects = effects.assign(task=pd.Categorical(effects.task, [t for t in tasks if t in set(effects.task)]))
    spread_note = ("One seed per configuration: no spread, so no verdict." if _single(effects) else
                   "Table: mean ± std over the n seeds; > 0, < 0: above, below zero; ≈ 0: not distinguishable from "
                   "zero; no mark: too few seeds to judge.")
    return ["## Verdict", "", *headline_sentences(effects), "", to_markdown(headline_table(effects), {}), "",
            f"PSNR differences (dB) on the test split, paired within each run. {spread_note} Rule: {RULE}.", ""]

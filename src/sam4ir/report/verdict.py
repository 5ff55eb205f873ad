"""The answer every report opens with: one sentence — does the distilled network beat its controls, with which
priors, and how much does its teacher gain from them — then the table of those differences per configuration and
task, judged by one rule, stated once, used by every page.

Input: the per-run effects of :func:`sam4ir.report.mechanism.effects_per_run` (one row per experiment x task x
effect: ``config``, ``seed``, ``value`` in dB).
"""

from __future__ import annotations

import pandas as pd

from sam4ir.report.configs import backend_of, describe
from sam4ir.report.tables import to_markdown

MIN_SEEDS = 3
RULE = (f"a difference is *above* (*below*) *zero* when every seed has the same sign and |mean| > 2 std (ddof 1), "
        f"with at least {MIN_SEEDS} seeds; otherwise *not distinguishable from zero*")
# effect (sam4ir.report.mechanism.EFFECTS) -> its column in the table under the answer
HEADLINE = {"total": "distilled − control", "attributable": "distilled − no-prior",
            "teacher": "teacher IR2 − baseline IR1", "teacher_prior": "teacher − no-prior teacher"}
CONTROLS = "its controls (the control run and its no-prior twin)"


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


def judged(values: pd.Series) -> str:
    """The verdict as a sentence's tail: ``above zero at 3 seeds``, ``one run, so no spread``, ``too few seeds
    to judge (2 of 3)``."""
    n, word = len(values), verdict(values)
    if n == 1:
        return "one run, so no spread"
    if n < MIN_SEEDS:
        return f"too few seeds to judge ({n} of {MIN_SEEDS})"
    return f"{word} at {n} seeds"


def spread(values: pd.Series) -> str:
    """``+0.123 ± 0.045 dB``, or ``+0.123 dB`` for one value."""
    std = f" ± {values.std():.3f}" if len(values) > 1 else ""
    return f"{values.mean():+.3f}{std} dB"


# the table's marks (its legend says the rest: no mark = too few seeds to judge)
MARKS = {"above zero": "> 0", "below zero": "< 0", "not distinguishable from zero": "≈ 0"}


def _cell(values: pd.Series, single: bool) -> str:
    """``+0.123 ± 0.045 (n=3) > 0``; ``+0.123`` when every value of the page is one seed."""
    if single:
        return f"{values.iloc[0]:+.3f}"
    std = f" ± {values.std():.3f}" if len(values) > 1 else ""
    return f"{values.mean():+.3f}{std} (n={len(values)}) {MARKS.get(verdict(values), '')}".rstrip()


def _single(effects: pd.DataFrame) -> bool:
    """Whether every configuration of the page ran one seed (then the page says so once, not in every cell)."""
    return bool((effects.groupby(["config", "task", "effect"], observed=True).size() == 1).all())


def headline_table(effects: pd.DataFrame) -> pd.DataFrame:
    """Per configuration x task (in the order of categorical columns, else alphabetical): one :func:`_cell` per
    :data:`HEADLINE` effect the runs have, in dB (no ``config`` column when there is one configuration)."""
    part = effects[effects.effect.isin(HEADLINE)]
    single = _single(effects)
    cells = part.groupby(["config", "task", "effect"], sort=True, observed=True)["value"].apply(
        lambda v: _cell(v, single)).unstack("effect")
    names = {effect: f"{name} (dB)" for effect, name in HEADLINE.items()}
    table = cells[[e for e in HEADLINE if e in cells]].rename(columns=names).fillna("").reset_index()
    table = table.astype({"config": str, "task": str})
    return table.drop(columns="config") if table.config.nunique() == 1 else table


def _beats(values: pd.Series, single: bool) -> bool:
    """On a page of single runs: above zero on that run; else above zero by :data:`RULE` (fewer seeds: never)."""
    return bool(values.iloc[0] > 0) if single else verdict(values) == "above zero"


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _range(means: list[float]) -> str:
    low, high = min(means), max(means)
    return f"{low:+.3f} dB" if f"{low:+.3f}" == f"{high:+.3f}" else f"{low:+.3f} to {high:+.3f} dB"


def _scope(effects: pd.DataFrame, single: bool, priors: str | None) -> str:
    """``On this run (seed 0)`` / ``With 3 seeds per configuration`` / ``Over 3 seeds``, and the priors."""
    seeds = effects.groupby("config", observed=True)["seed"].nunique()
    if single:
        unique = sorted(effects.seed.unique())
        scope = f"On this run (seed {unique[0]})" if len(unique) == 1 else "With one seed per configuration"
    elif seeds.min() == seeds.max():
        scope = f"Over {seeds.iloc[0]} seeds" if len(seeds) == 1 else f"With {seeds.iloc[0]} seeds per configuration"
    else:
        scope = f"With {seeds.min()} to {seeds.max()} seeds per configuration"
    return scope + (f", with priors from {priors}" if priors else "")


def _student(values: dict[tuple[str, str, str], pd.Series], cells: list[tuple[str, str]], configs: list[str],
             tasks: list[str], single: bool) -> str:
    """Where the distilled network beats both controls, and the range of its differences to them."""
    pairs = [(c, t) for c, t in cells if (c, t, "total") in values and (c, t, "attributable") in values]
    if not pairs:
        return f"no run has {CONTROLS}"
    beats = [(c, t) for c, t in pairs
             if _beats(values[c, t, "total"], single) and _beats(values[c, t, "attributable"], single)]
    several = len(configs) > 1
    sources = [backend_of(c) for c in configs]
    if several and all(f"sam.backend={b}" == c for b, c in zip(sources, configs)):
        noun = f"{len(configs)} prior sources (`sam.backend`: {', '.join(sources)})"
    else:
        noun = f"{len(configs)} configurations"
    few = {c for c, t in pairs if len(values[c, t, "total"]) < MIN_SEEDS}
    if few and not single:
        noun += f" ({len(few)} with fewer than {MIN_SEEDS} seeds: not judged)"
    on_tasks = f"on any of the {len(tasks)} tasks" if len(tasks) > 1 else f"on {tasks[0]}"
    if not beats:
        verb = f"does not beat {CONTROLS} " + (f"with any of the {noun}, " if several else "") + on_tasks
    elif len(beats) == len(pairs):
        verb = (f"beats {CONTROLS} " + (f"with every one of the {noun}, " if several else "")
                + ("on every task" if len(tasks) > 1 else f"on {tasks[0]}"))
    else:
        won = {c: [t for b, t in beats if b == c] for c in dict.fromkeys(b for b, _ in beats)}
        verb = f"beats {CONTROLS} only " + "; ".join((f"with {describe(c)} " if several else "") + f"on {_listing(ts)}"
                                                     for c, ts in won.items())
    ranges = [f"{HEADLINE[e]} {_range([values[c, t, e].mean() for c, t in pairs])}" for e in ("total", "attributable")]
    return f"the distilled network {verb}: " + ", ".join(ranges)


def shared_effects(effects: pd.DataFrame) -> list[str]:
    """Effects no configuration changes: with several configurations, every one has the same value at each task
    and seed (e.g. the teacher, when the configurations change only the student's distillation)."""
    if effects.config.nunique() < 2:
        return []
    distinct = effects.groupby(["effect", "task", "seed"], observed=True)["value"].nunique()
    found = set(distinct.index.get_level_values("effect"))
    return [e for e in dict.fromkeys(effects.effect) if e in found and distinct.loc[e].le(1).all()]


def _teacher(effects: pd.DataFrame, several: bool, tasks: list[str]) -> str:
    """The teacher's largest gain from its priors (or over the baseline, without a no-prior teacher), judged; a
    teacher every configuration shares is judged over all their seeds, and said to be shared."""
    shared = shared_effects(effects)
    for effect, what in (("teacher_prior", "the teacher's largest gain from its priors"),
                         ("teacher", "the teacher IR2's largest gain over the baseline IR1")):
        part = effects[effects.effect == effect]
        if part.empty:
            continue
        if effect in shared:  # one teacher: each seed once, whichever configuration ran it
            part = part.drop_duplicates(["task", "seed"]).assign(config="")
        values = {key: v for key, v in part.groupby(["config", "task"], sort=True, observed=True)["value"]}
        config, task = max(values, key=lambda key: values[key].mean())
        where = ((f" with {describe(config)}" if several and effect not in shared else "")
                 + (f" on {task}" if len(tasks) > 1 else "")
                 + (" (one teacher for every configuration)" if effect in shared else ""))
        return f"{what} is {spread(values[config, task])}{where}, {judged(values[config, task])}"
    return ""


def answer(effects: pd.DataFrame, priors: str | None = None) -> str:
    """The one sentence a page opens with, from its numbers: where the distilled network beats both its controls
    (above zero by :data:`RULE`; with one run, above zero on that run), the range of its differences to them,
    and its teacher's largest gain from the priors, judged. ``priors``: words for the priors every configuration
    shares (none when the configurations are the prior sources)."""
    if effects.empty:
        return "No run has the rows this page's question needs (control, no-prior, IR2)."
    single = _single(effects)
    values = {key: v for key, v in effects.groupby(["config", "task", "effect"], sort=True, observed=True)["value"]}
    cells = list(dict.fromkeys((c, t) for c, t, _ in values))
    configs = list(dict.fromkeys(c for c, _ in cells))
    tasks = list(dict.fromkeys(t for _, t in cells))
    clauses = [_student(values, cells, configs, tasks, single), _teacher(effects, len(configs) > 1, tasks)]
    return f"{_scope(effects, single, priors)}, " + "; ".join(c for c in clauses if c) + "."


def verdict_section(effects: pd.DataFrame, tasks: list[str] | None = None, priors: str | None = None) -> list[str]:
    """Markdown lines a page opens with, right under its title: :func:`answer`, the table, its legend and the
    rule; tasks in the order of ``tasks`` (the page's own), else alphabetical; configurations in the order of a
    categorical ``config``, else alphabetical."""
    if effects.empty:
        return [answer(effects), ""]
    if tasks:
        effects = effects.assign(task=pd.Categorical(effects.task, [t for t in tasks if t in set(effects.task)]))
    spread_note = ("One seed per configuration: no spread, so no difference is judged against zero."
                   if _single(effects) else
                   "Table: mean ± std over the n seeds; > 0, < 0: above, below zero; ≈ 0: not distinguishable from "
                   "zero; no mark: too few seeds to judge.")
    return [answer(effects, priors), "", to_markdown(headline_table(effects), {}), "",
            f"PSNR differences (dB) on the test split, paired within each run. {spread_note} Rule: {RULE}.", ""]

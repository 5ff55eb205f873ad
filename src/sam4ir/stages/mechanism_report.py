"""Mechanism report (run after the prior-source experiments have finished): ``dvc exp show --rev REV --json`` ->
``reports/mechanism.md``, ``reports/mechanism.csv`` (per configuration x task x effect), ``reports/mechanism_runs.csv``
(per experiment) and ``reports/mechanism.png``: is the gain attributable to the priors' information?

Only queued experiments count (not the workspace nor the baseline commit's committed results), all of one
baseline commit (HEAD by default), so every number comes from one code version on this machine.

    sam4ir mechanism [--rev REV | --all-commits] [--json exp.json | --runs reports/mechanism_runs.csv] [--out NAME]
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from sam4ir.report.figures import save_figure
from sam4ir.report.paper_tables import model_args
from sam4ir.report.mechanism import EFFECTS, effects_per_run, summarise_effects
from sam4ir.report.positive_control import section
from sam4ir.report.provenance import experiments_line, provenance, regenerate_line
from sam4ir.report.sensitivity import load_control, sensitivity
from sam4ir.report.tables import to_markdown
from sam4ir.report.verdict import shared_effects, verdict_section
from sam4ir.stages import run_stage
from sam4ir.stages.ablation_report import Study, defaults_line, experiments, study
from sam4ir.stages.report import write_csv, write_text

OUT = Path("reports")
MEANINGS = {
    "longer": "control − baseline: the extra iterations alone (a converged baseline keeps this near 0)",
    "teacher": "IR2 (priors at test time) − baseline: does the teacher beat the student it starts from?",
    "teacher_prior": "IR2 − IR2 of `no_prior`: the teacher's gain due to its prior's information",
    "total": "IR1 + SPD + SGR − control: the method's gain over the same extra iterations",
    "attributable": "IR1 + SPD + SGR − IR1 `no_prior` (paired by seed): the student's gain due to the prior's information",
}


def _constant_params(about: Study) -> str:
    """What every experiment shares, from the params.yaml of the commit the experiments were queued on (the
    latest of them when they span several), not today's params."""
    get = lambda key: about.defaults.get(key, "?")  # noqa: E731
    name = get("model.name")
    return (f"data source `{get('data.source')}`, model `{name}` ({model_args(about.defaults, name) or '?'}), "
            f"SPF prior `{get('spf.prior')}`, "
            f"IR2 init `{get('spf.ir2_init')}`, λ₁ = {get('distill.spd_weight')}, "
            f"λ₂ = {get('distill.sgr_weight')}, "
            f"{get('train.iters')} baseline iterations, {get('spf.iters')} SPF teacher iterations, "
            f"{get('distill.iters')} distillation iterations (teacher `{get('distill.teacher')}`, fed the "
            f"`{get('distill.teacher_input')}` output, init `{get('distill.init')}`)")


def title(changed: list[str]) -> str:
    """The page's question, by what its experiments change: the prior source, or the distillation's settings."""
    if changed == ["sam.backend"]:
        return "Is the gain attributable to the priors? The prior sources compared"
    what = "Distillation settings" if changed and all(k.startswith("distill.") for k in changed) else "Settings"
    return f"Does the student inherit the teacher's gain? {what} compared"


def repeats(effects: pd.DataFrame) -> list[str]:
    """Lines that explain rows that repeat: effects that no changed param touches (the same runs in every
    configuration at each seed), and pairs of configurations whose paired values agree within 0.002 dB."""
    lines = []
    shared = [e for e in EFFECTS if e in shared_effects(effects)]
    if shared:
        lines.append(f"{', '.join(f'`{e}`' for e in shared)} {'does' if len(shared) == 1 else 'do'} not involve "
                     "what these configurations change: at each seed every configuration has the same value, so "
                     f"{'its' if len(shared) == 1 else 'their'} rows below repeat.")
    wide = effects.pivot_table(index=["task", "effect", "seed"], columns="config", values="value", observed=True)
    configs = list(wide.columns)
    for i, a in enumerate(configs):
        for b in configs[i + 1:]:
            both = wide[[a, b]].dropna()
            own = both.index.get_level_values("effect").isin([e for e in EFFECTS if e not in shared])
            if len(both) and own.any() and (diff := (both[a] - both[b]).abs().max()) < NEAR:
                lines.append(f"`{a}` and `{b}` agree within {NEAR} dB on every task, effect and seed they share "
                             f"(largest difference {diff:.4f} dB): that change made no measurable difference here.")
    return lines + [""] if lines else []


NEAR = 0.002  # dB: two configurations closer than this everywhere print as the same row at three decimals


def main() -> None:
    rows, args = experiments(__doc__, experiments_only=True, out="mechanism")
    out = args.out
    runs = rows if "effect" in rows else effects_per_run(rows)
    runs, about = study(runs)
    table = summarise_effects(runs)
    write_csv(OUT / f"{out}_runs.csv", runs)
    write_csv(OUT / f"{out}.csv", table)
    options = [] if out == "mechanism" else ["--out", out]
    control = load_control()
    lines = [
        f"# {title(about.changed)}", "",
        sensitivity(runs, control, default_init=str(about.defaults.get("distill.init", "baseline"))), "",
        *verdict_section(runs, priors=about.priors),
        experiments_line(runs, f"{out}_runs.csv") + f" Queued experiments only; params of {about.commit}: "
        f"{_constant_params(about)}.",
        defaults_line(about, runs.config), regenerate_line("mechanism", f"{out}_runs.csv", *options), "",
        *(["Prior sources (`sam.backend`): `none` carries no region information, `shuffled` another image's "
           "segments, `classical` the classical stand-in's segments of the image, `oracle` the exact segments of "
           "the scene.", ""] if "sam.backend" in about.changed else []),
        *(section(control) if control is not None else []),
        *repeats(runs),
        "Differences are PSNR (dB) on the test split, per seed, then mean ± std over seeds; verdicts by the rule "
        "above.", "",
        *[f"- `{effect}`: {MEANINGS[effect]}" for effect in EFFECTS], "",
    ]
    for effect in EFFECTS:
        part = table[table.effect == effect].drop(columns="effect")
        if not part.empty:
            lines += [f"## {effect}", "", MEANINGS[effect], "",
                      to_markdown(part, {c: "+.3f" for c in ("mean", "min", "max")} | {"std": ".3f"}), ""]
    lines += [f"![{out}]({out}.png)", ""]
    write_text(OUT / f"{out}.md", "\n".join(lines))
    save_figure(figure(runs, f"{title(about.changed)} ({provenance(runs)})"), OUT / f"{out}.png")


def figure(runs: pd.DataFrame, heading: str) -> plt.Figure:
    """One dot per seed: each effect a panel (its own x axis, few ticks), configurations down the y axis in the
    page's order, one x label for the figure, so no text overlaps."""
    sns.set_theme(style="whitegrid")
    np.random.seed(0)  # the dots' jitter draws from numpy's global generator: the same figure, the same bytes
    grid = sns.catplot(data=runs, x="value", y="config", hue="task", col="effect", kind="strip", dodge=True,
                       col_order=[e for e in EFFECTS if e in set(runs.effect)], sharex=False, height=3, aspect=1.1)
    for ax in grid.axes.flat:
        ax.axvline(0, color="black", linewidth=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.tick_params(axis="x", labelsize=8)
    grid.set_titles("{col_name}")
    grid.set_axis_labels("", "")
    grid.figure.supxlabel("ΔPSNR (dB), one dot per seed", y=0.02, fontsize=10)
    grid.figure.suptitle(heading, y=1.04, fontsize=9)
    return grid.figure


if __name__ == "__main__":
    run_stage(main)

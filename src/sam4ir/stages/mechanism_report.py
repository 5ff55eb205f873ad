"""Mechanism report (run after the prior-source experiments have finished): ``dvc exp show --rev REV --json`` ->
``reports/mechanism.md``, ``reports/mechanism.csv`` (per configuration x task x effect), ``reports/mechanism_runs.csv``
(per experiment) and ``reports/mechanism.png``: is the gain attributable to the priors' information?

Only queued experiments count (not the workspace nor the baseline commit's committed results), all of one
baseline commit (HEAD by default), so every number comes from one code version on this machine.

    sam4ir mechanism [--rev REV | --all-commits] [--json exp.json]
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import seaborn as sns
import yaml

from sam4ir.report.figures import save_figure
from sam4ir.report.mechanism import EFFECTS, effects_per_run, summarise_effects
from sam4ir.report.provenance import experiments_line
from sam4ir.report.tables import to_markdown
from sam4ir.report.verdict import verdict_section
from sam4ir.stages import run_stage
from sam4ir.stages.ablation_report import experiments
from sam4ir.stages.report import write_csv, write_text

OUT = Path("reports")
MEANINGS = {
    "longer": "control − baseline: the extra iterations alone (a converged baseline keeps this near 0)",
    "teacher": "IR2 (priors at test time) − baseline: does the teacher beat the student it starts from?",
    "teacher_prior": "IR2 − IR2 of `no_prior`: the teacher's gain due to its prior's information",
    "total": "IR1 + SPD + SGR − control: the method's gain over the same extra iterations",
    "attributable": "IR1 + SPD + SGR − IR1 `no_prior` (paired by seed): the student's gain due to the prior's information",
}


def _constant_params(commits: list[str]) -> str:
    """What every experiment shares, from the params.yaml of the commit the experiments were queued on (the
    latest of them when they span several: named in the line above), not today's params."""
    rev = commits[-1]
    text = subprocess.run(["git", "show", f"{rev}:params.yaml"], capture_output=True, text=True).stdout
    params = yaml.safe_load(text) or {}
    get = lambda section, key: (params.get(section) or {}).get(key, "?")  # noqa: E731
    args = (params.get("model") or {}).get("args") or {}
    return (f"data source `{get('data', 'source')}`, model `{get('model', 'name')}` "
            f"{args.get(get('model', 'name'), '?')}, SPF prior `{get('spf', 'prior')}`, IR2 init `{get('spf', 'ir2_init')}`, "
            f"λ₁ = {get('distill', 'spd_weight')}, λ₂ = {get('distill', 'sgr_weight')}, "
            f"{get('train', 'iters')} baseline iterations, {get('spf', 'iters')} SPF teacher iterations, "
            f"{get('distill', 'iters')} distillation iterations (teacher `{get('distill', 'teacher')}`, fed the "
            f"`{get('distill', 'teacher_input')}` output, init `{get('distill', 'init')}`)")


def _commit_time(rev: str) -> int:
    return int(subprocess.run(["git", "show", "-s", "--format=%ct", rev], capture_output=True, text=True).stdout
               or 0)


def main() -> None:
    rows, source, args = experiments(__doc__, experiments_only=True, out="mechanism")
    out = args.out
    runs = effects_per_run(rows)
    table = summarise_effects(runs)
    write_csv(OUT / f"{out}_runs.csv", runs)
    write_csv(OUT / f"{out}.csv", table)
    seeds = sorted(int(s) for s in runs.seed.dropna().unique())  # for the figure's title
    commits = sorted(rows.commit.unique(), key=_commit_time)
    varying = [c for c in rows.columns if "." in c]  # experiment_rows adds one column per param that differs
    lines = [
        f"# Is the gain attributable to the priors? (`{out}`, from `dvc exp show`)", "",
        experiments_line(rows, source) + f" Queued experiments only; params of {commits[-1]}: "
        f"{_constant_params(commits)}.", "",
        *verdict_section(runs),
        f"Each configuration is one setting of the params that differ between these experiments (besides the seeds): "
        f"{', '.join(f'`{k}`' for k in varying) or 'none'}.",
        *(["Prior sources (`sam.backend`): `none` carries no region information, `shuffled` another image's "
           "segments, `oracle` the exact segments of the scene."] if "sam.backend" in varying else []),
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

    sns.set_theme(style="whitegrid")
    grid = sns.catplot(data=runs, x="value", y="config", hue="task", col="effect", kind="strip", dodge=True,
                       col_order=[e for e in EFFECTS if e in set(runs.effect)], sharex=False, height=3, aspect=1.2)
    for ax in grid.axes.flat:
        ax.axvline(0, color="black", linewidth=0.8)
    grid.set_titles("{col_name}")
    grid.set_axis_labels("ΔPSNR (dB), one dot per seed", "")
    grid.figure.suptitle(f"Prior-information controls ({source}, seeds {seeds})", y=1.04, fontsize=9)
    save_figure(grid.figure, OUT / f"{out}.png")


if __name__ == "__main__":
    run_stage(main)

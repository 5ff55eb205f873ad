"""The positive control's page: how much of a clearly better teacher's lead this testbed's distillation passes on
to the student, per task and schedule, judged by the reports' one rule (:data:`sam4ir.report.verdict.RULE`).

Input: the rows of :func:`sam4ir.stages.positive_control.run_rows` (one per task x schedule x seed x split: the
teacher's, the baseline's, the distilled student's and its control's PSNR, and the minutes each run took).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sam4ir.io import atomic_path  # noqa: E402
from sam4ir.report.figures import save_figure  # noqa: E402
from sam4ir.report.provenance import code_commit  # noqa: E402
from sam4ir.report.tables import to_markdown  # noqa: E402
from sam4ir.report.verdict import RULE, judged, verdict  # noqa: E402

SCHEDULE_WORDS = {"demo": "under the demo's schedule (from the baseline, distill.iters at distill.lr)",
                  "scratch": "from scratch with the baseline's full recipe"}
NAME = "positive_control"


def with_effects(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``lead`` (teacher − baseline), ``gain`` (distilled − control, paired by seed) and ``share``
    (gain / lead), in dB and as a fraction; ``minutes`` is the pair's cost (distilled + control)."""
    lead = runs.teacher_psnr - runs.baseline_psnr
    gain = runs.distilled_psnr - runs.control_psnr
    return runs.assign(lead=lead, gain=gain, share=gain / lead, minutes=runs.distilled_minutes + runs.control_minutes)


def summary(runs: pd.DataFrame, split: str) -> pd.DataFrame:
    """Per task x schedule on ``split`` (tasks and schedules in the rows' order): the teacher's lead, the
    student's gain over its control (mean, std, verdict, per seed), its share of the lead and the cost."""
    part = with_effects(runs[runs.split == split])
    out = []
    for (task, name), group in part.groupby(["task", "schedule"], sort=False):
        gain = group.gain.reset_index(drop=True)
        out.append({"task": task, "schedule": name, "init": group.init.iloc[0], "iters": int(group.iters.iloc[0]),
                    "spd_weight": group.spd_weight.iloc[0], "seeds": len(gain),
                    "teacher": group.teacher_psnr.iloc[0], "baseline": group.baseline_psnr.iloc[0],
                    "lead": group.lead.iloc[0], "gain_mean": gain.mean(), "gain_std": gain.std(),
                    "verdict": verdict(gain), "share_mean": group.share.mean(), "share_std": group.share.std(),
                    "per_seed": " ".join(f"{v:+.3f}" for v in gain),
                    "control_spread": group.control_psnr.max() - group.control_psnr.min(),
                    "minutes": group.minutes.sum(), "minutes_per_pair": group.minutes.mean()})
    return pd.DataFrame(out)


def _dB(mean: float, std: float) -> str:
    """``+0.123 ± 0.045``, or ``+0.123`` for one seed (no spread)."""
    return f"{mean:+.3f}" + ("" if pd.isna(std) else f" ± {std:.3f}")


def percent(share: float) -> str:
    """A share as ``1.4``: rounded, then + 0.0, so a share of -0.00001 reads 0.0, not -0.0."""
    return f"{round(100 * share, 1) + 0.0:.1f}"


def _percent(mean: float, std: float) -> str:
    return percent(mean) + ("" if pd.isna(std) else f" ± {percent(std)}") + "%"


def sentence(runs: pd.DataFrame, split: str = "test") -> str:
    """The page's first line, from the numbers: per schedule and task, the student's gain over its control as a
    share of the wide teacher's lead over the baseline, and whether that gain is distinguishable from zero."""
    table = summary(runs, split)
    if table.empty:
        return f"No positive-control run has scores on the {split} split."
    leads = table.drop_duplicates("task")
    lead_text = ", ".join(f"{r.lead:+.2f} dB on {r.task}" for r in leads.itertuples())
    parts = []
    for name, group in table.groupby("schedule", sort=False):
        cells = "; ".join(f"{r.task} {_dB(r.gain_mean, r.gain_std)} dB ({_percent(r.share_mean, r.share_std)} "
                          f"of the lead, {judged(pd.Series([float(v) for v in r.per_seed.split()]))})"
                          for r in group.itertuples())
        parts.append(f"{SCHEDULE_WORDS.get(name, f'under schedule {name}')}: {cells}")
    return (f"A student distilled from a teacher without priors that leads the baseline by {lead_text} ({split} "
            f"split) gains over its control, " + "; and ".join(parts) + ".")


def transferring(table: pd.DataFrame, tasks: list[str]) -> str:
    """Which schedules of a :func:`summary` pass the teacher on clearly (above zero by the rule) on every one of
    ``tasks``, cheapest first with their cost; or that none does, and the best share of the lead seen."""
    full = table.groupby("schedule", sort=False).filter(
        lambda g: set(tasks) <= set(g.task) and (g.verdict == "above zero").all())
    if full.empty:
        best = table.loc[table.share_mean.idxmax()]
        return (f"No schedule tried transfers above zero on every task ({', '.join(tasks)}); the largest "
                f"share seen is {_percent(best.share_mean, best.share_std)} of the lead ({best.schedule}, "
                f"{best.task}).")
    cost = full.groupby("schedule", sort=False).agg(minutes=("minutes", "sum"), low=("share_mean", "min"),
                                                    high=("share_mean", "max")).sort_values("minutes")
    return ("Schedules whose transfer is above zero on every task, cheapest first: " + "; ".join(
        f"{name} ({100 * r.low:.1f}–{100 * r.high:.1f}% of the lead, {r.minutes:.0f} min for all its pairs)"
        for name, r in cost.iterrows()) + ".")


def markdown_table(table: pd.DataFrame) -> str:
    """A :func:`summary` as the page's table: the student, the teacher's lead, the gain judged, its spread."""
    shown = pd.DataFrame({
        "task": table.task, "schedule": table.schedule,
        "student": [f"{r.init}, {r.iters} it., λ₁ = {r.spd_weight:g}" for r in table.itertuples()],
        "teacher − baseline (dB)": [f"{r.teacher:.3f} − {r.baseline:.3f} = {r.lead:+.3f}"
                                    for r in table.itertuples()],
        "distilled − control (dB)": [f"{_dB(r.gain_mean, r.gain_std)} (n={r.seeds}) {r.verdict}"
                                     for r in table.itertuples()],
        "per seed (dB)": table.per_seed,
        "share of the lead": [_percent(r.share_mean, r.share_std) for r in table.itertuples()],
        # the testbed's resolution: the rule calls a mean of this spread above zero only beyond 2 std
        "2 std (dB)": ["" if pd.isna(v) else f"{2 * v:.3f}" for v in table.gain_std],
        "controls' spread (dB)": [f"{v:.3f}" for v in table.control_spread],
        "minutes (all pairs)": [f"{v:.1f}" for v in table.minutes]})
    return to_markdown(shown, {})


def section(runs: pd.DataFrame, link: str = f"{NAME}.md") -> list[str]:
    """The positive control's test-split rows, for another page (the mechanism and transfer studies): markdown
    lines under their own heading, the full page linked."""
    table = summary(runs, "test")
    if table.empty:
        return []
    return ["## Positive control: can this testbed detect distillation at all?", "",
            "A teacher without priors, clearly better than IR1 (IR1's network wider, the baseline's recipe), "
            "distilled into IR1; distilled − control paired by seed, test split; 2 std: the smallest mean gain the "
            f"rule could call above zero at that spread. The schedules tried on the validation split: [{link}]"
            f"({link}).", "", markdown_table(table), ""]


def figure(runs: pd.DataFrame, path: Path, split: str = "test") -> None:
    """Per task, each schedule's per-seed gains (dots), their mean, and the teacher's lead (dashed, on the right
    axis scale of the same dB): what a full transfer would look like beside what passes."""
    part = with_effects(runs[runs.split == split])
    tasks = list(dict.fromkeys(part.task))
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.6 * len(tasks), 3.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = part[part.task == task]
        names = list(dict.fromkeys(rows.schedule))
        for i, name in enumerate(names):
            gains = rows[rows.schedule == name].gain
            ax.scatter([i] * len(gains), gains, color="tab:blue", s=18, zorder=3)
            ax.errorbar(i + 0.15, gains.mean(), yerr=gains.std() if len(gains) > 1 else None, fmt="s",
                        color="black", capsize=3, zorder=3)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(range(len(names)), names)
        ax.set_title(f"{task}: teacher leads by {rows.lead.iloc[0]:+.2f} dB", fontsize=9)
        ax.set_ylabel("distilled − control (dB)")
    fig.suptitle(f"Positive control: gain of the student over its control ({split} split)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def write_report(runs: pd.DataFrame, out: Path, *, tasks: list[str]) -> None:
    """``out/positive_control.{md,csv,png}`` from ``runs``: the sentence, the headline table (test split), the
    schedules tried on the validation split, and every row in the CSV."""
    order = {name: i for i, name in enumerate(dict.fromkeys(runs.schedule))}
    runs = runs[runs.task.isin(tasks)].assign(_s=runs.schedule.map(order), _t=runs.task.map(tasks.index))
    runs = runs.sort_values(["_s", "_t", "seed"], kind="stable").drop(columns=["_s", "_t"])
    commit, seeds = code_commit(), sorted({int(s) for s in runs.seed})
    test, val = summary(runs, "test"), summary(runs, "val")
    first = runs.drop_duplicates("task")
    lines = [sentence(runs, "test"), "",
             "# Positive control: can this testbed detect distillation at all?", "",
             f"Code: {commit}; seeds {seeds}; tasks {', '.join(tasks)}. Teacher: IR1's network "
             f"{int(first.width_factor.iloc[0])}× wider, same blocks ({int(first.teacher_params.iloc[0]):,} "
             f"parameters against {int(first.baseline_params.iloc[0]):,}), no priors, trained with the baseline's "
             "recipe; distilled with the project's L_SPD (distill.spd_loss) on the restored images (analyzer "
             "`images`), weight λ₁; control: the same schedule and seed without that term. Training the teacher "
             "took "
             + ", ".join(f"{r.teacher_minutes:.1f} min ({r.task})" for r in first.itertuples()) + ".", "",
             "## Test split (the reported schedules)", "", markdown_table(test), "",
             "PSNR (BasicSR, the evaluate stage's conventions) on the test split; distilled − control paired by seed "
             "(mean ± std over seeds); 2 std: the smallest mean gain the rule could call above zero at this spread. "
             f"Rule: {RULE}. Minutes: wall time of the distilled and control runs together, on a shared 2-core CPU "
             "(indicative).", ""]
    warned = runs.dropna(subset=["scale_warning"]).drop_duplicates(["task", "schedule"])
    prefix = "sam4ir: warning: first distillation step: "
    if not warned.empty:
        lines += ["The objective's first-step check of the distillation term's pull against L_rec¹ (gradient norms on "
                  "IR1's weights):", "",
                  *[f"- {r.task}, {r.schedule} (seed {r.seed}): {r.scale_warning.removeprefix(prefix)}"
                    for r in warned.itertuples()], ""]
    if not val.empty:
        lines += ["## Schedules tried on the validation split", "",
                  "Every schedule, candidates included, scored on the validation split only: a schedule to recommend "
                  "is chosen here, never on the test split.", "", markdown_table(val), "",
                  transferring(val, tasks), ""]
    lines += [f"![per-seed gains](positive_control.png)", "",
              "Regenerate: `python -m sam4ir.stages.positive_control --tasks "
              f"{' '.join(tasks)} --seeds {' '.join(map(str, seeds))} --schedules "
              f"{' '.join(dict.fromkeys(runs.schedule))}` (finished runs are reused from data/positive_control).", ""]
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / f"{NAME}.md") as tmp:
        tmp.write_text("\n".join(lines))
    with atomic_path(out / f"{NAME}.csv") as tmp:
        with_effects(runs).assign(commit=commit.removeprefix("commit ")).to_csv(tmp, index=False, float_format="%.5f")
    figure(runs, out / f"{NAME}.png", "test" if not test.empty else "val")

"""The experiments at a glance, ranked: per task, each experiment's gains over its own control and no-prior runs
(dB, three decimals), then each configuration's mean ± std over its seeds, the best one marked.

    sam4ir exp-table [--rev REV | --all-commits] [--json exp.json] [--prefix NAME]
"""

from __future__ import annotations

import sys

import pandas as pd

from sam4ir.report.ablation import experiment_rows
from sam4ir.report.sweep import rank_configs, ranking_note, run_deltas
from sam4ir.stages import command_parser, run_stage
from sam4ir.stages.ablation_report import _commit, load_exp_show


def _cell(mean: float, std: float) -> str:
    """``+0.123 ± 0.045``; ``+0.123`` for one run; empty where the runs lack the rows."""
    if pd.isna(mean):
        return ""
    return f"{mean:+.3f}" + ("" if pd.isna(std) else f" ± {std:.3f}")


def exp_tables(rows: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """task -> (one row per experiment: name, the params it changed from its baseline commit, seed, deltas at
    three decimals; one row per configuration: runs, seeds, mean ± std of each delta, ``best`` marked where there
    is more than one configuration to rank), as printed."""
    deltas = run_deltas(rows)
    ranked = rank_configs(deltas)
    columns = [c for c in ("d_control", "d_no_prior", "d_teacher_prior") if c in deltas]
    out = {}
    for task, runs in deltas.groupby("task", sort=True):
        runs = runs.drop(columns="task").sort_values(["config", "seed"]).rename(columns={"config": "changed params"})
        runs[columns] = runs[columns].map(lambda v: "" if pd.isna(v) else f"{v:+.3f}")
        configs = ranked[ranked.task == task]
        summary = pd.DataFrame({"changed params": configs.config, "runs": configs.runs, "seeds": configs.seeds,
                                **{c: [_cell(m, s) for m, s in zip(configs[c], configs[f"{c}_std"])] for c in columns},
                                "best": configs.best.map({True: "<- best", False: ""}) if len(configs) > 1 else ""})
        out[task] = (runs, summary)
    return out


def main() -> None:
    parser = command_parser(__doc__)
    parser.add_argument("--json", help="saved output of `dvc exp show --json` (default: run it)")
    parser.add_argument("--prefix", default="", help="only experiments whose name starts with this")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--rev", default="HEAD", help="the baseline commit whose experiments are shown")
    which.add_argument("--all-commits", action="store_true")
    args = parser.parse_args()
    scope = ["--all-commits"] if args.all_commits else ["--rev", _commit(args.rev)]
    exp_show = load_exp_show(args.json, scope)
    rows = experiment_rows(exp_show, experiments_only=True, prefix=args.prefix)
    if rows.empty and not args.prefix:  # no queued experiment yet: the workspace and commits' own runs
        rows = experiment_rows(exp_show)
    if rows.empty:
        print("no finished experiment or commit with results", file=sys.stderr)
        return
    print(f"PSNR gains (dB) of the distilled student (spd_sgr) over its control and no-prior runs, and of the "
          f"teacher (ir2) over its no-prior twin; {ranking_note()}.\n")
    for task, (runs, configs) in exp_tables(rows).items():
        print(f"{task}: per experiment")
        print(runs.to_string(index=False, max_colwidth=48))
        print(f"{task}: per configuration (mean ± std over seeds)")
        print(configs.to_string(index=False, max_colwidth=48))
        print()


if __name__ == "__main__":
    run_stage(main)

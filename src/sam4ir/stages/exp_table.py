"""The experiments at a glance: per task, the params each experiment changed and every method's PSNR, one row an
experiment, narrow enough for a terminal (``dvc exp show`` prints one column per task x method x metric).

    sam4ir exp-table [--rev REV | --all-commits] [--json exp.json] [--metric psnr]
"""

from __future__ import annotations

import sys

import pandas as pd

from sam4ir.report.ablation import experiment_rows
from sam4ir.stages import command_parser, run_stage
from sam4ir.stages.ablation_report import _commit, load_exp_show

SHORT = {"baseline": "base", "control": "ctrl", "no_prior": "no_prior", "spd_sgr": "spd_sgr", "spd": "spd",
         "ir2": "ir2", "ir2_no_prior": "ir2_np"}


def exp_table(rows: pd.DataFrame, metric: str) -> dict[str, pd.DataFrame]:
    """task -> experiments (rows: name, changed params) x methods (columns: ``metric``)."""
    tables = {}
    for task, part in rows.groupby("task", sort=False):
        wide = part.pivot_table(index=["experiment", "config"], columns="method", values=metric, aggfunc="first",
                                sort=False)
        wide = wide[[m for m in SHORT if m in wide]].rename(columns=SHORT)
        table = wide.reset_index().rename(columns={"config": "changed params"})
        tables[task] = table.replace({"changed params": {"params.yaml": "-"}})
    return tables


def main() -> None:
    parser = command_parser(__doc__)
    parser.add_argument("--json", help="saved output of `dvc exp show --json` (default: run it)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--rev", default="HEAD", help="the baseline commit whose experiments are shown")
    which.add_argument("--all-commits", action="store_true")
    parser.add_argument("--metric", default="psnr", choices=["psnr", "ssim"])
    args = parser.parse_args()
    scope = ["--all-commits"] if args.all_commits else ["--rev", _commit(args.rev)]
    rows = experiment_rows(load_exp_show(args.json, scope))
    if rows.empty:
        print("no finished experiment or commit with results", file=sys.stderr)
        return
    for task, table in exp_table(rows, args.metric).items():
        print(f"{task} ({args.metric}, dB)" if args.metric == "psnr" else f"{task} ({args.metric})")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}" if args.metric == "psnr" else f"{v:.4f}",
                              max_colwidth=40))
        print()


if __name__ == "__main__":
    run_stage(main)

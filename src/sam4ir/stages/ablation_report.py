"""Ablation report (run after ``dvc queue start`` has finished): ``dvc exp show --rev REV --json`` ->
``reports/ablation.md``, ``reports/ablation.csv``, ``reports/ablation_runs.csv`` and ``reports/ablation.png``
(a seaborn bar plot of the gain over the control run with its spread over seeds).

Only the experiments of one baseline commit (HEAD by default) by default: experiments of older commits ran
older code, and mixing them would compare different methods.

    python -m sam4ir.stages.ablation_report [--rev REV | --all-commits] [--json exp.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import seaborn as sns

from sam4ir.errors import Sam4irError
from sam4ir.report.ablation import deltas_vs_control, experiment_rows, summarise
from sam4ir.report.figures import save_figure
from sam4ir.report.tables import to_markdown
from sam4ir.stages import run_stage
from sam4ir.stages.report import FLOATS, write_csv, write_text

OUT = Path("reports")


def load_exp_show(path: str | None, scope: list[str]) -> list:
    if path:
        return json.loads(Path(path).read_text())
    done = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", *scope, "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        raise Sam4irError(f"dvc exp show --json failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def _commit(rev: str) -> str:
    """``rev`` as a short commit hash, so the report names the code version it compares (not a moving HEAD)."""
    done = subprocess.run(["git", "rev-parse", "--short", rev], capture_output=True, text=True)
    if done.returncode != 0:
        raise Sam4irError(f"--rev {rev}: not a commit of this repository ({done.stderr.strip()})")
    return done.stdout.strip()


def experiments(description: str, experiments_only: bool = False) -> tuple[pd.DataFrame, str]:
    """The command line of the reports built from ``dvc exp show``: the long table of experiment results and a
    one-line description of where the experiments came from."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", help="saved output of `dvc exp show --json` (default: run it)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--rev", default="HEAD", help="the baseline commit whose experiments are compared")
    which.add_argument("--all-commits", action="store_true", help="every experiment of every commit (mixes code versions)")
    args = parser.parse_args()
    scope = ["--all-commits"] if args.all_commits else ["--rev", _commit(args.rev)]
    rows = experiment_rows(load_exp_show(args.json, scope), experiments_only)
    if rows.empty:
        raise Sam4irError("no experiment has evaluation metrics yet (run `dvc exp run` / `dvc queue start` first)")
    return rows, args.json or "dvc exp show " + " ".join(scope)


def main() -> None:
    rows, source = experiments(__doc__.splitlines()[0])
    deltas = deltas_vs_control(rows)
    gains = summarise(deltas)
    write_csv(OUT / "ablation_runs.csv", rows)
    write_csv(OUT / "ablation.csv", gains)
    floats = {**FLOATS, "d_psnr_std": ".2f", "d_ssim_std": ".4f"}
    write_text(OUT / "ablation.md", "\n".join([
        "# Ablations (from `dvc exp show`)", "",
        f"Experiments: `{source}`. "
        "Gain of each configuration over the control run of the same experiment (same extra iterations, no priors);",
        "mean and standard deviation over the experiments (seeds) of that configuration.", "",
        to_markdown(gains, floats), "", "![ablation](ablation.png)", ""]))
    sns.set_theme(style="whitegrid")
    grid = sns.catplot(data=deltas, x="d_psnr", y="config", hue="task", col="method", kind="bar", errorbar="sd",
                       height=max(2.5, 0.5 * deltas.config.nunique() + 1.5), aspect=1.4)
    grid.set_axis_labels("ΔPSNR over control (dB); bars: mean, whiskers: sd over seeds", "")
    save_figure(grid.figure, OUT / "ablation.png")


if __name__ == "__main__":
    run_stage(main)

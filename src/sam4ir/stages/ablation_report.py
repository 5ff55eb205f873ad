"""Ablation report (run after ``dvc queue start`` has finished): ``dvc exp show --rev REV --json`` ->
``reports/ablation.md``, ``reports/ablation.csv`` (per configuration x task x method), ``reports/ablation_runs.csv``
(per experiment) and ``reports/ablation.png`` (gain over the control run and over the no-prior twin, spread over
seeds).

Only finished experiments count, each once: not the workspace nor the baseline commit, whose committed results
may come from another machine. Only the experiments of one baseline commit (HEAD by default): experiments of older
commits ran older code, and mixing them would compare different methods.

    sam4ir ablation [--rev REV | --all-commits] [--json exp.json | --runs reports/ablation_runs.csv]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Iterable, NamedTuple

import pandas as pd

from sam4ir.errors import Sam4irError
from sam4ir.report.ablation import (NO_PRIOR_TWIN, deltas_vs_control, experiment_rows, figure, read_runs, summarise,
                                    unfinished)
from sam4ir.report.configs import DEFAULTS, backend_of, commit_params, ordered, priors_phrase
from sam4ir.report.figures import save_figure
from sam4ir.report.mechanism import effects_per_run
from sam4ir.report.provenance import experiments_line, provenance, regenerate_line
from sam4ir.report.tables import to_markdown
from sam4ir.report.sensitivity import load_control, sensitivity
from sam4ir.report.verdict import verdict_section
from sam4ir.stages import command_parser, run_stage
from sam4ir.stages.report import FLOATS, write_csv, write_text

OUT = Path("reports")
# the main table: the methods with a no-prior twin, against the control and the twin; then every method's details
MAIN = ["config", "task", "method", "runs", "psnr", "d_psnr", "d_psnr_std", "d_psnr_verdict", "d_psnr_no_prior",
        "d_psnr_no_prior_std", "d_psnr_no_prior_verdict"]
DETAILS = ["config", "task", "method", "runs", "seeds", "psnr", "d_psnr", "d_psnr_std", "d_psnr_min", "d_psnr_max",
           "d_psnr_verdict", "d_ssim", "d_ssim_std", "d_psnr_no_prior_min", "d_psnr_no_prior_max"]


def load_exp_show(path: str | None, scope: list[str]) -> list[dict]:
    """``dvc exp show --json`` over ``scope``, or its saved output at ``path``; one-line errors."""
    if path:
        try:
            return json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise Sam4irError(f"{path}: cannot read it as `dvc exp show --json` output ({err})") from None
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


def experiments(description: str, experiments_only: bool = True,
                out: str | None = None) -> tuple[pd.DataFrame, argparse.Namespace]:
    """The command line of the reports built from experiments: the long table of experiment results and the
    parsed arguments. The rows come from ``dvc exp show`` (unfinished experiments are named on stderr, since a
    report made while the queue still runs counts fewer seeds) or, with ``--runs``, from a runs table a report
    wrote and the repository commits (so a page is regenerated from what is committed). ``--prefix`` keeps the
    experiments whose name starts with it (one study among the experiments of a commit); ``out`` is the default
    of ``--out``, the reports' file name."""
    parser = command_parser(description)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--json", help="saved output of `dvc exp show --json` (default: run it)")
    source.add_argument("--runs", type=Path, help="a runs table a report wrote, e.g. reports/ablation_runs.csv "
                                                  "(instead of `dvc exp show`)")
    parser.add_argument("--prefix", default="", help="only experiments whose name starts with this")
    if out:
        parser.add_argument("--out", default=out, help=f"reports/<OUT>.md, .csv, .png (default {out})")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--rev", default="HEAD", help="the baseline commit whose experiments are compared")
    which.add_argument("--all-commits", action="store_true", help="every experiment of every commit (mixes code versions)")
    args = parser.parse_args()
    if args.runs:
        rows = read_runs(args.runs, args.prefix)
    else:
        exp_show = (load_exp_show(args.json, []) if args.json else
                    load_exp_show(None, ["--all-commits"] if args.all_commits else ["--rev", _commit(args.rev)]))
        if pending := unfinished(exp_show):
            print(f"sam4ir: not counted, not finished: {', '.join(pending)}", file=sys.stderr)
        rows = experiment_rows(exp_show, experiments_only, prefix=args.prefix)
    if rows.empty:
        raise Sam4irError("no experiment has evaluation metrics yet (run `dvc exp run` / `dvc queue start` first)")
    return rows, args


class Study(NamedTuple):
    """What a page over experiments says besides their numbers: the commit whose params every experiment
    shares (the latest, when they span several), those params, the params the experiments changed, and the words
    for the priors every configuration shares (None when each configuration names its own)."""

    commit: str
    defaults: dict[str, object]
    changed: list[str]
    priors: str | None


def study(rows: pd.DataFrame) -> tuple[pd.DataFrame, Study]:
    """``rows`` with ``config`` as a categorical in reading order (:func:`sam4ir.report.configs.ordered`), and the
    :class:`Study` they belong to."""
    commit = sorted(rows.commit.unique(), key=_commit_time)[-1]
    defaults = commit_params(commit)
    backend = defaults.get("sam.backend")
    configs = ordered(rows.config, backend)
    named = [backend_of(c) is not None for c in configs]
    priors = (None if all(named) or backend is None else priors_phrase([str(backend)])
              + (" unless a configuration names its own `sam.backend`" if any(named) else ""))
    changed = [c for c in rows.columns if "." in c]
    return rows.assign(config=pd.Categorical(rows.config, configs)), Study(commit, defaults, changed, priors)


def _commit_time(rev: str) -> int:
    """Committer time of a commit (0 where git does not know it), to name the latest of several."""
    done = subprocess.run(["git", "show", "-s", "--format=%ct", rev], capture_output=True, text=True)
    return int(done.stdout.strip() or 0) if done.returncode == 0 else 0


def _incomplete(gains: pd.DataFrame) -> list[str]:
    """One line per row that some experiment of its configuration lacks: its mean is over fewer seeds."""
    part = gains[gains.missing != ""]
    lines = [f"- **incomplete**: {r.config} / {r.task} / {r.method}: no result in {r.missing}"
             for r in part.itertuples()]
    return lines + [""] if lines else []


def main() -> None:
    rows, _ = experiments(__doc__)
    rows, about = study(rows)
    deltas = deltas_vs_control(rows)
    gains = summarise(deltas)
    write_csv(OUT / "ablation_runs.csv", rows)
    write_csv(OUT / "ablation.csv", gains)
    # gains of a few hundredths of a dB: one more digit than the results table
    floats = FLOATS | {f"{c}{s}": f if s == "_std" else f"+{f}"
                       for c, f in (("d_psnr", ".3f"), ("d_psnr_no_prior", ".3f"), ("d_ssim", ".4f"))
                       for s in ("", "_min", "_max", "_std")}
    twins = gains[gains.d_psnr_no_prior.notna()]
    effects = effects_per_run(rows)
    init = str(about.defaults.get("distill.init", "baseline"))
    write_text(OUT / "ablation.md", "\n".join([
        "# Ablations: each configuration against its own control and no-prior runs", "",
        sensitivity(effects, load_control(), default_init=init), "",
        *verdict_section(effects, priors=about.priors),
        experiments_line(rows, "ablation_runs.csv") + " Finished experiments only, each counted once; not the "
        "workspace nor the baseline commit's committed results.",
        defaults_line(about, rows.config), regenerate_line("ablation", "ablation_runs.csv"), "",
        *_incomplete(gains),
        "## Gains of the methods with a no-prior twin", "",
        "`d_psnr`: against the control run (the same extra iterations without priors, same experiment);",
        "`d_psnr_no_prior`: against the no-prior twin "
        f"({', '.join(f'`{m}` − `{t}`' for m, t in NO_PRIOR_TWIN.items())},",
        "the same run with every pixel unlabelled: what the prior's information brings). `runs`: the experiments",
        "(seeds) of the configuration; mean and std (ddof 1) over them.", "",
        to_markdown(twins[MAIN], floats) if not twins.empty else "No experiment has a no-prior run.", "",
        "## Every method against the control run (spread details)", "",
        "Min and max over seeds, SSIM; verdicts by the rule above.", "",
        to_markdown(gains[DETAILS], floats), "",
        "![ablation](ablation.png)", ""]))
    save_figure(figure(deltas, provenance(rows)), OUT / "ablation.png")


def defaults_line(about: Study, configs: Iterable[str]) -> str:
    """What the configuration labels are relative to: the params of the study's commit for each changed param
    (and what :data:`~sam4ir.report.configs.DEFAULTS` means, where a configuration is so named)."""
    if not about.changed:
        return f"Every experiment runs the params of {about.commit}."
    values = ", ".join(f"`{k}={about.defaults.get(k)}`" for k in about.changed)
    return (f"A configuration is named by the params its experiments changed from those of {about.commit} "
            f"({values}), the seeds aside" + (f"; `{DEFAULTS}`: none of them changed." if DEFAULTS in set(configs)
                                              else "."))


if __name__ == "__main__":
    run_stage(main)

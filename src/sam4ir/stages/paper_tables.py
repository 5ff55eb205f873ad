"""The paper's tables from the experiments of one commit: ``reports/main.{md,csv}`` (task x IR model x method)
and ``reports/sam_size.{md,csv}`` (task x SAM model type x method, with the priors' segments per image).

    dvc exp run --queue -S 'model.name=nafnet,hinet,restormer' && dvc queue start && dvc queue logs -f ...
    sam4ir paper-tables main [--rev REV] [--json exp.json | --runs reports/main_runs.csv] [--out reports]

    dvc exp run --queue -S sam.backend=sam -S 'sam.model_type=vit_b,vit_l,vit_h' -S ... (see README)
    sam4ir paper-tables sam_size

Each cell is the mean over the seeds of its configuration; the gains are paired within each experiment (its own
baseline, control and no-prior runs). Only finished experiments of the chosen baseline commit count, once each.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sam4ir.errors import Sam4irError
from sam4ir.report.ablation import unfinished
from sam4ir.report.mechanism import effects_per_run
from sam4ir.report.configs import priors_phrase
from sam4ir.report.paper_tables import AXES, paper_table, read_table_rows, table_rows
from sam4ir.report.provenance import experiments_line, regenerate_line
from sam4ir.report.tables import to_markdown
from sam4ir.report.sensitivity import load_control, sensitivity
from sam4ir.report.verdict import verdict_section
from sam4ir.stages import command_parser, run_stage
from sam4ir.stages.ablation_report import _commit, load_exp_show
from sam4ir.stages.report import FLOATS, write_csv, write_text

TITLES = {"main": "Main table: every IR model with and without the method",
          "sam_size": "SAM model size: the same method with priors from each SAM"}
# the compact table (the mean over test sets); then per test set, with what each row's network and priors were
GAINS = ["runs", "psnr", "psnr_std", "ssim", "d_psnr_baseline", "d_psnr_control", "d_psnr_control_verdict",
         "d_psnr_no_prior", "d_psnr_no_prior_verdict"]
DETAILS = {"main": ["params", "seeds"], "sam_size": ["priors", "segments_per_image", "seeds"]}
NOTES = {
    "main": "`params`: parameters of the network evaluated, counted from its checkpoint by `evaluate` — the same "
            "for baseline, control and distilled rows (SPD adds nothing at inference). `ir2` is the SPF branch fed "
            "the priors of the test image (needs SAM at inference; an upper reference, not a deployable row).",
    "sam_size": "`segments_per_image`: mean segments of the label maps the distillation used (train and test). "
                "Mask throughput (masks/s) is per machine, not a result: `sam_masks` logs it to "
                "`data/logs/sam_masks/<task>.json`, and `benchmarks/bench_sam.py` measures it per model type.",
}


def build(kind: str, rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The table and its Markdown page from the rows of :func:`sam4ir.report.paper_tables.table_rows` (as
    ``dvc exp show`` gives them, or as a runs table holds them); one-line error if none has results."""
    axis = AXES[kind]
    if kind == "sam_size" and not rows.empty:
        rows = rows[rows.priors == "sam"]  # experiments whose priors came from another backend have no SAM size
    if rows.empty:
        raise Sam4irError(f"{kind}: no finished experiment with evaluation metrics (run the queue first)")
    table = paper_table(rows, axis)
    floats = FLOATS | {"psnr_std": ".3f", "segments_per_image": ".1f",
                       **{f"d_psnr_{r}": "+.3f" for r in ("baseline", "control", "no_prior")}}
    per_value = rows.drop_duplicates(["experiment"])[[axis, "model_args", "data_source", "priors"]]
    described = [f"- `{axis}` = `{r[axis]}`: model args `{r.model_args}`; data `{r.data_source}`; priors `{r.priors}`"
                 for _, r in per_value.drop_duplicates([axis]).iterrows()]
    mean = rows[rows.set == "mean"]
    effects = effects_per_run(mean.assign(config=[f"{axis}={v}" for v in mean[axis]]))
    keys = ["task", axis, "method"]
    text = "\n".join([
        f"# {TITLES[kind]}", "",
        sensitivity(effects, load_control()), "",
        *verdict_section(effects, priors=priors_phrase(sorted(rows.priors.dropna().unique()))),
        experiments_line(rows, f"{kind}_runs.csv") + " Finished experiments only, each counted once. Never "
        "hand-edited.", regenerate_line(f"paper-tables {kind}", f"{kind}_runs.csv"), "",
        "## Mean over the test sets", "",
        *described, "",
        "Gains are paired within each experiment, then mean over seeds; verdicts by the rule above.", "",
        to_markdown(table.loc[table.set == "mean", keys + GAINS], floats), "",
        "## Per test set, and what each row is", "",
        NOTES[kind], "",
        to_markdown(table[keys + ["set", *DETAILS[kind], "psnr", "ssim", "d_psnr_control", "d_psnr_no_prior"]],
                    floats), ""])
    return table, text


def main() -> None:
    parser = command_parser(__doc__)
    parser.add_argument("kind", choices=sorted(AXES))
    parser.add_argument("--rev", default="HEAD", help="the baseline commit whose experiments are tabulated")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--json", help="saved output of `dvc exp show --json` (default: run it)")
    source.add_argument("--runs", type=Path, help="the runs table a previous run wrote (reports/<KIND>_runs.csv), "
                                                  "instead of `dvc exp show`")
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args()
    if args.runs:
        rows = read_table_rows(args.runs, AXES[args.kind])
    else:
        exp_show = load_exp_show(args.json, ["--rev", _commit(args.rev)])
        if pending := unfinished(exp_show):
            print(f"sam4ir: not counted, not finished: {', '.join(pending)}")
        rows = table_rows(exp_show, AXES[args.kind])
    table, text = build(args.kind, rows)
    write_csv(args.out / f"{args.kind}_runs.csv", rows)
    write_csv(args.out / f"{args.kind}.csv", table)
    write_text(args.out / f"{args.kind}.md", text)
    print(f"{args.out / args.kind}.md: {len(table)} rows")


if __name__ == "__main__":
    run_stage(main)

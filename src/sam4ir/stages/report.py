"""Stage ``report``: regenerate ``reports/`` (tables as Markdown + CSV, figures, image grids) from our results.

Every file it writes is a function of the runs, code and params, except ``reports/latency.csv`` (CPU latency, a
measurement of the machine), which results.md links to rather than quotes."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Callable

import pandas as pd

from sam4ir.params.config import load_params
from sam4ir.io import atomic_path, write_json
from sam4ir.method.spf import prior_channels
from sam4ir.models import count_params, load_model
from sam4ir.report.configs import priors_phrase
from sam4ir.report.cost_table import cost_table, latency_table
from sam4ir.report.figures import (MAX_SCENES, image_psnr, line_facets, pick_scenes, read_live_metric,
                                   restoration_panels, scene_grid, training_curves)
from sam4ir.report.mechanism import effects_per_run
from sam4ir.report.provenance import code_commit
from sam4ir.report.sensitivity import load_control, sensitivity
from sam4ir.report.tables import (MAIN_COLUMNS, METHOD_LABELS, SECONDARY_COLUMNS, per_set_table, results_table,
                                  run_rows, sets_side_by_side, to_markdown)
from sam4ir.report.verdict import verdict_section
from sam4ir.params.schema import Params
from sam4ir.stages import command_parser, run_stage
from sam4ir.stages.shared.source import CODE_RECORDS, SRC, module_file
from sam4ir.stages.shared.paths import EVALUATED, TaskPaths
from sam4ir.stages.evaluate import IR2_ROW, IR2_ROWS

OUT = Path("reports")
GRID_COLUMNS = ["input", "baseline", "control", "no_prior", "spd_sgr", IR2_ROW, "target"]
GRID_CROP = 192  # px: larger test images show their centre, where the methods' differences are visible
FLOATS = {"psnr": ".2f", "ssim": ".4f", "d_psnr": "+.2f", "d_psnr_control": "+.2f", "d_psnr_no_prior": "+.2f", "d_ssim": "+.4f", "input_psnr": ".2f",
          "input_ssim": ".4f", "seg_miou": ".3f", "input_seg_miou": ".3f", "gmacs": ".3f"}
# the rows of the training-curve figure: phase -> its x axis
TRAINING, DISTILLATION = "baseline training", "distillation and control"
PHASES = {TRAINING: "training step", DISTILLATION: "step after the baseline's end (0: the baseline's last validation)"}


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_csv(path: Path, df: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6f")


def curves(tasks: list[str], after_baseline: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Held-out PSNR of every run (phase :data:`TRAINING` for the baseline; with ``after_baseline`` the
    distillation runs and the control are phase :data:`DISTILLATION`, starting at step 0 from the baseline's last
    validation, else they trained from scratch alongside it), and the loss terms of the full method and of its
    SPF teacher (terms a run did not log are left out)."""
    val, terms = [], []
    for task in tasks:
        paths = TaskPaths(task)
        base = read_live_metric(paths.live("baseline"), "val_psnr").sort_values("step")
        val.append(base.assign(task=task, method="baseline", phase=TRAINING))
        for method in (m for m in EVALUATED if m != "baseline"):
            df = read_live_metric(paths.live(method), "val_psnr")
            if after_baseline and len(base):
                df = pd.concat([base.tail(1).assign(step=0), df], ignore_index=True)
            val.append(df.assign(task=task, method=method, phase=DISTILLATION if after_baseline else TRAINING))
        for term in ("recon1", "recon2", "spd", "sgr"):  # recon2: only when the teacher trains on (joint)
            terms.append(read_live_metric(paths.live("spd_sgr"), term).assign(task=task, term=term))
        terms.append(read_live_metric(paths.live("spf"), "recon2").assign(task=task, term="teacher recon2 (spf)"))
    return pd.concat(val, ignore_index=True), pd.concat([t for t in terms if len(t)], ignore_index=True)


def schedule(params: Params) -> str:
    """The two schemes as run: the SPF teacher's recipe, then the SPD student's (both readings of the paper)."""
    spf, d = params.spf, params.distill
    student = (f"from scratch for {params.train.iters} iterations (the baseline's recipe)" if d.init == "scratch"
               else f"from the baseline for {d.iters} iterations at lr {d.lr}")
    teacher = ("frozen" if d.teacher == "frozen" else
               f"trained on jointly (recon2_weight {d.recon2_weight}, detach_input {spf.detach_input})")
    return (f"SPF: IR2 starts as `{spf.ir2_init}` and trains alone on the frozen baseline's output for "
            f"{spf.iters} iterations at lr {spf.lr}; SPD: IR1 {student}, teacher {teacher}, fed the "
            f"{d.teacher_input}'s output (λ₁ = {d.spd_weight} on `{d.analyzer}` with {d.spd_loss}, λ₂ = "
            f"{d.sgr_weight} over regions of ≥ {d.sgr_min_pixels} px, at most {d.sgr_max_regions})")


def per_set_section(per_set: pd.DataFrame) -> list[str]:
    """Markdown lines of the per-test-set table (PSNR/SSIM per set, as the paper's multi-set tables); none when
    every task has a single test set."""
    if not (per_set.set == "average").any():
        return []
    return ["## Per test set (PSNR/SSIM; `average`: unweighted mean over the sets)", "",
            to_markdown(sets_side_by_side(per_set), {}), "", "Long form with deltas: `results_per_set.csv`.", ""]


def publish(writes: list[Callable[[], None]], entry: Path, text: str) -> None:
    """Write a report whose every number is already computed: ``entry`` (results.md, the reader's entry point) is
    removed first and written last, atomically, so a run killed or failing midway never leaves a results.md that
    describes other numbers than the CSVs and figures beside it (as ``dvc repro`` removes its outs first)."""
    entry.unlink(missing_ok=True)
    for write in writes:
        write()
    write_text(entry, text)


def opening(summary: dict[str, dict], seed: int, backends: dict[str, str], tasks: list[str], init: str) -> list[str]:
    """results.md's first lines: the title, what this testbed can detect (the positive control,
    :func:`sam4ir.report.sensitivity.sensitivity`), the one-sentence answer (does the distilled network beat its
    controls on this run, and with which priors) and its table (:func:`sam4ir.report.verdict.verdict_section`),
    then where the numbers come from. ``summary``: task -> its evaluate metrics; ``backends``: task -> its priors'
    source; ``init``: ``distill.init``."""
    effects = effects_per_run(run_rows(summary, seed))
    return ["# sam4ir results", "", sensitivity(effects, load_control(), default_init=init), "",
            *verdict_section(effects, tasks, priors=priors_phrase(backends.values())),
            "Seed spreads are in [`mechanism.md`](mechanism.md) and [`ablation.md`](ablation.md) (several seeds per "
            "configuration).", "",
            "Generated by `dvc repro` (stage `report`) from this repository's own runs; never hand-edited. "
            f"Code: {code_commit(report_code())} (the last to change a module this stage runs: "
            f"`{CODE_RECORDS / 'report.json'}`); one run, seed {seed} (`train.seed`).", ""]


def report_code() -> list[str]:
    """The files of the modules this stage runs, from its code record (its DVC dependency): the commit named on the
    page then changes exactly when the stage re-runs, so a fresh clone of a later commit writes the same page."""
    modules = json.loads((CODE_RECORDS / "report.json").read_text())["modules"]
    return [module_file(SRC, name).as_posix() for name in modules]


def latency_line(runs: int, size: int) -> str:
    """The one line of results.md about latency: a measurement of the machine, kept apart from the results (so
    every other report file is a function of the inputs)."""
    if not runs:
        return "No latency measured (`report.latency_runs: 0`)."
    return (f"CPU latency (median of {runs} runs on one {size}×{size} image) is a measurement of the machine, not a "
            "result: [`latency.csv`](latency.csv).")


def main() -> None:
    parser = command_parser(__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    tasks, model, prior = params.tasks, params.model.name, params.spf.prior

    tables, per_set, backends, writes = [], [], {}, []  # writes: deferred until everything is computed
    for task in tasks:
        paths = TaskPaths(task)
        metrics = json.loads((paths.eval / "metrics.json").read_text())
        backends[task] = metrics.pop("masks")["backend"]  # what the priors were, not a method
        n_params = {m: count_params(load_model(paths.run(m) / "model.pt", "cpu")) for m in EVALUATED}
        n_params.update({row: count_params(load_model(paths.run(run) / "ir2.pt", "cpu")) for row, run in IR2_ROWS.items()})
        tables.append(results_table(metrics, task=task, model=model, params=n_params, priors=backends[task]))
        per_set.append(per_set_table(metrics, task=task))
        names = pick_scenes([p.stem for p in (paths.eval / "images" / "baseline").glob("*.png")])
        scenes = [{c: (paths.eval / "images" / c / f"{name}.png") for c in GRID_COLUMNS} for name in names]
        labels = {**METHOD_LABELS, IR2_ROW: f"IR2 + {backends[task]} priors", "target": "target"}
        psnr = image_psnr(paths.eval / "per_image.csv")
        writes.append(partial(scene_grid, scenes, GRID_COLUMNS, labels, OUT / "figures" / f"grid_{task}.png",
                              psnr=psnr, crop=GRID_CROP))
        writes.append(partial(restoration_panels, scenes, GRID_COLUMNS, labels, OUT / "figures" / "restored", task,
                              psnr=psnr, crop=GRID_CROP))
    # One compact metrics file for `dvc exp show` / `dvc metrics diff`: keys read <task>.<method>.psnr
    summary = {task: json.loads((TaskPaths(task).eval / "metrics.json").read_text()) for task in tasks}
    results = pd.concat(tables, ignore_index=True)
    per_set = pd.concat(per_set, ignore_index=True)

    first = TaskPaths(tasks[0])
    nets = (load_model(first.run("baseline") / "model.pt", "cpu"), load_model(first.run("spd_sgr") / "model.pt", "cpu"),
            load_model(first.run(IR2_ROWS[IR2_ROW]) / "ir2.pt", "cpu"))
    size, runs = params.report.latency_size, params.report.latency_runs
    cost = cost_table(*nets, prior_channels=prior_channels(prior), size=size, sam_model_type=params.sam.model_type)
    latency = latency_table(*nets, prior_channels=prior_channels(prior), size=size, runs=runs)

    val, terms = curves(tasks, after_baseline=params.distill.init == "baseline")
    writes += [
        partial(training_curves, val, OUT / "figures" / "training_curves.png", phases=PHASES,
                title="validation PSNR (validation split, held out from the training data; never the test split)"),
        partial(line_facets, terms, y="value", hue="term", col="task", row="term",
                path=OUT / "figures" / "loss_terms.png", y_label="loss term",
                title="loss terms of IR1 + SPD + SGR during distillation, and of its SPF teacher (each on its own "
                      "axis)"),
        partial(write_csv, OUT / "results_per_set.csv", per_set),
        partial(write_csv, OUT / "cost.csv", cost),
        partial(write_csv, OUT / "latency.csv", latency),
        partial(write_csv, OUT / "results.csv", results),
        partial(write_json, OUT / "metrics.json", summary),
    ]

    text = [
        *opening(summary, params.train.seed, backends, tasks, params.distill.init),
        "## Restoration quality (test split, BasicSR PSNR/SSIM)", "",
        f"Model: `{model}` {json.dumps(params.model.kwargs)}. Data source: `{params.data.source}`. "
        f"Semantic priors from: {', '.join(f'{t}: `{b}`' for t, b in backends.items())}. SPF prior: `{prior}`; "
        f"{schedule(params)}.",
        "The paper's own figures are not shown: none could be verified from this environment.", "",
        "`d_psnr`/`d_ssim` are against the baseline, `d_psnr_control` against the control (same extra iterations,",
        "no cascade), and `d_psnr_no_prior` against `no_prior` (the same cascade and losses with every pixel",
        "unlabelled): the last is the part of the gain the priors' information is responsible for.", "",
        to_markdown(results[MAIN_COLUMNS], FLOATS), "",
        "## What each row is, and secondary checks", "",
        "Only rows marked `needs_sam_at_inference` use SAM at test time; `params` are counted from each checkpoint.",
        "`seg_miou`: downstream-segmentation check — masks of the restored image (same backend as the priors) matched",
        "against masks of the clean image (matching mIoU; 1 = same partition). It measures how alike two partitions",
        "are, not image quality: with the classical stand-in a degraded input can score above every restoration (rain",
        "streaks cut few segment borders; restorations smooth texture and merge segments), so on the demo it is a",
        "plumbing check, informative only with SAM's masks. `input_*`: the degraded input's own scores.", "",
        to_markdown(results[SECONDARY_COLUMNS], FLOATS), "",
        *per_set_section(per_set),
        f"## Inference cost (one {size}×{size} image)", "",
        to_markdown(cost, FLOATS), "",
        latency_line(runs, size), "",
        "## Figures", "",
        "![training curves](figures/training_curves.png)", "",
        "![loss terms](figures/loss_terms.png)", "",
        f"Restored test images, {MAX_SCENES} scenes per task at most (evenly spread over the sorted test split; "
        f"images above {GRID_CROP} px: their centre), each method's PSNR under it and its error map below it; "
        "one picture per scene in `figures/restored` for `dvc plots diff`.", "",
        *[f"![{t}](figures/grid_{t}.png)\n" for t in tasks],
    ]
    publish(writes, OUT / "results.md", "\n".join(text) + "\n")


if __name__ == "__main__":
    run_stage(main)

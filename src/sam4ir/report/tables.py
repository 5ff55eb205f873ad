"""Result tables: one row per task x model x method, with gains over the baseline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sam4ir.errors import Sam4irError

# What each method row is, in the paper's words; which rows need SAM when deployed.
METHOD_LABELS = {
    "input": "degraded input",
    "baseline": "IR1 original",
    "control": "IR1 + extra iters (control)",
    "no_prior": "IR1 + SPD + SGR, no regions (prior control)",
    "spd": "IR1 + SPD",
    "spd_sgr": "IR1 + SPD + SGR (ours)",
    "ir2": "IR2 + {priors} priors (SPF branch; needs the segmenter at inference)",
    "ir2_no_prior": "IR2 trained and fed with no regions (teacher of no_prior)",
}
NEEDS_SAM = {"ir2"}


def results_table(metrics: dict[str, dict], *, task: str, model: str, params: dict[str, int], priors: str) -> pd.DataFrame:
    """Rows of one task from its ``metrics.json`` (method -> {psnr, ssim}); deltas are against ``baseline``, and
    the PSNR also against ``control`` and ``no_prior`` where the task has them."""
    base, inp = metrics["baseline"], metrics["input"]
    nan = {"psnr": float("nan")}
    rows = []
    for method, m in metrics.items():
        if method == "input":
            continue
        rows.append({
            "task": task, "model": model, "method": method,
            "description": METHOD_LABELS.get(method, method).format(priors=priors),
            "psnr": m["psnr"], "ssim": m["ssim"],
            "d_psnr": m["psnr"] - base["psnr"], "d_ssim": m["ssim"] - base["ssim"],
            "d_psnr_control": m["psnr"] - metrics.get("control", nan)["psnr"],
            "d_psnr_no_prior": m["psnr"] - metrics.get("no_prior", nan)["psnr"],
            "input_psnr": inp["psnr"], "input_ssim": inp["ssim"],
            "seg_miou": m.get("seg_miou"), "input_seg_miou": inp.get("seg_miou"),
            "params": params.get(method), "needs_sam_at_inference": method in NEEDS_SAM, "priors": priors,
        })
    return pd.DataFrame(rows)


# results.md: the compact table, then what each row is and the secondary checks (results.csv has them all)
MAIN_COLUMNS = ["task", "method", "psnr", "ssim", "d_psnr", "d_ssim", "d_psnr_control", "d_psnr_no_prior"]
SECONDARY_COLUMNS = ["task", "method", "description", "params", "needs_sam_at_inference", "seg_miou",
                     "input_seg_miou", "input_psnr", "input_ssim"]


def run_rows(metrics: dict[str, dict[str, dict]], seed: int) -> pd.DataFrame:
    """The long table of :func:`sam4ir.report.ablation.experiment_rows` for the one run in the workspace (task ->
    its ``metrics.json``): the verdict of a single run is computed as an experiment's is."""
    return pd.DataFrame([{"experiment": "workspace", "config": "params.yaml", "seed": seed, "task": task,
                          "method": method, "psnr": m["psnr"]}
                         for task, methods in metrics.items() for method, m in methods.items()
                         if isinstance(m, dict) and "psnr" in m])


PER_SET_COLUMNS = ["task", "set", "method", "psnr", "ssim", "d_psnr", "d_ssim"]


def per_set_table(metrics: dict[str, dict], *, task: str) -> pd.DataFrame:
    """Long table of a task tested on several sets (``sets`` in its ``metrics.json``): one row per set x method
    (not the input), then ``average`` rows (the unweighted mean over sets); deltas against ``baseline``.
    A task with one test set has one row per method (set ``test``)."""
    rows = []
    for method, m in metrics.items():
        if method == "input":
            continue
        sets = {**m["sets"], "average": m} if "sets" in m else {"test": m}
        for name, v in sets.items():
            base = metrics["baseline"].get("sets", {}).get(name, metrics["baseline"])
            rows.append({"task": task, "set": name, "method": method, "psnr": v["psnr"], "ssim": v["ssim"],
                         "d_psnr": v["psnr"] - base["psnr"], "d_ssim": v["ssim"] - base["ssim"]})
    return pd.DataFrame(rows, columns=PER_SET_COLUMNS)


def sets_side_by_side(per_set: pd.DataFrame) -> pd.DataFrame:
    """The layout of the field's multi-set tables: one row per task x method, one ``PSNR/SSIM`` column per set."""
    cells = per_set.assign(cell=[f"{p:.2f}/{s:.4f}" for p, s in zip(per_set.psnr, per_set.ssim)])
    wide = cells.pivot(index=["task", "method"], columns="set", values="cell")
    order = [s for s in dict.fromkeys(per_set.set) if s != "average"] + ["average"]
    rows = per_set[["task", "method"]].drop_duplicates()
    return wide.reindex(pd.MultiIndex.from_frame(rows))[order].fillna("").reset_index()


def to_markdown(df: pd.DataFrame, floats: dict[str, str]) -> str:
    """A GitHub Markdown table with per-column number formats (no extra dependency such as tabulate)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in df.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if c in floats and isinstance(v, (int, float)) and not isinstance(v, bool) and pd.notna(v):
                cells.append(format(v, floats[c]))
            else:
                cells.append("" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def read_csv(path: Path, **kwargs: object) -> pd.DataFrame:
    """``pandas.read_csv`` whose failures (missing, unreadable, empty or malformed file) are one line naming it."""
    try:
        return pd.read_csv(path, **kwargs)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise Sam4irError(f"{path}: cannot read it as a table ({err})") from None

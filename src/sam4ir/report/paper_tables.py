"""The paper's tables from experiments: the main table (task x IR model x method) and the SAM-size table
(task x ``sam.model_type`` x method), each cell a mean over the seeds of its configuration.

Both read ``dvc exp show --json`` through :mod:`sam4ir.report.ablation` (finished experiments only, each once);
a configuration is the value of the table's axis param (``model.name`` or ``sam.model_type``), and the gains are
paired within each experiment: against its own baseline, control and no-prior runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sam4ir.errors import Sam4irError
from sam4ir.report.ablation import _eval_metrics, revision_params, revisions, task_metrics
from sam4ir.report.configs import changed
from sam4ir.report.tables import read_csv
from sam4ir.report.verdict import verdict

METHODS = ("baseline", "control", "no_prior", "spd", "spd_sgr", "ir2")  # ir2: needs SAM at inference
AXES = {"main": "model.name", "sam_size": "sam.model_type"}
# What an experiment of a table may change besides train.seed: the axis and the params that go with it (the SAM
# checkpoint and backend). Experiments that change anything else (an ablation of the same commit) are left out.
FREE = {"model.name": ("model.name",), "sam.model_type": ("sam.",)}


def _off_axis(flat: dict, base: dict, axis: str) -> list[str]:
    """Params in which an experiment differs from its baseline commit, other than the seeds and ``axis``'s own."""
    return [k for k in changed(flat, base) if not k.startswith(FREE[axis])]


def table_rows(exp_show: list[dict], axis: str) -> pd.DataFrame:
    """One row per finished experiment x task x method x test set (``set`` = ``mean`` for the average over sets,
    the field's convention): ``axis`` value, seed, psnr, ssim, params, and the experiment's prior statistics.
    Only experiments that differ from their baseline commit in the seed and the axis alone."""
    rows, bases = [], {}
    for rev in revisions(exp_show):
        if not rev.experiment:
            bases[rev.commit] = revision_params(rev) if rev.data else {}
            continue
        if rev.state != "success" or not rev.data:
            continue
        flat = revision_params(rev)
        if _off_axis(flat, bases.get(rev.commit, flat), axis):
            continue
        raw = task_metrics(rev.data)
        for task, methods in _eval_metrics(rev.data).items():
            masks = raw.get(task, {}).get("masks") or {}
            for method, values in methods.items():
                if method not in METHODS:
                    continue
                sets = {"mean": values, **(values.get("sets") or {})}
                for name, scores in sets.items():
                    rows.append({"experiment": rev.name, "commit": rev.commit, axis: flat.get(axis),
                                 "model_args": model_args(flat, flat.get("model.name")),
                                 "seed": flat.get("train.seed"), "task": task, "method": method, "set": name,
                                 "psnr": scores.get("psnr"), "ssim": scores.get("ssim"),
                                 "params": values.get("params"), "priors": masks.get("backend"),
                                 "segments_per_image": masks.get("segments_per_image"),
                                 "data_source": flat.get("data.source")})
    return pd.DataFrame(rows)


def model_args(flat: dict, name: object) -> str:
    """The chosen network's constructor arguments, from the flattened params (``model.args.<name>.<arg>``)."""
    prefix = f"model.args.{name}."
    return ", ".join(f"{k[len(prefix):]}={v}" for k, v in flat.items() if k.startswith(prefix))


ROW_COLUMNS = ("experiment", "commit", "model_args", "seed", "task", "method", "set", "psnr", "ssim", "params",
               "priors", "segments_per_image", "data_source")


def read_table_rows(path: Path, axis: str) -> pd.DataFrame:
    """The rows of :func:`table_rows` as a paper-table command wrote them (``reports/<kind>_runs.csv``), so a table
    is regenerated from what is committed; one-line error naming the file when it is not such a table."""
    rows = read_csv(path, dtype={axis: str, "model_args": str, "priors": str, "data_source": str})
    missing = [c for c in (axis, *ROW_COLUMNS) if c not in rows.columns]
    if missing:
        raise Sam4irError(f"{path}: not the rows of a paper table (missing {', '.join(missing)})")
    return rows


def paper_table(rows: pd.DataFrame, axis: str) -> pd.DataFrame:
    """Per task x ``axis`` value x method x set: mean PSNR/SSIM over seeds, ``runs``, the parameter count, and
    ΔPSNR against the baseline, the control and the no-prior run (paired per experiment; mean, std and the
    verdict of :func:`sam4ir.report.verdict.verdict`)."""
    keys = ["experiment", "task", "set"]
    wide = rows.pivot_table(index=keys, columns="method", values="psnr", aggfunc="first")
    deltas = rows.copy()
    for ref in ("baseline", "control", "no_prior"):
        ref_psnr = wide[ref] if ref in wide else pd.Series(np.nan, index=wide.index)
        deltas[f"d_psnr_{ref}"] = deltas["psnr"].to_numpy() - ref_psnr.reindex(
            pd.MultiIndex.from_frame(deltas[keys])).to_numpy()
    group = ["task", axis, "method", "set"]
    out = []
    for (task, value, method, name), g in deltas.groupby(group, sort=False):
        row = {"task": task, axis: value, "method": method, "set": name, "runs": len(g),
               "seeds": " ".join(str(s) for s in sorted(g.seed)), "params": g.params.iloc[0],
               "psnr": g.psnr.mean(), "psnr_std": g.psnr.std(ddof=1) if len(g) > 1 else np.nan,
               "ssim": g.ssim.mean(), "priors": g.priors.iloc[0],
               "segments_per_image": g.segments_per_image.mean()}
        for ref in ("baseline", "control", "no_prior"):
            d = g[f"d_psnr_{ref}"].dropna()
            row[f"d_psnr_{ref}"] = d.mean() if len(d) and method != ref else np.nan
            if ref != "baseline":
                row[f"d_psnr_{ref}_verdict"] = verdict(d) if len(d) and method != ref else ""
        out.append(row)
    table = pd.DataFrame(out)
    position = table.method.map({m: i for i, m in enumerate(METHODS)})
    return (table.assign(_mean_last=table.set == "mean", _method=position)
            .sort_values(["task", axis, "_mean_last", "set", "_method"], kind="stable")
            .drop(columns=["_mean_last", "_method"]).reset_index(drop=True))

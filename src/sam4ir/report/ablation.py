"""Ablation tables from ``dvc exp show --json``: one row per experiment x task x method, then the gain of each
configuration over the control run, with its spread over seeds.

A configuration is every param that differs between the experiments, except the seed (what varies *within* a
configuration): no param can merge two different setups into one bar, whatever an ablation changes.
"""

from __future__ import annotations

import json
from typing import Iterator

import pandas as pd

SEED_PARAM = "train.seed"


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists as JSON text, so values stay comparable and hashable."""
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, list) else value
    return flat


def _revisions(node, experiments_only: bool = False, inside: bool = False) -> Iterator[tuple[str, dict]]:
    """(name, data) of every revision in ``dvc exp show --json`` (workspace, commits, experiments); with
    ``experiments_only``, only the experiments (not the workspace nor the baseline commit, whose committed
    results may come from another machine)."""
    if isinstance(node, list):
        for item in node:
            yield from _revisions(item, experiments_only, inside)
    elif isinstance(node, dict):
        data = node.get("data")
        if isinstance(data, dict) and "metrics" in data and "params" in data and (inside or not experiments_only):
            yield node.get("name") or node.get("rev") or "?", data
        for key in ("experiments", "revs"):
            if node.get(key):
                yield from _revisions(node[key], experiments_only, inside or key == "experiments")


def experiment_rows(exp_show: list, experiments_only: bool = False) -> pd.DataFrame:
    """Long table: experiment, config, seed, task, method, psnr, ssim (from ``data/eval/<task>/metrics.json``), and
    one column per param that differs between experiments."""
    rows, params = [], {}
    for name, data in _revisions(exp_show, experiments_only):
        flat = _flatten((data.get("params") or {}).get("params.yaml", {}).get("data", {}))
        for path, metrics in (data.get("metrics") or {}).items():
            parts = path.split("/")
            if parts[:2] != ["data", "eval"] or not isinstance(metrics, dict):
                continue
            for method, values in (metrics.get("data") or {}).items():
                params[len(rows)] = flat
                rows.append({"experiment": name, "seed": flat.get(SEED_PARAM), "task": parts[2], "method": method,
                             "psnr": values.get("psnr"), "ssim": values.get("ssim")})
    if not rows:
        return pd.DataFrame(rows)
    table = pd.DataFrame.from_dict(params, orient="index")
    varying = [k for k in table.columns if k != SEED_PARAM and table[k].astype(str).nunique() > 1]
    df = pd.DataFrame(rows).join(table[varying])
    df.insert(1, "config", [" ".join(f"{k}={r[k]}" for k in varying) or "params.yaml" for _, r in df.iterrows()])
    # The workspace repeats the experiment it was last applied from: keep one copy of identical results.
    return df.drop_duplicates(subset=[c for c in df.columns if c != "experiment"])


def deltas_vs_control(rows: pd.DataFrame) -> pd.DataFrame:
    """Per experiment x task x method (not control/input): ΔPSNR/ΔSSIM against that experiment's control run."""
    keys = ["experiment", "task"]
    control = rows.loc[rows.method == "control", keys + ["psnr", "ssim"]]
    ours = rows[~rows.method.isin(["control", "input"])].merge(control, on=keys, how="left", suffixes=("", "_control"))
    ours["d_psnr"] = ours["psnr"] - ours["psnr_control"]
    ours["d_ssim"] = ours["ssim"] - ours["ssim_control"]
    return ours


def summarise(deltas: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds (experiments) of each configuration x task x method."""
    agg = deltas.groupby(["config", "task", "method"], sort=True).agg(
        runs=("d_psnr", "size"), psnr=("psnr", "mean"), d_psnr=("d_psnr", "mean"), d_psnr_std=("d_psnr", "std"),
        d_ssim=("d_ssim", "mean"), d_ssim_std=("d_ssim", "std"))
    return agg.reset_index()

"""Ablation tables from ``dvc exp show --json``: one row per experiment x task x method, then the gain of each
configuration over the control run, with its spread over seeds."""

from __future__ import annotations

from typing import Iterator

import pandas as pd

# Params that define an ablation configuration (the seed is what varies *within* a configuration).
ABLATION_PARAMS = ("distill.spd_weight", "distill.sgr_weight", "distill.recon2_weight", "distill.analyzer",
                   "distill.spd_loss", "spf.prior", "sam.backend", "sam.model_type", "model.name")
SEED_PARAM = "train.seed"


def _lookup(tree: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _revisions(node) -> Iterator[tuple[str, dict]]:
    """(name, data) of every revision in ``dvc exp show --json`` (workspace, commits, experiments)."""
    if isinstance(node, list):
        for item in node:
            yield from _revisions(item)
    elif isinstance(node, dict):
        data = node.get("data")
        if isinstance(data, dict) and "metrics" in data and "params" in data:
            yield node.get("name") or node.get("rev") or "?", data
        for key in ("experiments", "revs"):
            if node.get(key):
                yield from _revisions(node[key])


def experiment_rows(exp_show: list) -> pd.DataFrame:
    """Long table: experiment, config params, seed, task, method, psnr, ssim (from ``data/eval/<task>/metrics.json``)."""
    rows = []
    for name, data in _revisions(exp_show):
        params = (data.get("params") or {}).get("params.yaml", {}).get("data", {})
        config = {key: _lookup(params, key) for key in ABLATION_PARAMS}
        for path, metrics in (data.get("metrics") or {}).items():
            parts = path.split("/")
            if parts[:2] != ["data", "eval"] or not isinstance(metrics, dict):
                continue
            for method, values in (metrics.get("data") or {}).items():
                rows.append({"experiment": name, **config, "seed": _lookup(params, SEED_PARAM), "task": parts[2],
                             "method": method, "psnr": values.get("psnr"), "ssim": values.get("ssim")})
    df = pd.DataFrame(rows)
    # The workspace repeats the experiment it was last applied from: keep one copy of identical results.
    return df.drop_duplicates(subset=[c for c in df.columns if c != "experiment"]) if not df.empty else df


def config_label(row: pd.Series) -> str:
    return (f"spd={row['distill.spd_weight']:g} sgr={row['distill.sgr_weight']:g} "
            f"prior={row['spf.prior']} A={row['distill.analyzer']} sam={row['sam.backend']}/{row['sam.model_type']}")


def deltas_vs_control(rows: pd.DataFrame) -> pd.DataFrame:
    """Per experiment x task x method (not control/input): ΔPSNR/ΔSSIM against that experiment's control run."""
    keys = ["experiment", "task"]
    control = rows.loc[rows.method == "control", keys + ["psnr", "ssim"]]
    ours = rows[~rows.method.isin(["control", "input"])].merge(control, on=keys, how="left", suffixes=("", "_control"))
    ours["d_psnr"] = ours["psnr"] - ours["psnr_control"]
    ours["d_ssim"] = ours["ssim"] - ours["ssim_control"]
    ours["config"] = ours.apply(config_label, axis=1)
    return ours


def summarise(deltas: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds (experiments) of each configuration x task x method."""
    agg = deltas.groupby(["config", "task", "method"], sort=True).agg(
        runs=("d_psnr", "size"), psnr=("psnr", "mean"), d_psnr=("d_psnr", "mean"), d_psnr_std=("d_psnr", "std"),
        d_ssim=("d_ssim", "mean"), d_ssim_std=("d_ssim", "std"))
    return agg.reset_index()

"""Ablation tables from ``dvc exp show --json``: one row per experiment x task x method, then the gain of each
configuration over the control run (and over the same run without priors), with its spread over seeds.

A configuration is every param that differs between the experiments, except the seeds (what varies *within* a
configuration: :data:`SEED_PARAMS`): no param can merge two different setups into one bar, whatever an ablation changes.

The input is the JSON of ``dvc exp show --json`` (DVC 3: a list of ``ExpState.dumpd()``, the workspace first, then
one entry per baseline commit whose ``experiments`` are ``ExpRange``s with ``revs``, ``executor`` and ``name``), not
the flat table of ``dvc.api.exp_show``: the flat table drops a metrics file's path when no other file has the same
key, and the path is the only place that names the task.
"""

from __future__ import annotations

import json
from typing import Iterator, NamedTuple

import matplotlib

matplotlib.use("Agg")  # reports are written on headless machines
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from sam4ir.report.verdict import verdict  # noqa: E402

SEED_PARAM = "train.seed"  # the ``seed`` column
SEED_PARAMS = (SEED_PARAM, "data.seed")  # repeats of one configuration: the seeds of training and of the data split
# method -> the same run with every pixel unlabelled: the difference is what the prior's information brings
NO_PRIOR_TWIN = {"spd_sgr": "no_prior", "ir2": "ir2_no_prior"}
# delta column -> the stats reported per configuration x task x method (mean under the column's own name)
SPREAD = {"d_psnr": True, "d_ssim": False, "d_psnr_no_prior": True}  # True: with a verdict


class Revision(NamedTuple):
    """One revision of ``dvc exp show --json``: ``commit`` is the short hash of the baseline it belongs to,
    ``state`` the queue executor's (``success`` for a finished experiment and for commits and the workspace)."""

    name: str
    commit: str
    experiment: bool
    state: str
    data: dict | None


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists as JSON text, so values stay comparable and hashable."""
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, list) else value
    return flat


def revisions(exp_show: list[dict]) -> Iterator[Revision]:
    """Every revision: the workspace, each baseline commit, and the tip of each of its experiments (later revs of
    a range are legacy checkpoints, which ``dvc exp show`` itself does not list)."""
    for state in exp_show:
        commit = state["rev"][:7] if state["rev"] != "workspace" else "workspace"
        yield Revision(state.get("name") or commit, commit, False, "success", state.get("data"))
        for exp_range in state.get("experiments") or []:
            tip = (exp_range.get("revs") or [{}])[0]
            executor = exp_range.get("executor") or {}
            name = exp_range.get("name") or tip.get("name") or str(tip.get("rev", "?"))[:7]
            yield Revision(name, commit, True, executor.get("state", "success"), tip.get("data"))


def unfinished(exp_show: list[dict]) -> list[str]:
    """Experiments that are queued, running or failed: they have no results yet, and the report says so."""
    return [f"{r.name} ({r.state})" for r in revisions(exp_show) if r.experiment and r.state != "success"]


def task_metrics(data: dict) -> dict[str, dict]:
    """task -> the whole evaluation record of one revision (methods, and ``masks``): from ``reports/metrics.json``
    (``<task>.<method>.psnr``), or from the per-task ``data/eval/<task>/metrics.json`` of older commits."""
    files = data.get("metrics") or {}
    compact = ((files.get("reports/metrics.json") or {}).get("data")) or {}
    if compact:
        return {task: record for task, record in compact.items() if isinstance(record, dict)}
    found = {}
    for path, metrics in files.items():
        parts = path.split("/")
        if parts[:2] == ["data", "eval"] and len(parts) > 3 and isinstance((metrics or {}).get("data"), dict):
            found[parts[2]] = metrics["data"]
    return found


def _eval_metrics(data: dict) -> dict[str, dict]:
    """task -> {method: {psnr, ssim, ...}} (training logs and the ``masks`` record are not results)."""
    return {task: {m: v for m, v in record.items() if isinstance(v, dict) and "psnr" in v}
            for task, record in task_metrics(data).items()}


def experiment_rows(exp_show: list[dict], experiments_only: bool = False, prefix: str = "") -> pd.DataFrame:
    """Long table: experiment, config, commit, seed, task, method, psnr, ssim, and one column per param that differs
    between the revisions counted. Finished experiments only, each once; with ``experiments_only`` not the workspace
    nor the baseline commits (whose committed results may come from another machine), else those too, less any that
    repeats another revision exactly (the workspace after ``dvc exp apply`` or a clean checkout); with ``prefix``
    only the experiments whose name starts with it."""
    rows, params, seen = [], {}, set()
    for rev in revisions(exp_show):
        if rev.state != "success" or not rev.data or (experiments_only and not rev.experiment):
            continue
        if prefix and not (rev.experiment and rev.name.startswith(prefix)):
            continue
        flat = _flatten((rev.data.get("params") or {}).get("params.yaml", {}).get("data") or {})
        results = _eval_metrics(rev.data)
        if not rev.experiment:
            key = json.dumps([flat, results], sort_keys=True, default=str)
            if key in seen:
                continue
            seen.add(key)
        for task, methods in results.items():
            for method, values in methods.items():
                params[len(rows)] = flat
                rows.append({"experiment": rev.name, "commit": rev.commit, "seed": flat.get(SEED_PARAM),
                             "task": task, "method": method, "psnr": values.get("psnr"), "ssim": values.get("ssim")})
    if not rows:
        return pd.DataFrame(rows)
    table = pd.DataFrame.from_dict(params, orient="index")
    varying = [k for k in table.columns if k not in SEED_PARAMS and table[k].astype(str).nunique() > 1]
    df = pd.DataFrame(rows).join(table[varying])
    df.insert(1, "config", [" ".join(f"{k}={r[k]}" for k in varying) or "params.yaml" for _, r in df.iterrows()])
    return df


def deltas_vs_control(rows: pd.DataFrame) -> pd.DataFrame:
    """Per experiment x task x method (not control/input): ΔPSNR/ΔSSIM against that experiment's control run, and
    ``d_psnr_no_prior`` against its no-prior twin (:data:`NO_PRIOR_TWIN`; NaN for methods without one)."""
    keys = ["experiment", "task"]
    psnr = rows.set_index(keys + ["method"])["psnr"]
    control = rows.loc[rows.method == "control", keys + ["psnr", "ssim"]]
    ours = rows[~rows.method.isin(["control", "input"])].merge(control, on=keys, how="left", suffixes=("", "_control"))
    ours["d_psnr"] = ours["psnr"] - ours["psnr_control"]
    ours["d_ssim"] = ours["ssim"] - ours["ssim_control"]
    twin = pd.MultiIndex.from_arrays([ours.experiment, ours.task, ours.method.map(NO_PRIOR_TWIN)])
    ours["d_psnr_no_prior"] = ours["psnr"].to_numpy() - psnr.reindex(twin).to_numpy()
    return ours


def summarise(deltas: pd.DataFrame) -> pd.DataFrame:
    """Per configuration x task x method: ``runs`` (the configuration's experiments, the same on each of its rows),
    their ``seeds``, the experiments ``missing`` a value (never hidden in a lower ``runs``), the mean PSNR, and for
    each delta its mean, std (ddof 1), min, max and, for PSNR, the verdict of
    :func:`sam4ir.report.verdict.verdict`."""
    members = deltas.groupby("config")["experiment"].unique()
    seeds = deltas.drop_duplicates("experiment").groupby("config")["seed"].apply(
        lambda s: " ".join(str(v) for v in sorted(s.dropna())))
    groups = deltas.groupby(["config", "task", "method"], sort=True)
    table = groups.agg(psnr=("psnr", "mean"), **{
        f"{col}{suffix}": (col, stat) for col in SPREAD
        for suffix, stat in (("", "mean"), ("_std", "std"), ("_min", "min"), ("_max", "max"))})
    for col in (c for c, judged in SPREAD.items() if judged):
        table[f"{col}_verdict"] = groups[col].apply(lambda v: verdict(v.dropna()) if v.notna().any() else "")
    present = groups.apply(lambda g: set(g.loc[g.d_psnr.notna(), "experiment"]), include_groups=False)
    table.insert(0, "runs", [len(members[config]) for config, _, _ in table.index])
    table.insert(1, "seeds", [seeds[config] for config, _, _ in table.index])
    table.insert(2, "missing", [" ".join(sorted(set(members[key[0]]) - present[key])) for key in table.index])
    return table.reset_index()


def figure(deltas: pd.DataFrame, title: str) -> plt.Figure:
    """ΔPSNR per task (columns) against the control run and the no-prior twin (rows): methods on the y axis so no
    label overlaps another, one bar per configuration (legend outside the panels), whiskers = std over seeds."""
    long = pd.concat([deltas.assign(reference="vs control", value=deltas.d_psnr),
                      deltas.assign(reference="vs no-prior twin", value=deltas.d_psnr_no_prior)])
    long = long.dropna(subset=["value"])
    bars = long.config.nunique() * long.method.nunique()
    sns.set_theme(style="whitegrid")
    grid = sns.catplot(data=long, kind="bar", x="value", y="method", hue="config", col="task", row="reference",
                       errorbar="sd", orient="h", sharey="row", height=max(2.5, 0.2 * bars + 1), aspect=1.1)
    for ax in grid.axes.flat:
        ax.axvline(0, color="black", linewidth=0.8)
    grid.set_titles("{row_name} | {col_name}")
    grid.set_axis_labels("ΔPSNR (dB); bar: mean, whisker: ±1 std over seeds", "")
    grid.figure.suptitle(f"Ablation gains ({title})", y=1.02)
    return grid.figure

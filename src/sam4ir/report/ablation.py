"""Ablation tables from ``dvc exp show --json``: one row per experiment x task x method, then the gain of each
configuration over the control run (and over the same run without priors), with its spread over seeds.

A configuration is every param an experiment changed from its baseline commit, except the seeds (what varies *within*
a configuration: :data:`sam4ir.report.configs.SEED_PARAMS`): no param can merge two different setups into one bar,
whatever an ablation changes, and a label names only what changed.

The input is the JSON of ``dvc exp show --json`` (DVC 3: a list of ``ExpState.dumpd()``, the workspace first, then
one entry per baseline commit whose ``experiments`` are ``ExpRange``s with ``revs``, ``executor`` and ``name``), not
the flat table of ``dvc.api.exp_show``: the flat table drops a metrics file's path when no other file has the same
key, and the path is the only place that names the task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, NamedTuple

import matplotlib

matplotlib.use("Agg")  # reports are written on headless machines
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from sam4ir.errors import Sam4irError  # noqa: E402
from sam4ir.report.configs import SEED_PARAM, commit_params, config_labels, flatten  # noqa: E402
from sam4ir.report.tables import read_csv  # noqa: E402
from sam4ir.report.verdict import verdict  # noqa: E402

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
    """Long table: experiment, config, commit, seed, task, method, psnr, ssim, and one column per param that any
    revision counted changed from its baseline commit (the text of its value). ``config`` is the label of
    :func:`sam4ir.report.configs.config_labels`: an experiment against its baseline commit, the workspace against
    the first commit listed (HEAD), a commit against itself. Finished experiments only, each once; with
    ``experiments_only`` not the workspace nor the baseline commits (whose committed results may come from another
    machine), else those too, less any that repeats another revision exactly (the workspace after ``dvc exp
    apply`` or a clean checkout); with ``prefix`` only the experiments whose name starts with it."""
    bases = {rev.commit: revision_params(rev) for rev in revisions(exp_show)
             if not rev.experiment and rev.commit != "workspace" and rev.data}
    head = next(iter(bases.values()), {})
    rows, params, seen = [], [], set()
    for rev in revisions(exp_show):
        if rev.state != "success" or not rev.data or (experiments_only and not rev.experiment):
            continue
        if prefix and not (rev.experiment and rev.name.startswith(prefix)):
            continue
        flat = revision_params(rev)
        results = _eval_metrics(rev.data)
        if not rev.experiment:
            key = json.dumps([flat, results], sort_keys=True, default=str)
            if key in seen:
                continue
            seen.add(key)
        params.append((flat, bases.get(rev.commit, head)))
        for task, methods in results.items():
            for method, values in methods.items():
                rows.append({"experiment": rev.name, "commit": rev.commit, "seed": flat.get(SEED_PARAM),
                             "task": task, "method": method, "psnr": values.get("psnr"), "ssim": values.get("ssim"),
                             "_rev": len(params) - 1})
    if not rows:
        return pd.DataFrame(rows)
    labels, keys = config_labels([p for p, _ in params], [b for _, b in params])
    df = pd.DataFrame(rows)
    df.insert(1, "config", [labels[i] for i in df._rev])
    for key in keys:
        df[key] = [str(params[i][0].get(key)) for i in df._rev]
    return df.drop(columns="_rev")


def revision_params(rev: Revision) -> dict[str, object]:
    """A revision's flattened params.yaml."""
    return flatten((rev.data.get("params") or {}).get("params.yaml", {}).get("data") or {})


# the columns every runs table has; then either method and psnr (experiment rows) or effect and value (effects)
RUN_KEYS = ("experiment", "commit", "seed", "task")
NUMBERS = ("seed", "psnr", "ssim", "value")


def read_runs(path: Path, prefix: str = "") -> pd.DataFrame:
    """A runs table a report wrote (``reports/<page>_runs.csv``: experiment rows or per-run effects, one column
    per changed param), so a page is regenerated from what is committed rather than from ``dvc exp show``; with
    ``prefix`` only the experiments whose name starts with it. ``config`` is named again against each commit's
    params.yaml (:func:`sam4ir.report.configs.config_labels`), so a subset is labelled as its own study."""
    df = read_csv(path, dtype=str, keep_default_na=False)
    kind = [c for c in (("method", "psnr"), ("effect", "value")) if set(c) <= set(df.columns)]
    missing = [c for c in RUN_KEYS if c not in df.columns]
    if missing or not kind:
        raise Sam4irError(f"{path}: not a runs table (needs {', '.join(RUN_KEYS)} and method+psnr or effect+value; "
                          f"missing {', '.join(missing) or 'both pairs'})")
    df = df[df.experiment.str.startswith(prefix)].reset_index(drop=True)
    if df.empty:
        raise Sam4irError(f"{path}: no experiment" + (f" whose name starts with {prefix!r}" if prefix else ""))
    for column in (c for c in NUMBERS if c in df.columns):
        values = pd.to_numeric(df[column].mask(df[column] == ""), errors="coerce")
        if values.isna().any() and column in ("seed", "value"):
            raise Sam4irError(f"{path}: column {column!r} has a value that is not a number")
        df[column] = values
    df["seed"] = df.seed.astype(int)
    names = [c for c in df.columns if "." in c]
    first = df.drop_duplicates("experiment")
    defaults = {commit: commit_params(commit) for commit in first.commit.unique()}
    params = [dict(zip(names, values)) for values in first[names].itertuples(index=False)]
    labels, keys = config_labels(params, [{k: defaults[c].get(k) for k in names} for c in first.commit])
    df["config"] = df.experiment.map(dict(zip(first.experiment, labels)))
    return df.drop(columns=[c for c in names if c not in keys])


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

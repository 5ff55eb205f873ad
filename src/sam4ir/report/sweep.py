"""A sweep ranked: per task, each experiment's gains over its own control and no-prior runs, then per configuration
(the same params but for the seeds, :data:`sam4ir.report.configs.SEED_PARAMS`) their mean ± std, and the best
configuration by :data:`RANK_BY`."""

from __future__ import annotations

import pandas as pd

from sam4ir.report.mechanism import effects_per_run
from sam4ir.report.verdict import HEADLINE

# effect (sam4ir.report.mechanism.EFFECTS) -> column: the student's gains, then the teacher's from its priors
DELTAS = {"total": "d_control", "attributable": "d_no_prior", "teacher_prior": "d_teacher_prior"}
RANK_BY = "attributable"  # the part of the distilled student's gain that the priors' information brings


def run_deltas(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per task x experiment: ``config``, ``seed`` and one column per :data:`DELTAS` effect the runs have
    (dB), from the long table of :func:`sam4ir.report.ablation.experiment_rows`."""
    effects = effects_per_run(rows)
    effects = effects[effects.effect.isin(DELTAS)]
    wide = effects.pivot_table(index=["task", "config", "experiment", "seed"], columns="effect", values="value")
    return wide[[e for e in DELTAS if e in wide]].rename(columns=DELTAS).reset_index()


def rank_configs(deltas: pd.DataFrame) -> pd.DataFrame:
    """One row per task x configuration: ``runs``, ``seeds``, each delta's mean and std (ddof 1; NaN for one
    run), and ``best`` = True on each task's configuration with the highest mean :data:`RANK_BY` delta."""
    columns = [c for c in DELTAS.values() if c in deltas]
    groups = deltas.groupby(["task", "config"], sort=True)
    stats = {f"{c}{suffix}": (c, stat) for c in columns for suffix, stat in (("", "mean"), ("_std", "std"))}
    table = groups.agg(runs=("experiment", "size"), seeds=("seed", lambda s: " ".join(str(v) for v in sorted(s))),
                       **stats)
    table = table.reset_index()
    rank = DELTAS[RANK_BY]
    table["best"] = False
    if rank in table:
        best = table.dropna(subset=[rank]).groupby("task")[rank].idxmax()
        table.loc[best.to_numpy(), "best"] = True
    return table


def ranking_note() -> str:
    """What ``best`` means, for the printed table."""
    return f"best: the highest mean {DELTAS[RANK_BY]} ({HEADLINE[RANK_BY]}), per task"

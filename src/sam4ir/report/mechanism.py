"""The mechanism report: is the gain attributable to the priors' information?

From the long table of :func:`sam4ir.report.ablation.experiment_rows` (one row per experiment x task x method),
per experiment (one seed, one prior source) and task:
- ``longer`` = control − baseline: what the student's extra iterations alone give (near 0 on a converged baseline,
  so that small transfers are not hidden by "trained longer");
- ``teacher`` = IR2 − baseline: does the semantically informed teacher beat the student it starts from?
- ``teacher_prior`` = IR2 − IR2 of ``no_prior``: how much of the teacher's gain its prior's information brings;
- ``total`` = IR1(spd_sgr) − control: the method's gain over the same extra iterations without a cascade;
- ``attributable`` = IR1(spd_sgr) − IR1(no_prior): the part of it that the prior's information is responsible for
  (``no_prior`` is the same run with every pixel unlabelled, so the pair shares seed, data and iterations).
Then per configuration (every param that differs except the seeds, e.g. the prior source) and task: mean, std and
signs over seeds, and the verdict of :func:`sam4ir.report.verdict.verdict`.
"""

from __future__ import annotations

import pandas as pd

from sam4ir.report.verdict import verdict

# effect -> (method, reference): the PSNR difference of two rows of the same experiment and task
EFFECTS = {"longer": ("control", "baseline"), "teacher": ("ir2", "baseline"), "teacher_prior": ("ir2", "ir2_no_prior"),
           "total": ("spd_sgr", "control"), "attributable": ("spd_sgr", "no_prior")}


def effects_per_run(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment x task x effect: ``config``, ``commit`` (where the rows have it), ``seed``, ``value``
    (dB), then the rows' param columns. Experiments missing a method (older code without the no-prior control) give
    no row for the effects that need it."""
    psnr = rows.pivot_table(index=["experiment", "config", "seed", "task"], columns="method", values="psnr",
                            observed=True)
    parts = []
    for effect, (method, reference) in EFFECTS.items():
        if method in psnr and reference in psnr:
            diff = (psnr[method] - psnr[reference]).dropna()
            parts.append(diff.rename("value").reset_index().assign(effect=effect))
    meta = [c for c in rows.columns if c == "commit" or "." in c]
    front = ["experiment", "config", *(["commit"] if "commit" in meta else []), "seed", "task", "effect", "value"]
    if not parts:
        return pd.DataFrame(columns=front + [c for c in meta if c != "commit"])
    effects = pd.concat(parts, ignore_index=True).merge(rows.drop_duplicates("experiment")[["experiment", *meta]],
                                                        on="experiment", how="left")
    return effects[front + [c for c in meta if c != "commit"]]


def summarise_effects(effects: pd.DataFrame) -> pd.DataFrame:
    """Per task x effect x configuration (in the order of a categorical ``config``): seeds, mean, std, min, max
    and the verdict."""
    groups = effects.groupby(["config", "task", "effect"], sort=True, observed=True)["value"]
    table = groups.agg(seeds="size", mean="mean", std="std", min="min", max="max")
    table["verdict"] = groups.apply(verdict)
    order = {name: i for i, name in enumerate(EFFECTS)}
    table = table.reset_index()
    return (table.assign(_effect=table.effect.map(order)).sort_values(["task", "_effect", "config"], kind="stable")
            .drop(columns="_effect").reset_index(drop=True))

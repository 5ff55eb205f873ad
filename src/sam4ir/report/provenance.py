"""Where a report's numbers came from: the code version (commit) and the experiments and seeds, named the same way
on every page."""

from __future__ import annotations

import subprocess

import pandas as pd

CODE = ["src", "params.yaml", "dvc.yaml"]  # what decides the numbers, beside the data DVC tracks


def provenance(rows: pd.DataFrame) -> str:
    """``commit abc1234, seeds [0, 1, 2]``: the code version(s) and seeds behind a long table of experiment rows
    (columns ``commit`` and ``seed``), short enough for a figure's title."""
    seeds = sorted({int(s) for s in rows.seed.dropna()})
    return f"commit {', '.join(sorted(rows.commit.unique()))}, seeds {seeds}"


def experiments_line(rows: pd.DataFrame, source: str) -> str:
    """The line under a page's title: the command or file the rows came from, commit(s), seeds, and every
    experiment counted, by name."""
    names = sorted(rows.experiment.unique())
    return f"Source: `{source}`; {provenance(rows)}; {len(names)} experiment(s): {', '.join(names)}."


def workspace_commit() -> str:
    """``commit abc1234`` of the working tree the report stage runs in, ``+ uncommitted changes`` when the code or
    params differ from it (a `dvc exp run` applies its params that way; dvc.lock and results change in every run,
    so they do not count); ``commit unknown`` outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    except OSError:  # no git on this machine
        head = None
    if head is None or head.returncode != 0:
        return "commit unknown (not a git checkout)"
    dirty = subprocess.run(["git", "status", "--porcelain", "--", *CODE], capture_output=True, text=True)
    return f"commit {head.stdout.strip()}" + (" + uncommitted changes" if dirty.stdout.strip() else "")

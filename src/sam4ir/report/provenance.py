"""Where a report's numbers came from: the code version (commit) and the experiments and seeds, named the same way
on every page — never a file outside the repository, so a page regenerated from a clone says the same."""

from __future__ import annotations

import subprocess
from typing import Sequence

import pandas as pd

CODE = ["src", "params.yaml", "dvc.yaml"]  # what decides the numbers, beside the data DVC tracks
HASH_LENGTH = 8  # a fixed length: git's own abbreviation grows with the repository, and the page must not


def provenance(rows: pd.DataFrame) -> str:
    """``commit abc1234, seeds [0, 1, 2]``: the code version(s) and seeds behind a long table of experiment rows
    (columns ``commit`` and ``seed``), short enough for a figure's title."""
    seeds = sorted({int(s) for s in rows.seed.dropna()})
    return f"commit {', '.join(sorted(rows.commit.unique()))}, seeds {seeds}"


def experiments_line(rows: pd.DataFrame, runs_file: str) -> str:
    """The source line of a page: every experiment counted, by name, their commit(s) and seeds, and the runs
    table beside the page that holds their rows (``runs_file``, relative to the page)."""
    names = sorted(rows.experiment.unique())
    return (f"Source: {len(names)} finished experiment(s) of {provenance(rows)}: {', '.join(names)}; their rows: "
            f"[`{runs_file}`]({runs_file}).")


def regenerate_line(command: str, runs_file: str, *options: str) -> str:
    """How to write the page again from what is committed: ``sam4ir <command> --runs reports/<runs_file>``."""
    return f"Regenerate: `sam4ir {' '.join([command, '--runs', f'reports/{runs_file}', *options])}`."


def _git(*args: str) -> str | None:
    """``git args`` in the working directory; None outside a checkout or without git."""
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True)
    except OSError:  # no git on this machine
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_commit(code: Sequence[str] = CODE) -> str:
    """``commit abc12345``: the last commit that changed ``code`` (paths from the checkout's root; default: the code
    and params that decide the numbers, :data:`CODE`), so any later clone whose code is the same names the same
    commit; ``+ uncommitted changes`` when those paths differ from HEAD (a `dvc exp run` applies its params that
    way); ``commit unknown`` outside a git checkout."""
    paths = [f":/{p}" for p in code]  # from the checkout's root, wherever the process runs in it
    last = _git("log", "-1", "--format=%H", "--", *paths)
    if not last:
        return "commit unknown (not a git checkout)"
    dirty = _git("status", "--porcelain", "--", *paths)
    return f"commit {last[:HASH_LENGTH]}" + (" + uncommitted changes" if dirty else "")

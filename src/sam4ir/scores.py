"""Per-image scores -> the numbers of the field's tables.

Each test set's score is the mean over its images; a task that tests on several sets (deraining on five)
reports the unweighted mean over the sets, as the "Average" columns of MPRNet, HINet and Restormer are computed —
so Test2800's 2,800 images do not outweigh Rain100L's 100.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd


def _rounded(row: pd.Series, columns: Sequence[str]) -> dict[str, float]:
    return {c: round(float(row[c]), 5) for c in columns}


def summarise_scores(per_image: pd.DataFrame, columns: Sequence[str]) -> dict[str, dict]:
    """``method -> {column: mean over sets}``, plus ``sets: {set: {column: mean}}`` where there are several.

    ``per_image`` has one row per method x image, with ``method`` and ``set`` columns.
    """
    per_set = per_image.groupby(["method", "set"], sort=False)[list(columns)].mean()
    summary = {}
    for method, sets in per_set.groupby(level="method", sort=False):
        sets = sets.droplevel("method")
        summary[method] = _rounded(sets.mean(), columns)
        if len(sets) > 1:
            summary[method]["sets"] = {name: _rounded(row, columns) for name, row in sets.iterrows()}
    return summary

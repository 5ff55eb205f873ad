"""Progress bars that stay readable in logs: live in a terminal, a line every half minute elsewhere.

A redraw is one more line in a `dvc exp run` / `dvc queue logs` / CI log (tqdm redraws ten times a second), so
a 200k-iteration stage would write hundreds of thousands of lines; when stderr is not a terminal the bar is
redrawn at most every ``LOG_INTERVAL`` seconds (and once at the end) instead.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

LOG_INTERVAL = 30.0


def progress_bar(iterable=None, **kwargs) -> tqdm:
    """``tqdm(iterable, **kwargs)`` with ``mininterval`` chosen for where the bar is shown."""
    interactive = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    kwargs.setdefault("mininterval", 0.1 if interactive else LOG_INTERVAL)
    if not interactive:
        kwargs.setdefault("maxinterval", max(LOG_INTERVAL, kwargs["mininterval"]))
    return tqdm(iterable, **kwargs)

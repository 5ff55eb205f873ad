"""Progress bars in logs: a few lines per stage, not one per redraw."""

from __future__ import annotations

import io
import sys

from sam4ir.progress import LOG_INTERVAL, progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_redraw_rarely_when_not_a_terminal(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    bar = progress_bar(range(20000), desc="train")
    assert bar.mininterval == LOG_INTERVAL
    for _ in bar:
        pass
    redraws = [part for part in log.getvalue().replace("\r", "\n").split("\n") if part.strip()]
    assert 1 <= len(redraws) <= 3 and "20000/20000" in redraws[-1]


def test_bars_stay_live_in_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert progress_bar(range(3)).mininterval < 1
    assert progress_bar(range(3), mininterval=5).mininterval == 5  # an explicit choice wins

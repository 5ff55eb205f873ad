"""The no-op ``dvc repro`` of this repository, as a new user meets it: in a fresh clone, everything up to date.

    python benchmarks/bench_noop.py [--repo .] [--rev HEAD] [--runs 5] [--series 3] [--keep]

Clones the repository ``--repo`` (default: this checkout) at ``--rev`` into a temporary folder, points its DVC cache at the repository's (``dvc cache
dir --local``: nothing is copied, nothing trained), ``dvc checkout``, runs one ``dvc repro`` (it must find every
stage up to date: the committed ``dvc.lock`` matches the cache; it also fills DVC's state of file hashes, as a user's
first command does), then ``--series`` series of ``--runs`` timed ``dvc repro`` commands. Prints each series' runs
and median wall time, the median of all runs, and the interpreter with its speed on a fixed pure-Python loop: DVC is
pure Python, so the figure scales with the interpreter's build (a Python without PGO/LTO, built with
``--enable-shared``, as pyenv builds by default, runs that loop at about half the speed of a distribution's).
Time it on a quiet machine: a training beside it doubles the figure.
Prints figures only.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def dvc(*args: str, cwd: Path) -> str:
    """``dvc ARGS`` in ``cwd`` (this interpreter's DVC); its output, or a one-line failure."""
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bench_noop: dvc {' '.join(args)} failed in {cwd}: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def timed_noop(clone: Path) -> float:
    start = time.perf_counter()
    out = dvc("repro", cwd=clone)
    took = time.perf_counter() - start
    if "Running stage" in out:
        sys.exit(f"bench_noop: not a no-op, a stage ran:\n{out}")
    return took


def loop_seconds() -> float:
    """This interpreter's time for a fixed pure-Python loop (best of 3): what makes figures of two machines comparable."""
    best = float("inf")
    for _ in range(3):
        start, total = time.perf_counter(), 0
        for i in range(3_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--series", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sam4ir-noop-"))
    clone = tmp / "clone"
    try:
        subprocess.run(["git", "clone", "-q", str(args.repo), str(clone)], check=True)
        subprocess.run(["git", "checkout", "-q", args.rev], cwd=clone, check=True)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True,
                                text=True, check=True).stdout.strip()
        dvc("cache", "dir", "--local", str(args.repo.resolve() / ".dvc" / "cache"), cwd=clone)
        dvc("checkout", "--quiet", cwd=clone)
        timed_noop(clone)  # fills DVC's state; must already be a no-op
        every = []
        for series in range(args.series):
            runs = [timed_noop(clone) for _ in range(args.runs)]
            every += runs
            print(f"series {series + 1}: " + " ".join(f"{r:.2f}" for r in runs)
                  + f" s; median {statistics.median(runs):.2f} s")
        print(f"commit {commit}: no-op dvc repro median {statistics.median(every):.2f} s over {len(every)} runs "
              f"(min {min(every):.2f}, max {max(every):.2f})")
        print(f"python {platform.python_version()} ({sys.executable}): 3M-addition loop {loop_seconds():.2f} s")
    finally:
        if args.keep:
            print(f"clone kept: {clone}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Training-loader throughput per worker count, and peak memory per process, on paper-shaped synthetic data.

    python benchmarks/bench_data.py [--sets rain13k,gopro_sub,sidd_sub] [--pairs 64] [--workers 0,1,2]
                                    [--batch 8] [--crop 256] [--batches 20] [--rss-pairs 13712] [--dir DIR]

For each set it writes ``--pairs`` pairs and their label maps into a temporary folder (``benchmarks/synthetic.py``:
Rain13K-shaped 481x321, GoPro- and SIDD-sub-image-shaped 512x512, made from photos so the PNGs decode like real
ones), then runs, per worker count and in a fresh subprocess, the loader training uses: the real
``PairedDataset`` (random ``--crop`` crop and flips, with masks, as distillation reads them) under
``sam4ir.training.fit``'s ``SampleStream`` and sampler in a DataLoader, ``--batch`` samples per step. It prints samples/s
after the first batch (worker start-up is printed apart), and the peak RSS of the main process and of the largest
worker. The dataset is built with ``cache=False`` here: that is what ``cache_images: auto`` picks at paper size,
while these few synthetic pairs would be cached. Files are in the page cache (just written): the figures are the
CPU cost of decoding and cropping, not of reading a disk.

``--rss-pairs N`` also writes a Rain13K-sized folder (N low-entropy 481x321 pairs with label maps; 13,712 is
Rain13K's count) and reports, with ``cache_images: auto``, whether it was cached, the estimated decoded size, the
time to build the dataset, and the peak RSS per process while loading. Prints figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthetic import SHAPES, free_mib, peak_rss_mib, set_threads, training_loader, write_pairs

from sam4ir.data.paired import PairedDataset, decoded_bytes


def run_case(root: Path, workers: int, args: argparse.Namespace) -> dict:
    """Samples/s and peak RSS of the training loader over ``root`` with ``workers`` workers."""
    set_threads(args.threads)
    rss_start = peak_rss_mib(field="VmRSS")
    start = time.perf_counter()
    ds = PairedDataset(root / "data", "train", crop=args.crop, augment=True, masks_root=root / "masks",
                       cache=args.cache if args.cache == "auto" else args.cache == "true")
    build_s = time.perf_counter() - start
    rss_dataset = peak_rss_mib(field="VmRSS")
    loader = training_loader(ds, args.batch, workers, args.batches + 1)
    start = time.perf_counter()
    it = iter(loader)
    next(it)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    n = sum(len(next(it)["name"]) for _ in range(args.batches))
    seconds = time.perf_counter() - start
    worker_peak = max([peak_rss_mib(w.pid) for w in getattr(it, "_workers", [])], default=0.0)
    return {"workers": workers, "pairs": len(ds), "cached": ds.cached, "build_s": build_s,
            "decoded_gib": decoded_bytes(ds.pairs, True) / 2**30, "first_batch_s": first_s,
            "samples_per_s": n / seconds, "rss_start_mib": rss_start, "rss_dataset_mib": rss_dataset,
            "peak_rss_main_mib": peak_rss_mib(), "peak_rss_worker_mib": worker_peak}


def case(root: Path, workers: int, args: argparse.Namespace) -> dict | None:
    """:func:`run_case` in a fresh subprocess, so that its peak RSS is its own."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--case", str(root), "--case-workers", str(workers),
           "--batch", str(args.batch), "--crop", str(args.crop), "--batches", str(args.batches),
           "--cache", args.cache] + (["--threads", str(args.threads)] if args.threads else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  workers {workers}: failed: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def generate(root: Path, name: str, n: int, kind: str | None = None) -> float:
    """Write ``n`` pairs of set ``name`` (its degradation, or ``kind``) under ``root``; MiB per pair (3 files)."""
    shape, degradation = SHAPES[name]
    written = write_pairs(root / "data", shape, n, kind or degradation, masks_root=root / "masks")
    return written / n / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SHAPES), help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--pairs", type=int, default=64, help="pairs written per set for the throughput figures")
    parser.add_argument("--workers", default=",".join(map(str, range((os.cpu_count() or 1) + 1))),
                        help="comma-separated worker counts (default 0..number of CPUs)")
    parser.add_argument("--batch", type=int, default=8, help="samples per step (bench_train.py --paper: 8)")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batches", type=int, default=20, help="timed batches after the first")
    parser.add_argument("--rss-pairs", type=int, default=0, help="also a Rain13K-sized folder of N pairs (13712)")
    parser.add_argument("--threads", type=int, help="torch/OpenCV threads per process (default: theirs)")
    parser.add_argument("--cache", default="false", choices=("false", "auto", "true"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", help="parent of the temporary folder (default: the system's temp)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case on this folder, print JSON
    parser.add_argument("--case-workers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(Path(args.case), args.case_workers, args)))
        return
    workers = [int(w) for w in args.workers.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench_data_", dir=args.dir))
    try:
        print(f"{'set':10} {'HxW':>8} {'MiB/pair':>8} {'workers':>7} {'first s':>8} {'samples/s':>9} "
              f"{'per worker':>10} {'RSS main':>8} {'RSS wkr':>8}")
        for name in args.sets.split(","):
            mib = generate(tmp / name, name, args.pairs)
            (h, w), _ = SHAPES[name]
            for n in workers:
                r = case(tmp / name, n, args)
                if r:
                    per = r["samples_per_s"] / max(n, 1)
                    print(f"{name:10} {f'{h}x{w}':>8} {mib:8.2f} {n:>7} {r['first_batch_s']:8.2f} "
                          f"{r['samples_per_s']:9.1f} {per:10.1f} {r['peak_rss_main_mib']:8.0f} "
                          f"{r['peak_rss_worker_mib'] if n else 0:8.0f}")
            shutil.rmtree(tmp / name)
        if args.rss_pairs:
            need = args.rss_pairs * 3 * 0.1  # MiB: low-entropy 481x321 PNGs are well under 0.1 MiB each
            if free_mib(tmp) < 2 * need:
                sys.exit(f"bench_data: {tmp}: {free_mib(tmp):.0f} MiB free, the Rain13K-sized folder needs ~{need:.0f}")
            start = time.perf_counter()
            mib = generate(tmp / "rain13k_full", "rain13k", args.rss_pairs, kind="flat")
            print(f"\nRain13K-sized folder: {args.rss_pairs} pairs + label maps, {mib * args.rss_pairs:.0f} MiB, "
                  f"written in {time.perf_counter() - start:.0f} s; cache_images: auto")
            args.cache = "auto"
            for n in sorted({0, max(workers)}):
                r = case(tmp / "rain13k_full", n, args)
                if r:
                    print(f"  workers {n}: cached {r['cached']}, decoded {r['decoded_gib']:.1f} GiB (estimate), "
                          f"dataset built in {r['build_s']:.1f} s, RSS {r['rss_start_mib']:.0f} -> "
                          f"{r['rss_dataset_mib']:.0f} MiB after building it; peak RSS main "
                          f"{r['peak_rss_main_mib']:.0f} MiB, largest worker {r['peak_rss_worker_mib']:.0f} MiB; "
                          f"{r['samples_per_s']:.1f} samples/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

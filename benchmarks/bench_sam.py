"""Throughput and peak memory of the mask-extraction backends on this machine.

    python benchmarks/bench_sam.py [--images N] [--size 512]

Each case runs in a fresh subprocess so that its peak memory is its own (CPU: max RSS of the
process; CUDA: ``torch.cuda.max_memory_allocated``). SAM models have random weights: the real
architecture and code path, so speed and memory are representative; the masks are not. Prints
figures only.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import cv2
import numpy as np
import skimage.data
import torch

CPU_CASES = [  # (name, backend, model type, amp, points per side, batch size); CPU: few points to finish in ~a minute
    ("classical", "classical", None, "none", None, 1),
    ("sam-vit_b-cpu", "sam", "vit_b", "none", 8, 1),
]
CUDA_CASES = [
    ("sam-vit_b-bf16", "sam", "vit_b", "bf16", 32, 4),
    ("sam-vit_h-bf16", "sam", "vit_h", "bf16", 32, 4),
    ("sam-vit_h-fp32", "sam", "vit_h", "none", 32, 4),
]


def photos(n: int, size: int) -> list[np.ndarray]:
    """``n`` different real photos, ``size x size x 3`` uint8."""
    names = ["astronaut", "coffee", "chelsea", "rocket"]
    return [np.roll(cv2.resize(getattr(skimage.data, names[i % 4])(), (size, size), interpolation=cv2.INTER_AREA),
                    17 * i, axis=1) for i in range(n)]


def run_case(case: tuple, n_images: int, size: int) -> dict:
    from segment_anything import sam_model_registry

    from sam4ir.sam import ClassicalSegmenter, SamSegmenter

    name, backend, model_type, amp, points, batch = case
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    images = photos(n_images, size)
    if backend == "classical":
        segment = ClassicalSegmenter()
    else:
        torch.manual_seed(0)
        sam = sam_model_registry[model_type]().to(device).eval().requires_grad_(False)
        segment = SamSegmenter(sam, {"points_per_side": points}, amp=amp)
        if device.type == "cuda":
            segment(images[:batch])  # warm-up: kernels, cuDNN autotuning
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    segments = []
    for i in range(0, n_images, batch):
        segments += [int(lab.max()) for lab in segment(images[i:i + batch])]
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"case": name, "device": str(device), "threads": torch.get_num_threads(), "images": n_images,
            "size": size, "points_per_side": points, "batch": batch, "images_per_s": n_images / seconds,
            "s_per_image": seconds / n_images, "peak_mib": peak / 2**20, "mean_segments": float(np.mean(segments))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="default: 8 classical/CUDA, 2 SAM on CPU")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = parser.parse_args()
    cases = CPU_CASES + (CUDA_CASES if torch.cuda.is_available() else [])
    if args.case:
        case = next(c for c in cases if c[0] == args.case)
        n = args.images or (2 if case[1] == "sam" and not torch.cuda.is_available() else 8)
        print(json.dumps(run_case(case, n, args.size)))
        return
    header = f"{'case':16} {'device':6} {'thr':>3} {'imgs':>4} {'size':>5} {'pts':>4} {'batch':>5} " \
             f"{'img/s':>8} {'s/img':>8} {'peak MiB':>9} {'segments':>8}"
    print(header)
    for case in cases:
        cmd = [sys.executable, __file__, "--case", case[0], "--size", str(args.size)]
        if args.images:
            cmd += ["--images", str(args.images)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{case[0]:16} failed: {proc.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{r['case']:16} {r['device']:6} {r['threads']:>3} {r['images']:>4} {r['size']:>5} "
              f"{r['points_per_side'] or '-':>4} {r['batch']:>5} {r['images_per_s']:>8.3f} {r['s_per_image']:>8.3f} "
              f"{r['peak_mib']:>9.0f} {r['mean_segments']:>8.1f}")


if __name__ == "__main__":
    main()

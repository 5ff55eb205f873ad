"""Evaluation throughput: restoring an image with IR1, and computing its PSNR/SSIM (BasicSR conventions).

    python benchmarks/bench_eval.py [--device auto] [--sizes 256 512] [--images 8] [--checkpoint model.pt]

IR1 is the demo network of params.yaml (model.name/model.args) with random weights, or a trained ``model.pt``
(same cost either way). One restoration = uint8 photo in, uint8 image out (``inference.restore_image``, as the
evaluate stage and the restore CLI run it), whole image or tiled with ``--tile``. Reported: images/s over the
timed images and the median ms per image, after one warm-up image; then the median ms per image of
``calculate_psnr`` / ``calculate_ssim`` on RGB and on the Y channel. Prints figures only.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import cv2
import numpy as np
import skimage.data
import torch

from sam4ir import models
from sam4ir.params import config
from sam4ir.inference import restore_image
from sam4ir.metrics import calculate_psnr, calculate_ssim
from sam4ir.training.fit import resolve_device

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photos(n: int, size: int) -> list[np.ndarray]:
    """``n`` different real photos, ``size x size x 3`` uint8."""
    return [np.roll(cv2.resize(getattr(skimage.data, PHOTOS[i % len(PHOTOS)])(), (size, size),
                               interpolation=cv2.INTER_AREA), 17 * i, axis=1) for i in range(n)]


def timed(fn: Callable[..., Any], *args: Any, sync: bool = False, **kwargs: Any) -> tuple[float, Any]:
    """(milliseconds, result) of one ``fn(*args, **kwargs)`` call; ``sync`` waits for CUDA kernels."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    if sync:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--checkpoint", help="a trained model.pt instead of the random-weight demo network")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--images", type=int, default=8, help="timed images per size")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--tile", type=int, help="restore in tiles of this side (overlap 32)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.checkpoint:
        net = models.load_model(args.checkpoint, device)
    else:
        params = config.load_params(args.params)
        torch.manual_seed(0)
        net = models.build(params.model.name, **params.model.kwargs).to(device).eval()
    sync = device.type == "cuda"
    print(f"{type(net).__name__}, {models.count_params(net) / 1e6:.3f} M params, {device}, "
          f"{torch.get_num_threads()} threads, tile {args.tile or 'none'}")
    print(f"{'size':>5} {'imgs':>4} {'img/s':>8} {'ms/img':>8} {'psnr ms':>8} {'ssim ms':>8} {'psnr-y ms':>9} "
          f"{'ssim-y ms':>9}")
    for size in args.sizes:
        warmup, *images = photos(args.images + 1, size)
        restore_image(net, warmup, device, args.tile)  # allocator, kernel selection
        times, restored = zip(*(timed(restore_image, net, img, device, args.tile, sync=sync) for img in images))
        metric_ms = {name: statistics.median(timed(fn, out, img, 0, test_y_channel=y, color_order="rgb")[0]
                                             for out, img in zip(restored, images))
                     for name, fn, y in (("psnr", calculate_psnr, False), ("ssim", calculate_ssim, False),
                                         ("psnr-y", calculate_psnr, True), ("ssim-y", calculate_ssim, True))}
        print(f"{size:>5} {args.images:>4} {1e3 * len(times) / sum(times):>8.2f} {statistics.median(times):>8.1f} "
              f"{metric_ms['psnr']:>8.2f} {metric_ms['ssim']:>8.2f} {metric_ms['psnr-y']:>9.2f} "
              f"{metric_ms['ssim-y']:>9.2f}")


if __name__ == "__main__":
    main()

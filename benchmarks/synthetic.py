"""Synthetic paired sets shaped like the paper's training data, and the training loader over them, for benchmarks.

Images are made from real photos (scikit-image's), so their PNGs compress and decode like photographs rather than
like flat colour: ``noise`` (SIDD-like: Gaussian noise on the input), ``blur`` (GoPro-like: a motion blur),
``rain`` (Rain13K-like: bright streaks); ``flat`` writes low-entropy images fast (a Rain13K-sized folder for the
memory figures, where decode speed does not matter). Label maps are blocky 16-bit maps with a few dozen segments.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch
from torch.utils.data import DataLoader, Dataset

from sam4ir.training import fit as train
from sam4ir.io import write_image
from sam4ir.training.fit import DistInfo, TrainConfig

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
KINDS = ("noise", "blur", "rain", "flat")
# (height, width) and degradation of each paper-shaped set: Rain13K images are ~481x321 (landscape); GoPro and SIDD
# training images are prepared as 512x512 sub-images (NAFNet's scripts/data_preparation, BasicSR's windows).
SHAPES = {"rain13k": ((321, 481), "rain"), "gopro_sub": ((512, 512), "blur"), "sidd_sub": ((512, 512), "noise")}
MASK_CELL = 32  # side of the label map's square cells


def _photo(i: int, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random window of one of the photos, upscaled 2x first so windows of 512 fit, randomly flipped."""
    img = getattr(skimage.data, PHOTOS[i % len(PHOTOS)])()
    h, w = shape
    scale = max(2.0, h / img.shape[0], w / img.shape[1])
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    top, left = rng.integers(0, img.shape[0] - h + 1), rng.integers(0, img.shape[1] - w + 1)
    img = img[top:top + h, left:left + w]
    return np.ascontiguousarray(img[:, ::-1] if rng.integers(2) else img)


def degrade(target: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """The input of a pair: ``target`` with the degradation ``kind`` (see the module's docstring)."""
    if kind == "noise":
        noisy = target.astype(np.float32) + rng.normal(0, 15, target.shape)
    elif kind == "blur":
        kernel = np.zeros((15, 15), np.float32)
        kernel[7] = 1 / 15
        noisy = cv2.filter2D(target, -1, kernel).astype(np.float32)
    elif kind == "rain":
        streaks = np.zeros(target.shape[:2], np.float32)
        ys, xs = rng.integers(0, target.shape[0], 400), rng.integers(0, target.shape[1], 400)
        for y, x in zip(ys, xs):
            cv2.line(streaks, (int(x), int(y)), (int(x) + 6, int(y) + 25), 1.0, 1)
        noisy = target.astype(np.float32) + 120 * cv2.GaussianBlur(streaks, (3, 3), 0)[..., None]
    else:
        raise ValueError(f"unknown degradation {kind!r} (one of {KINDS})")
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _flat(i: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A low-entropy pair (a gradient and a shifted copy): written and decoded fast."""
    h, w = shape
    ramp = ((np.arange(w)[None, :] + np.arange(h)[:, None] + 7 * i) % 256).astype(np.uint8)
    target = np.stack([ramp, ramp[::-1], np.full_like(ramp, i % 256)], axis=2)
    return np.roll(target, 3, axis=1), target


def label_map(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A uint16 label map of ``MASK_CELL``-pixel squares with ids 0..47 (0 = unlabelled)."""
    h, w = shape
    cells = rng.integers(0, 48, (-(-h // MASK_CELL), -(-w // MASK_CELL))).astype(np.uint16)
    return np.ascontiguousarray(cells.repeat(MASK_CELL, 0).repeat(MASK_CELL, 1)[:h, :w])


def write_pairs(root: Path, shape: tuple[int, int], n: int, kind: str, masks_root: Path | None = None,
                seed: int = 0) -> int:
    """``n`` pairs ``<root>/train/{input,target}/<i>.png`` (and label maps ``<masks_root>/train/<i>.png``);
    returns the bytes written."""
    rng = np.random.default_rng(seed)
    fast = [cv2.IMWRITE_PNG_COMPRESSION, 1]
    written = 0
    for i in range(n):
        name = f"{i:06d}.png"
        if kind == "flat":
            degraded, target = _flat(i, shape)
        else:
            target = _photo(i, shape, rng)
            degraded = degrade(target, kind, rng)
        files = [(root / "train" / "input" / name, degraded), (root / "train" / "target" / name, target)]
        if masks_root is not None:
            files.append((masks_root / "train" / name, label_map(shape, rng)))
        for path, img in files:
            if kind == "flat":  # plain cv2 at low compression: a 13,712-pair folder in a few minutes
                path.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(path), img[..., ::-1] if img.ndim == 3 else img, fast)
            else:
                write_image(path, img)
            written += path.stat().st_size
    return written


def training_loader(dataset: Dataset, batch: int, workers: int, batches: int, *, seed: int = 0,
                    pin_memory: bool = False) -> DataLoader:
    """The DataLoader :func:`sam4ir.training.fit.fit` builds for one process, for ``batches`` steps of ``batch``."""
    cfg = TrainConfig(iters=batches, batch_size=batch, lr=1.0, seed=seed, num_workers=workers)
    return train.training_loader(dataset, cfg, DistInfo(), pin_memory=pin_memory)


def peak_rss_mib(pid: int | str = "self", field: str = "VmHWM") -> float:
    """Peak resident set (``VmHWM``; ``VmRSS``: now) of process ``pid``, e.g. a DataLoader worker, MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status: no {field} line")


def free_mib(folder: Path) -> float:
    """Free space of the file system holding ``folder``, MiB."""
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize / 2**20


def set_threads(n: int | None) -> None:
    """Intra-op threads for torch (and OpenCV, which the loader's decoding uses) when ``n`` is given."""
    if n:
        torch.set_num_threads(n)
        cv2.setNumThreads(n)

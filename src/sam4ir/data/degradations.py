"""Synthetic degradations for the offline demo, each deterministic given a ``np.random.Generator``.

Images are RGB uint8 ``H x W x 3``; outputs are uint8 too, as the degraded inputs of real benchmarks are.
"""

from __future__ import annotations

import cv2
import numpy as np


def add_rain(img: np.ndarray, rng: np.random.Generator, *, density: tuple[float, float] = (0.002, 0.006),
             length: tuple[int, int] = (8, 20), angle: tuple[float, float] = (-25.0, 25.0),
             width: tuple[int, int] = (1, 2), intensity: tuple[float, float] = (0.6, 0.9)) -> np.ndarray:
    """Rain streaks in the style of Rain100L/Rain13K synthesis: random drops smeared along one direction by a
    line kernel, then screened onto the image (brighter, never darker)."""
    h, w = img.shape[:2]
    drops = (rng.random((h, w)) < rng.uniform(*density)).astype(np.float32)
    drops *= rng.uniform(0.5, 1.0, size=(h, w)).astype(np.float32)
    size = int(rng.integers(length[0], length[1] + 1)) | 1
    kernel = np.zeros((size, size), np.float32)
    cv2.line(kernel, (size // 2, 0), (size // 2, size - 1), 1.0, int(rng.integers(width[0], width[1] + 1)))
    rot = cv2.getRotationMatrix2D((size / 2 - 0.5, size / 2 - 0.5), float(rng.uniform(*angle)), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (size, size))
    kernel /= max(kernel.sum(), 1e-6) / size * 0.5
    streaks = cv2.GaussianBlur(cv2.filter2D(drops, -1, kernel), (3, 3), 0.6)
    streaks = np.clip(streaks * rng.uniform(*intensity), 0, 1)[..., None]
    base = img.astype(np.float32) / 255
    out = 1 - (1 - base) * (1 - streaks)  # screen blend
    return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)


def motion_kernel(rng: np.random.Generator, size: int, steps: int = 64) -> np.ndarray:
    """A random camera-shake kernel: a smooth random-walk trajectory rasterised on a ``size x size`` grid, sum 1."""
    velocity = rng.normal(size=2)
    pos = np.zeros(2)
    points = []
    for _ in range(steps):
        velocity = 0.8 * velocity + 0.6 * rng.normal(size=2)
        pos = pos + velocity / np.linalg.norm(velocity).clip(1e-6) * 0.5
        points.append(pos.copy())
    pts = np.array(points)
    pts -= pts.mean(axis=0)
    pts *= (size / 2 - 1) / max(np.abs(pts).max(), 1e-6)
    kernel = np.zeros((size, size), np.float32)
    for y, x in pts + size // 2:
        kernel[int(round(y)), int(round(x))] += 1
    return kernel / kernel.sum()


def motion_blur(img: np.ndarray, rng: np.random.Generator, *, kernel_size: tuple[int, int] = (9, 21)) -> np.ndarray:
    """Convolve with a random motion kernel (odd size in ``kernel_size``), reflected borders."""
    size = int(rng.integers(kernel_size[0], kernel_size[1] + 1)) | 1
    out = cv2.filter2D(img.astype(np.float32), -1, motion_kernel(rng, size), borderType=cv2.BORDER_REFLECT)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def gaussian_noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Additive white Gaussian noise of std ``sigma`` on the 0-255 scale, rounded and clipped."""
    noisy = img.astype(np.float64) + rng.normal(0.0, sigma, size=img.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)

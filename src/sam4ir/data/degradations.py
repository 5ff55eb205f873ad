"""Synthetic degradations for the offline demo, each a deterministic function of the image and a
``np.random.Generator``.

Images are RGB uint8 ``H x W x 3``; outputs are uint8 too, as the degraded inputs of the real benchmarks are.
"""

from __future__ import annotations

import cv2
import numpy as np


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def streak_kernel(length: int, angle: float, width: int) -> np.ndarray:
    """An anti-aliased line of ``length`` pixels through the centre of an odd square kernel, tilted ``angle``
    degrees from vertical; values in [0, 1] (a single drop becomes a streak of its own brightness)."""
    size = length | 1
    canvas = np.zeros((size, size), np.uint8)
    c, r = (size - 1) / 2, (length - 1) / 2
    dx, dy = r * np.sin(np.deg2rad(angle)), r * np.cos(np.deg2rad(angle))
    shift = 4  # cv2.line takes sub-pixel end points as fixed point with this many fractional bits
    p0 = (round((c - dx) * 2**shift), round((c - dy) * 2**shift))
    p1 = (round((c + dx) * 2**shift), round((c + dy) * 2**shift))
    cv2.line(canvas, p0, p1, 255, width, cv2.LINE_AA, shift)
    return canvas.astype(np.float32) / 255


def add_rain(img: np.ndarray, rng: np.random.Generator, *, density: tuple[float, float] = (0.002, 0.006),
             length: tuple[int, int] = (10, 24), angle: tuple[float, float] = (-30.0, 30.0),
             width: tuple[int, int] = (1, 2), opacity: tuple[float, float] = (0.3, 0.6)) -> np.ndarray:
    """Rain streaks as in the Rain100L/Rain13K synthesis: sparse random drops smeared along one direction by a
    line kernel, softened by a small blur, then screen-blended (rain only brightens, like real streaks).

    Each range ``(low, high)`` is sampled once per image: drop density (fraction of pixels), streak length and
    width (pixels), angle (degrees from vertical) and streak opacity.
    """
    h, w = img.shape[:2]
    drops = (rng.random((h, w)) < rng.uniform(*density)) * rng.uniform(0.4, 1.0, size=(h, w))
    kernel = streak_kernel(int(rng.integers(length[0], length[1] + 1)), float(rng.uniform(*angle)),
                           int(rng.integers(width[0], width[1] + 1)))
    streaks = cv2.filter2D(drops.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT)
    streaks = cv2.GaussianBlur(streaks, (0, 0), 0.6)
    streaks = np.clip(streaks, 0, 1)[..., None] * rng.uniform(*opacity)
    base = img.astype(np.float32) / 255
    return _to_uint8(255 * (1 - (1 - base) * (1 - streaks)))


def motion_kernel(rng: np.random.Generator, size: int, steps: int = 48) -> np.ndarray:
    """A camera-shake kernel ``size x size`` (odd), sum 1: a smooth random walk (velocity with momentum),
    centred on its mean, scaled to span the kernel, and splatted bilinearly so the trail has no gaps."""
    velocity = rng.normal(size=2)
    points = np.empty((steps, 2))
    pos = np.zeros(2)
    for i in range(steps):
        velocity = 0.9 * velocity + 0.4 * rng.normal(size=2)
        pos = pos + velocity / max(float(np.linalg.norm(velocity)), 1e-6)
        points[i] = pos
    points -= points.mean(axis=0)
    points *= (size / 2 - 1) / max(float(np.abs(points).max()), 1e-6)
    points += (size - 1) / 2
    kernel = np.zeros((size, size), np.float64)
    base = np.floor(points).astype(int)
    frac = points - base
    for (y, x), (fy, fx) in zip(base, frac):
        kernel[y, x] += (1 - fy) * (1 - fx)
        kernel[y + 1, x] += fy * (1 - fx)
        kernel[y, x + 1] += (1 - fy) * fx
        kernel[y + 1, x + 1] += fy * fx
    return (kernel / kernel.sum()).astype(np.float32)


def motion_blur(img: np.ndarray, rng: np.random.Generator, *, kernel_size: tuple[int, int] = (9, 21)) -> np.ndarray:
    """Convolve with a random :func:`motion_kernel` whose odd size is drawn from ``kernel_size``; reflected borders."""
    size = int(rng.integers(kernel_size[0], kernel_size[1] + 1)) | 1
    out = cv2.filter2D(img.astype(np.float32), -1, motion_kernel(rng, size), borderType=cv2.BORDER_REFLECT)
    return _to_uint8(out)


def gaussian_noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Additive white Gaussian noise of std ``sigma`` on the 0-255 scale, rounded and clipped (the usual
    synthetic-denoising protocol)."""
    return _to_uint8(img.astype(np.float64) + rng.normal(0.0, sigma, size=img.shape))

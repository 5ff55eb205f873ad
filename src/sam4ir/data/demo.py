"""The offline demo dataset: crops of the colour photographs scikit-image ships on disk, degraded per task.

Train and test are split by source photo (no photo is in both), and every byte is a function of the seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import skimage.data

from sam4ir.errors import Sam4irError
from sam4ir.io import write_image
from sam4ir.data.degradations import add_rain, gaussian_noise, motion_blur

# Colour photographs bundled with scikit-image (no download needed).
DEMO_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skimage.data.astronaut,
    "coffee": skimage.data.coffee,
    "chelsea": skimage.data.chelsea,
    "rocket": skimage.data.rocket,
    "hubble_deep_field": skimage.data.hubble_deep_field,
    "immunohistochemistry": skimage.data.immunohistochemistry,
    "stereo_motorcycle": lambda: skimage.data.stereo_motorcycle()[0],
    "colorwheel": skimage.data.colorwheel,
}
TASKS = ("derain", "deblur", "denoise")


def degrade(task: str, img: np.ndarray, rng: np.random.Generator, noise_sigma: float) -> np.ndarray:
    if task == "derain":
        return add_rain(img, rng)
    if task == "deblur":
        return motion_blur(img, rng)
    if task == "denoise":
        return gaussian_noise(img, rng, noise_sigma)
    raise Sam4irError(f"unknown task '{task}' (choose from {', '.join(TASKS)})")


def photo(name: str) -> np.ndarray:
    if name not in DEMO_PHOTOS:
        raise Sam4irError(f"data.demo: unknown photo '{name}' (choose from {', '.join(DEMO_PHOTOS)})")
    img = DEMO_PHOTOS[name]()
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def photo_crops(img: np.ndarray, rng: np.random.Generator, size: int, count: int) -> list[np.ndarray]:
    """``count`` square crops at random scales (a random side between ``size`` and the short side, resized to ``size``)."""
    h, w = img.shape[:2]
    short = min(h, w)
    crops = []
    for _ in range(count):
        side = int(rng.integers(min(size, short), short + 1))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = img[top:top + side, left:left + side]
        crops.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA) if side != size else crop.copy())
    return crops


def build_demo(task: str, out_dir: str | Path, *, seed: int, photos_train: list[str], photos_test: list[str],
               size: int, patches_per_photo: int, noise_sigma: float) -> dict:
    """Write ``out_dir/{train,test}/{input,target}/<photo>_<k>.png``; returns the number of pairs per split."""
    if task not in TASKS:
        raise Sam4irError(f"unknown task '{task}' (choose from {', '.join(TASKS)})")
    overlap = set(photos_train) & set(photos_test)
    if overlap:
        raise Sam4irError(f"data.demo: photos {sorted(overlap)} are in both photos_train and photos_test")
    out_dir = Path(out_dir)
    counts = {}
    for split, names in (("train", photos_train), ("test", photos_test)):
        for p_idx, name in enumerate(names):
            # One generator per (seed, task, photo): adding a photo never changes the others' pairs.
            rng = np.random.default_rng([seed, TASKS.index(task), sum(map(ord, name)), p_idx])
            for k, target in enumerate(photo_crops(photo(name), rng, size, patches_per_photo)):
                write_image(out_dir / split / "target" / f"{name}_{k:02d}.png", target)
                write_image(out_dir / split / "input" / f"{name}_{k:02d}.png", degrade(task, target, rng, noise_sigma))
        counts[split] = len(names) * patches_per_photo
    return counts

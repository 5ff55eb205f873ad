"""The offline demo dataset: crops of the colour photographs scikit-image ships on disk, degraded per task.

Train and test are split by source photo (no photo is in both), and every byte is a function of the seed,
the task and the photo's name, so the demo is reproducible without any download.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import skimage.data

from sam4ir.data.degradations import add_rain, gaussian_noise, motion_blur
from sam4ir.errors import Sam4irError
from sam4ir.io import write_image

# Colour photographs inside the scikit-image wheel (no pooch download): name -> loader of RGB uint8 H x W x 3.
DEMO_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skimage.data.astronaut,
    "coffee": skimage.data.coffee,
    "chelsea": skimage.data.chelsea,
    "rocket": skimage.data.rocket,
    "hubble_deep_field": skimage.data.hubble_deep_field,
    "immunohistochemistry": skimage.data.immunohistochemistry,
    "retina": skimage.data.retina,
    "stereo_motorcycle": lambda: skimage.data.stereo_motorcycle()[0],
}
TASKS = ("derain", "deblur", "denoise")


def degrade(task: str, img: np.ndarray, rng: np.random.Generator, noise_sigma: float,
            blur_kernel: tuple[int, int] = (9, 21), rain_opacity: tuple[float, float] = (0.3, 0.6)) -> np.ndarray:
    """The task's synthetic degradation of an RGB uint8 image."""
    if task == "derain":
        return add_rain(img, rng, opacity=tuple(rain_opacity))
    if task == "deblur":
        return motion_blur(img, rng, kernel_size=tuple(blur_kernel))
    if task == "denoise":
        return gaussian_noise(img, rng, noise_sigma)
    raise Sam4irError(f"unknown task '{task}' (choose from {', '.join(TASKS)})")


def load_photo(name: str) -> np.ndarray:
    """One of :data:`DEMO_PHOTOS` as RGB uint8 ``H x W x 3``."""
    if name not in DEMO_PHOTOS:
        raise Sam4irError(f"data.demo: unknown photo '{name}' (choose from {', '.join(DEMO_PHOTOS)})")
    return np.ascontiguousarray(DEMO_PHOTOS[name]()[..., :3], dtype=np.uint8)


def photo_crops(img: np.ndarray, rng: np.random.Generator, size: int, count: int) -> list[np.ndarray]:
    """``count`` square ``size x size`` crops at random scales: a random square (side between ``size`` and the
    photo's short side) resized with area averaging, so crops range from full detail to a whole-photo view."""
    h, w = img.shape[:2]
    short = min(h, w)
    crops = []
    for _ in range(count):
        side = int(rng.integers(min(size, short), short + 1))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = img[top:top + side, left:left + side]
        crops.append(crop.copy() if side == size else cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return crops


def check_photo_split(section: str, task: str, seed: int, photos_train: list[str], photos_test: list[str]) -> None:
    """What every offline source (``data.<section>``) checks first: the task, the seed, and two disjoint lists of
    known photos (train and test never share a photo)."""
    if task not in TASKS:
        raise Sam4irError(f"unknown task '{task}' (choose from {', '.join(TASKS)})")
    if seed < 0:
        raise Sam4irError(f"data.seed: {seed} must be a non-negative integer")
    for key, names in (("photos_train", photos_train), ("photos_test", photos_test)):
        if not names:
            raise Sam4irError(f"{section}.{key}: empty list of photos")
        if len(set(names)) != len(names):
            raise Sam4irError(f"{section}.{key}: a photo is listed twice in {names}")
        for name in names:
            if name not in DEMO_PHOTOS:
                raise Sam4irError(f"{section}.{key}: unknown photo '{name}' (choose from {', '.join(DEMO_PHOTOS)})")
    overlap = set(photos_train) & set(photos_test)
    if overlap:
        raise Sam4irError(f"{section}: photos {sorted(overlap)} are in both photos_train and photos_test")


def _check_args(task: str, seed: int, photos_train: list[str], photos_test: list[str], size: int,
                patches_per_photo: int, noise_sigma: float) -> None:
    check_photo_split("data.demo", task, seed, photos_train, photos_test)
    if size < 16:
        raise Sam4irError(f"data.demo.size: {size} is too small (at least 16 pixels)")
    if patches_per_photo < 1:
        raise Sam4irError(f"data.demo.patches_per_photo: {patches_per_photo} must be at least 1")
    if noise_sigma < 0:
        raise Sam4irError(f"data.demo.noise_sigma: {noise_sigma} must be non-negative")


def _check_no_strangers(folder: Path, names: set[str]) -> None:
    """Refuse to mix this build with other images (a stale or foreign dataset in ``out_dir``); never delete them."""
    for path in sorted(folder.glob("*")) if folder.is_dir() else ():
        if path.stem not in names and not path.name.startswith("."):
            raise Sam4irError(f"{path}: not part of this demo build; remove {folder.parent.parent} and rebuild")


def build_demo(task: str, out_dir: str | Path, *, seed: int, photos_train: list[str], photos_test: list[str],
               size: int, patches_per_photo: int, noise_sigma: float,
               blur_kernel: tuple[int, int] = (9, 21), rain_opacity: tuple[float, float] = (0.3, 0.6)) -> dict:
    """Write ``out_dir/{train,test}/{input,target}/<photo>_<k>.png`` for ``task`` in {derain, deblur, denoise}.

    Targets are ``patches_per_photo`` crops of each photo (``size x size``), inputs their degraded versions.
    Each photo has its own generator seeded by ``(seed, task, photo name)``, so adding or reordering photos never
    changes the other photos' pairs. Returns ``{'train': n_pairs, 'test': n_pairs}``.
    """
    _check_args(task, seed, photos_train, photos_test, size, patches_per_photo, noise_sigma)
    out_dir = Path(out_dir)
    counts = {}
    for split, photos in (("train", photos_train), ("test", photos_test)):
        names = {f"{photo}_{k:02d}" for photo in photos for k in range(patches_per_photo)}
        for sub in ("input", "target"):
            _check_no_strangers(out_dir / split / sub, names)
        for photo in photos:
            rng = np.random.default_rng([seed, TASKS.index(task), zlib.crc32(photo.encode())])
            for k, target in enumerate(photo_crops(load_photo(photo), rng, size, patches_per_photo)):
                write_image(out_dir / split / "target" / f"{photo}_{k:02d}.png", target)
                degraded = degrade(task, target, rng, noise_sigma, blur_kernel, rain_opacity)
                write_image(out_dir / split / "input" / f"{photo}_{k:02d}.png", degraded)
        counts[split] = len(names)
    return counts

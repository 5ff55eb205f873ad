"""The offline *scenes* demo: dead-leaves scenes whose true segments are known, degraded per task.

Each scene is a stack of opaque shapes (ellipses, rotated rectangles, triangles; sizes drawn from a power law as
in the dead-leaves model, so a few large regions and many small ones) over a background, each region filled with
either a flat colour or a texture, both taken from the scikit-image photos. The visible shape id at every pixel
is the scene's exact segment map, saved beside each pair (``<split>/regions/<name>.png``, 16-bit, ids 1..K by
area): the ``oracle`` prior, the most information a semantic prior can carry, which the positive control of the
mechanism report needs. Train and test scenes draw their colours and textures from disjoint photos; every byte
is a function of the seed, the task and the scene index.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sam4ir.data.demo import TASKS, _check_no_strangers, check_photo_split, degrade, load_photo
from sam4ir.errors import Sam4irError
from sam4ir.io import write_image

SHAPES = ("ellipse", "rectangle", "triangle")


def _shape_mask(rng: np.random.Generator, size: int, radius: float) -> np.ndarray:
    """A filled random shape of about ``radius`` pixels, centred anywhere in the image (may leave it)."""
    mask = np.zeros((size, size), np.uint8)
    centre = rng.uniform(-0.1 * size, 1.1 * size, 2)
    angle = float(rng.uniform(0, 180))
    kind = SHAPES[int(rng.integers(len(SHAPES)))]
    if kind == "ellipse":
        axes = (max(1, round(radius)), max(1, round(radius * rng.uniform(0.4, 1.0))))
        cv2.ellipse(mask, (round(centre[0]), round(centre[1])), axes, angle, 0, 360, 1, -1)
    else:
        corners = 4 if kind == "rectangle" else 3
        theta = np.deg2rad(angle) + (np.arange(corners) * 2 * np.pi / corners
                                     + (rng.uniform(-0.4, 0.4, corners) if kind == "triangle" else 0))
        stretch = np.array([1.0, rng.uniform(0.4, 1.0)]) if kind == "rectangle" else np.ones(2)
        points = centre + radius * stretch * np.stack([np.cos(theta), np.sin(theta)], axis=1)
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def _fill(rng: np.random.Generator, photos: list[np.ndarray], size: int, flat_fraction: float) -> np.ndarray:
    """A ``size x size x 3`` uint8 fill: a photo's local colour (flat) or a crop of a photo (texture)."""
    photo = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    if rng.random() < flat_fraction:
        y, x = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
        colour = photo[y:y + 8, x:x + 8].reshape(-1, 3).mean(axis=0)
        return np.broadcast_to(np.round(colour).astype(np.uint8), (size, size, 3))
    side = int(rng.integers(size, min(h, w, 3 * size) + 1))  # texture at 1x to 3x zoom-out
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    return cv2.resize(photo[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)


def dead_leaves_scene(rng: np.random.Generator, photos: list[np.ndarray], size: int, shapes: tuple[int, int],
                      flat_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """One scene: RGB uint8 ``size x size x 3`` and its exact segment map (uint16, ids 1..K by area).

    Shapes are painted back to front; radii follow a dead-leaves power law p(r) ~ r^-2 between ``size/10`` and
    ``size/2``. Edges are hard, so the segment map is exact at every pixel.
    """
    # imported here, not at the top: sam4ir.sam loads segment-anything, which importers of the data sources need not
    from sam4ir.sam.label_map import segments_to_label_map

    image = _fill(rng, photos, size, flat_fraction).copy()
    labels = np.zeros((size, size), np.int32)
    r_min, r_max = size / 10, size / 2
    for k in range(1, int(rng.integers(shapes[0], shapes[1] + 1)) + 1):
        u = rng.random()  # inverse CDF of p(r) ~ r^-2 on [r_min, r_max]
        radius = 1 / (1 / r_min - u * (1 / r_min - 1 / r_max))
        mask = _shape_mask(rng, size, radius)
        image[mask] = _fill(rng, photos, size, flat_fraction)[mask]
        labels[mask] = k
    return image, segments_to_label_map(labels)


def _check_args(task: str, seed: int, photos_train: list[str], photos_test: list[str], size: int,
                scenes_train: int, scenes_val: int, scenes_test: int, shapes: list[int], flat_fraction: float) -> None:
    check_photo_split("data.scenes", task, seed, photos_train, photos_test)
    if size < 32:
        raise Sam4irError(f"data.scenes.size: {size} is too small (at least 32 pixels)")
    for key, n in (("scenes_train", scenes_train), ("scenes_val", scenes_val), ("scenes_test", scenes_test)):
        if n < 1:
            raise Sam4irError(f"data.scenes.{key}: {n} must be at least 1")
    if len(shapes) != 2 or not 0 <= shapes[0] <= shapes[1]:
        raise Sam4irError(f"data.scenes.shapes: {shapes} must be [min, max] with 0 <= min <= max")
    if not 0 <= flat_fraction <= 1:
        raise Sam4irError(f"data.scenes.flat_fraction: {flat_fraction} must be in [0, 1]")


def build_scenes(task: str, out_dir: str | Path, *, seed: int, photos_train: list[str], photos_test: list[str],
                 size: int, scenes_train: int, scenes_val: int, scenes_test: int, shapes: list[int],
                 flat_fraction: float, noise_sigma: float, blur_kernel: tuple[int, int],
                 rain_opacity: tuple[float, float]) -> dict:
    """Write ``out_dir/{train,val,test}/{input,target,regions}/scene_<k>.png`` for ``task``.

    The clean scenes (and their segment maps) depend on ``seed`` and the split only, so every task sees the same
    scenes; the degradation is drawn from ``(seed, task, split, k)``. Validation scenes (the training monitor's)
    use the training photos with their own draws, so adding them changes no train or test byte.
    Returns ``{'train': n, 'val': n, 'test': n}``.
    """
    _check_args(task, seed, photos_train, photos_test, size, scenes_train, scenes_val, scenes_test, shapes,
                flat_fraction)
    out_dir = Path(out_dir)
    counts = {}
    for s, (split, names, count) in enumerate((("train", photos_train, scenes_train),
                                               ("test", photos_test, scenes_test),
                                               ("val", photos_train, scenes_val))):
        photos = [load_photo(name) for name in names]
        stems = {f"scene_{k:03d}" for k in range(count)}
        for sub in ("input", "target", "regions"):
            _check_no_strangers(out_dir / split / sub, stems)
        for k in range(count):
            scene, regions = dead_leaves_scene(np.random.default_rng([seed, s, k]), photos, size, tuple(shapes),
                                               flat_fraction)
            degraded = degrade(task, scene, np.random.default_rng([seed, s, k, 1 + TASKS.index(task)]),
                               noise_sigma, tuple(blur_kernel), tuple(rain_opacity))
            name = f"scene_{k:03d}.png"
            write_image(out_dir / split / "target" / name, scene)
            write_image(out_dir / split / "input" / name, degraded)
            write_image(out_dir / split / "regions" / name, regions)
        counts[split] = count
    return counts

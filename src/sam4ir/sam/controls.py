"""Label maps of the prior-information controls, which make a gain attributable to what the priors carry.

Each is a :class:`PathLabeler`: it maps image files (and their pixels) to label maps, like a segmenter, but may
look at other files than the image itself:
- ``none`` (:class:`NoRegions`): every pixel unlabelled (id 0), no region information at all; with the ``mean``
  prior IR2 then sees ŷ1 itself, and SGR has no regions: the cascade and the losses alone;
- ``oracle`` (:class:`OracleRegions`): the exact segment map of a synthetic scene (``<split>/regions/`` beside the
  pair, written by the scenes demo): the most information a prior can carry;
- ``shuffled`` (:class:`ShuffledRegions`): another image's label map from the same split (a derangement drawn
  from a seed), resized to the image: real segment structure, unrelated to the content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from sam4ir.errors import Sam4irError
from sam4ir.io import read_image, read_label_map

Segmenter = Callable[[list[np.ndarray]], list[np.ndarray]]  # [H x W x 3 uint8] -> [H x W uint16]


class PathLabeler:
    """Label maps of ``paths`` (whose decoded pixels are ``images``), one ``H x W`` uint16 map each."""

    def __call__(self, paths: Sequence[Path], images: Sequence[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError


class NoRegions(PathLabeler):
    def __call__(self, paths: Sequence[Path], images: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [np.zeros(image.shape[:2], np.uint16) for image in images]


def regions_path(image_path: Path) -> Path:
    """Where the scenes demo keeps an image's exact segment map: ``<split>/regions/<name>.png``."""
    return image_path.parent.parent / "regions" / f"{image_path.stem}.png"


class OracleRegions(PathLabeler):
    def __call__(self, paths: Sequence[Path], images: Sequence[np.ndarray]) -> list[np.ndarray]:
        maps = []
        for path, image in zip(paths, images):
            truth = regions_path(path)
            if not truth.is_file():
                raise Sam4irError(f"{truth}: no exact segment map for {path} (sam.backend: oracle needs "
                                  "data.source: scenes)")
            labels = read_label_map(truth)
            if labels.shape != image.shape[:2]:
                raise Sam4irError(f"{truth}: segment map {labels.shape[1]}x{labels.shape[0]} does not match {path}")
            maps.append(labels.astype(np.uint16))  # read from a 16-bit PNG: always fits
        return maps


def derangement(paths: Sequence[Path], seed: int) -> dict[Path, Path]:
    """Each path -> another path of the list (no fixed point), drawn from ``seed``: a random order, each path
    taking its successor's place. One image alone keeps its own (there is no other)."""
    order = sorted(paths)
    perm = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
    return {p: perm[(i + 1) % len(perm)] for i, p in enumerate(perm)}


class ShuffledRegions(PathLabeler):
    """The label map ``base`` gives another image of the split, resized (nearest) to this image. ``load`` gives
    an image's pixels from its path (a source rebuilt from its sub-images has no file of its own)."""

    def __init__(self, base: Segmenter | PathLabeler, split_paths: Sequence[Path], seed: int,
                 load: Callable[[Path], np.ndarray] = read_image) -> None:
        self.base, self.partner, self.load = base, derangement(split_paths, seed), load

    def __call__(self, paths: Sequence[Path], images: Sequence[np.ndarray]) -> list[np.ndarray]:
        others = [self.partner[Path(p)] for p in paths]
        pixels = [self.load(p) for p in others]
        maps = self.base(others, pixels) if isinstance(self.base, PathLabeler) else self.base(pixels)
        return [m if m.shape == img.shape[:2] else
                cv2.resize(m, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
                for m, img in zip(maps, images)]

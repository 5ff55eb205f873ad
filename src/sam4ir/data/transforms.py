"""One random geometric transform (a crop and one of the 8 flips/rotations) applied identically to several arrays.

SAM's label map is computed once on the full image and training crops and flips it with the image, so the
one transform drawn per sample must be applied to the degraded input, the clean target and the mask alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

SHAPE_KEEPING = (0, 1, 4, 5)  # dihedral codes that keep H x W: identity, h-flip, 180-degree rotation (+ h-flip)


@dataclass(frozen=True)
class PairedTransform:
    """Crop ``crop x crop`` at ``(top, left)`` (no crop when ``crop`` is None), then dihedral element
    ``dihedral`` in 0..7: bit 0 = horizontal flip, bits 1-2 = number of 90-degree counter-clockwise rotations."""

    top: int = 0
    left: int = 0
    crop: Optional[int] = None
    dihedral: int = 0

    def apply_one(self, array: np.ndarray) -> np.ndarray:
        """Transform an ``H x W`` or ``H x W x C`` array; always returns a new contiguous array."""
        if self.crop is not None:
            array = array[self.top:self.top + self.crop, self.left:self.left + self.crop]
        if self.dihedral & 1:
            array = array[:, ::-1]
        return np.rot90(array, k=self.dihedral >> 1, axes=(0, 1)).copy()

    def apply(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The same transform on every array (input, target, mask, ...), which must share ``H x W``."""
        shapes = {a.shape[:2] for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"arrays to transform together differ in H x W: {sorted(shapes)}")
        return [self.apply_one(a) for a in arrays]


def random_transform(h: int, w: int, crop: Optional[int], augment: bool,
                     generator: Optional[torch.Generator] = None) -> PairedTransform:
    """Draw a crop position (uniform) and, with ``augment``, a dihedral element (uniform over 8) from torch's RNG.

    torch's global RNG by default, so a seeded DataLoader (and its per-worker seeds) reproduces every sample;
    pass ``generator`` for an explicit stream. Without a crop a non-square image only gets the 4 transforms
    that keep its ``H x W``, so batches still collate.
    """
    if crop is not None and not 0 < crop <= min(h, w):
        raise ValueError(f"crop {crop} does not fit an image of {w}x{h}")
    top = left = 0
    if crop is not None:
        top = int(torch.randint(0, h - crop + 1, (), generator=generator))
        left = int(torch.randint(0, w - crop + 1, (), generator=generator))
    dihedral = 0
    if augment:
        square = crop is not None or h == w
        choice = int(torch.randint(0, 8 if square else 4, (), generator=generator))
        dihedral = choice if square else SHAPE_KEEPING[choice]
    return PairedTransform(top, left, crop, dihedral)

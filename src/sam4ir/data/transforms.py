"""One random geometric transform (crop + one of the 8 flips/rotations) applied identically to several arrays.

The SAM label map is computed once on the full image; training crops and flips it with the image, so the
same transform must be reusable for the degraded input, the clean target and the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class GeometricTransform:
    top: int
    left: int
    size: int | None
    dihedral: int  # 0..7: bit 0 = horizontal flip, bits 1-2 = number of 90-degree rotations

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Apply to an ``H x W`` or ``H x W x C`` array (returns a contiguous copy)."""
        if self.size is not None:
            array = array[self.top:self.top + self.size, self.left:self.left + self.size]
        if self.dihedral & 1:
            array = array[:, ::-1]
        array = np.rot90(array, k=self.dihedral >> 1, axes=(0, 1))
        return np.ascontiguousarray(array)


def random_transform(h: int, w: int, crop: int | None, augment: bool) -> GeometricTransform:
    """Draw a transform from torch's global RNG (so DataLoader workers and our seeded sample stream control it)."""
    top = left = 0
    if crop is not None:
        top = int(torch.randint(0, h - crop + 1, ()).item())
        left = int(torch.randint(0, w - crop + 1, ()).item())
    dihedral = int(torch.randint(0, 8, ()).item()) if augment else 0
    return GeometricTransform(top, left, crop, dihedral)

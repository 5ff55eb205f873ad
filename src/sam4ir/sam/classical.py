"""Weight-free stand-in for SAM (scikit-image superpixels), for offline demos.

It writes the same label-map format as the SAM backend, so everything downstream is
exercised without a 2.5 GB checkpoint; the semantics are of course much weaker than SAM's.
"""

from __future__ import annotations

import numpy as np
from skimage.segmentation import felzenszwalb, slic

from sam4ir.errors import Sam4irError
from sam4ir.sam.label_map import segments_to_label_map
from sam4ir.sam.names import CLASSICAL_METHODS



class ClassicalSegmenter:
    """``[H x W x 3 uint8] -> [H x W uint16]``; every pixel gets a segment (no 0s), ids by area."""

    def __init__(self, method: str = "felzenszwalb", *, scale: float = 100, sigma: float = 0.8, min_size: int = 50,
                 n_segments: int = 100, compactness: float = 10) -> None:
        if method not in CLASSICAL_METHODS:
            raise Sam4irError(f"sam.classical.method = {method!r} is not one of {list(CLASSICAL_METHODS)}")
        self.method, self.scale, self.sigma, self.min_size = method, scale, sigma, min_size
        self.n_segments, self.compactness = n_segments, compactness

    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [segments_to_label_map(self._segment(img)) for img in images]

    def _segment(self, image: np.ndarray) -> np.ndarray:
        if self.method == "felzenszwalb":
            return felzenszwalb(image, scale=self.scale, sigma=self.sigma, min_size=self.min_size, channel_axis=-1)
        return slic(image, n_segments=self.n_segments, compactness=self.compactness, sigma=self.sigma,
                    start_label=1, channel_axis=-1)

"""The cached form of SAM's semantics: one label map per image.

A label map is ``H x W`` uint16; 0 = no segment covers the pixel, and ids 1..K are contiguous
and ordered by segment size, largest first. For SAM, "size" is the mask area before overlaps
are resolved: masks are painted largest first so smaller (usually finer) masks stay visible on
top; masks completely hidden by smaller ones vanish and the remaining ids are renumbered.

A sub-image's label map is its window of its source image's map (``sam4ir.sam.extract``): ids are kept, so a
segment cut by a window has the same id in every crop it reaches; within a crop ids are unique but need not be
contiguous (readers count pixels per id, none assumes 1..K).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sam4ir.errors import Sam4irError

MAX_SEGMENTS = np.iinfo(np.uint16).max


def masks_to_label_map(masks: list[dict[str, Any]], shape: tuple[int, int]) -> np.ndarray:
    """``SamAutomaticMaskGenerator`` records (``binary_mask`` or ``uncompressed_rle`` output) -> ``H x W`` uint16.

    Ties in area keep the generator's order (stable sort), so the result is deterministic.
    """
    labels = np.zeros(shape, dtype=np.int32)
    order = np.argsort([-int(m["area"]) for m in masks], kind="stable")
    for k, i in enumerate(order, start=1):
        labels[_decode(masks[i]["segmentation"], shape)] = k
    present = np.unique(labels)
    present = present[present > 0]  # painting order survives: unique() sorts ascending
    lut = np.zeros(len(order) + 1, dtype=np.int32)
    lut[present] = np.arange(1, len(present) + 1)
    return _to_uint16(lut[labels])


def segments_to_label_map(segments: np.ndarray) -> np.ndarray:
    """Any integer segmentation covering every pixel (``H x W``) -> ids 1..K by area, largest first."""
    _, inverse, counts = np.unique(segments, return_inverse=True, return_counts=True)
    rank = np.empty(len(counts), dtype=np.int64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(1, len(counts) + 1)
    return _to_uint16(rank[inverse.reshape(segments.shape)])


def _decode(segmentation: Any, shape: tuple[int, int]) -> np.ndarray:
    if isinstance(segmentation, dict):  # SAM's RLE; imported here: segment_anything loads torchvision (seconds)
        from segment_anything.utils.amg import rle_to_mask
        mask = rle_to_mask(segmentation)
    else:
        mask = np.asarray(segmentation, dtype=bool)
    if mask.shape != tuple(shape):
        raise ValueError(f"mask of shape {mask.shape} for an image of shape {tuple(shape)}")
    return mask


def _to_uint16(labels: np.ndarray) -> np.ndarray:
    if labels.max(initial=0) > MAX_SEGMENTS:
        raise Sam4irError(f"{labels.max()} segments do not fit a 16-bit label map (at most {MAX_SEGMENTS})")
    return labels.astype(np.uint16)

"""Downstream-segmentation check: do SAM's masks of a restored image agree with its masks of the clean image?

The paper argues that semantic priors also make restored images better for segmentation. Segment ids of two
label maps are unrelated, so agreement is measured by matching: each clean segment is scored by its best IoU
with any segment of the restored image, and the scores are averaged (a matching mIoU, 1 = same partition).
"""

from __future__ import annotations

import numpy as np


def matching_miou(restored: np.ndarray, clean: np.ndarray) -> float:
    """Mean over the clean image's segments (id > 0) of their best IoU with a segment of ``restored``.

    restored, clean: H x W integer label maps (0 = unlabelled, ignored on the clean side).
    """
    if restored.shape != clean.shape:
        raise ValueError(f"label maps differ in shape: {restored.shape} vs {clean.shape}")
    _, r = np.unique(restored.ravel(), return_inverse=True)
    c_ids, c = np.unique(clean.ravel(), return_inverse=True)
    n_r, n_c = r.max() + 1, c.max() + 1
    joint = np.bincount(c * n_r + r, minlength=n_c * n_r).reshape(n_c, n_r)
    union = joint.sum(1, keepdims=True) + joint.sum(0, keepdims=True) - joint
    best = (joint / np.maximum(union, 1)).max(axis=1)
    labelled = c_ids > 0
    return float(best[labelled].mean()) if labelled.any() else float("nan")

"""SGR — semantic-guided relation: keep the student's feature space consistent with the teacher's inside SAM's
semantic structure.

[ours] L (the SAM label map) is resized to the feature map (nearest). Segments with at least ``min_pixels``
feature pixels are kept (label 0, "unlabelled", never counts), at most ``max_regions`` of them, largest first.
Each segment's prototype is its mean feature; R = cosine similarity between all prototype pairs (K x K);
L_SGR = mean |R_student − sg(R_teacher)| over all K x K entries, per image, averaged over the batch. Images
with fewer than two usable segments contribute zero, never NaN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sam4ir.errors import Sam4irError


def select_regions(labels: Tensor, min_pixels: int, max_regions: int) -> Tensor:
    """Ids (1-D) of the usable segments of one flattened label map, largest first (ties: smaller id first)."""
    ids, counts = torch.unique(labels, return_counts=True)
    keep = (ids != 0) & (counts >= min_pixels)
    ids, counts = ids[keep], counts[keep]
    order = torch.argsort(counts * (ids.max() + 1 if ids.numel() else 1) - ids, descending=True)
    return ids[order[:max_regions]]


def region_prototypes(features: Tensor, labels: Tensor, ids: Tensor) -> Tensor:
    """Mean feature of each segment in ``ids``: features C x N, labels N -> K x C."""
    onehot = (labels[None, :] == ids[:, None]).to(features.dtype)
    return onehot @ features.t() / onehot.sum(dim=1, keepdim=True)


def relation_matrix(prototypes: Tensor) -> Tensor:
    """K x K cosine similarities between prototypes (K x C)."""
    unit = F.normalize(prototypes, dim=1, eps=1e-8)
    return unit @ unit.t()


def resize_labels(label_map: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of a B x H x W label map to ``size``."""
    if tuple(label_map.shape[-2:]) == tuple(size):
        return label_map.long()
    return F.interpolate(label_map[:, None].float(), size=size, mode="nearest")[:, 0].long()


def sgr_loss(f_student: Tensor, f_teacher: Tensor, label_map: Tensor, *, min_pixels: int = 4,
             max_regions: int = 32) -> Tensor:
    """L_SGR for B x C x h x w student/teacher features and a B x H x W label map (a 0-d tensor, 0 when no image
    has two usable segments, still attached to ``f_student``'s graph)."""
    if f_student.shape != f_teacher.shape:
        raise Sam4irError(f"sgr: student features {list(f_student.shape)} and teacher features "
                          f"{list(f_teacher.shape)} differ in shape")
    if label_map.dim() != 3 or label_map.shape[0] != f_student.shape[0]:
        raise Sam4irError(f"sgr: label map {list(label_map.shape)} is not B x H x W for features "
                          f"{list(f_student.shape)}")
    if min_pixels < 1:
        raise Sam4irError(f"distill.sgr_min_pixels: {min_pixels} must be >= 1")
    if max_regions < 2:
        raise Sam4irError(f"distill.sgr_max_regions: {max_regions} must be >= 2 (a relation needs two segments)")
    b, c = f_student.shape[:2]
    labels = resize_labels(label_map, f_student.shape[-2:]).reshape(b, -1)
    total = f_student.sum() * 0.0  # keeps a graph (and the dtype/device) when no image has two segments
    for i in range(b):
        ids = select_regions(labels[i], min_pixels, max_regions)
        if ids.numel() < 2:
            continue
        r_s = relation_matrix(region_prototypes(f_student[i].reshape(c, -1), labels[i], ids))
        with torch.no_grad():
            r_t = relation_matrix(region_prototypes(f_teacher[i].reshape(c, -1), labels[i], ids))
        total = total + (r_s - r_t).abs().mean()
    return total / b

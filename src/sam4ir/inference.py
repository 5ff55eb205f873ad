"""Running a trained IR network on whole images: uint8 in, uint8 out, optionally tiled for large images."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import Tensor, nn


def to_tensor(img: np.ndarray) -> Tensor:
    """RGB uint8 H x W x 3 -> float 1 x 3 x H x W in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div(255).unsqueeze(0)


def to_uint8(t: Tensor) -> np.ndarray:
    """1 x 3 x H x W in [0, 1] -> RGB uint8 H x W x 3 (clamped and rounded, as images are saved)."""
    return t[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


def _starts(size: int, tile: int, step: int) -> list[int]:
    starts = list(range(0, max(size - tile, 0) + 1, step))
    if starts[-1] + tile < size:
        starts.append(size - tile)
    return starts


@torch.no_grad()
def restore_tensor(net: nn.Module, x: Tensor, tile: Optional[int] = None, overlap: int = 32) -> Tensor:
    """``net(x)`` for x: 1 x C x H x W; with ``tile`` the image is cut into overlapping tiles whose outputs
    are averaged where they overlap, so memory stays bounded on large images."""
    h, w = x.shape[-2:]
    if tile is None or (h <= tile and w <= tile):
        return net(x)
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap}) must be smaller than tile ({tile})")
    out = torch.zeros(x.shape[0], 3, h, w, device=x.device)
    weight = torch.zeros(1, 1, h, w, device=x.device)
    step = tile - overlap
    for top in _starts(h, min(tile, h), step):
        for left in _starts(w, min(tile, w), step):
            patch = x[..., top:top + tile, left:left + tile]
            out[..., top:top + tile, left:left + tile] += net(patch)
            weight[..., top:top + tile, left:left + tile] += 1
    return out / weight


def restore_image(net: nn.Module, img: np.ndarray, device: torch.device, tile: Optional[int] = None) -> np.ndarray:
    """Restore one RGB uint8 image with ``net`` (in eval mode) on ``device``."""
    net.eval()
    return to_uint8(restore_tensor(net, to_tensor(img).to(device), tile))

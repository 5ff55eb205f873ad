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


def tile_spans(size: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """How one axis of ``size`` pixels is cut into tiles: ``(start, keep_from, keep_to)`` per tile.

    The tile ``[start, start + tile)`` supplies the output ``[keep_from, keep_to)``. Neighbouring tiles overlap by
    at least ``overlap`` pixels and split the overlap at its middle, so every kept pixel lies at least
    ``overlap // 2`` pixels inside its tile on each cut side: a network that looks no further than that gives
    exactly its whole-image output (the last tile is shifted back to end at the border, overlapping more).
    """
    if size <= tile:
        return [(0, 0, size)]
    starts = list(range(0, size - tile + 1, tile - overlap))
    if starts[-1] + tile < size:
        starts.append(size - tile)
    cuts = [0] + [(prev + tile + nxt) // 2 for prev, nxt in zip(starts, starts[1:])] + [size]
    return [(start, cuts[i], cuts[i + 1]) for i, start in enumerate(starts)]


@torch.no_grad()
def restore_tensor(net: nn.Module, x: Tensor, tile: Optional[int] = None, overlap: int = 32) -> Tensor:
    """``net(x)`` for x: B x C x H x W -> B x C_out x H x W. With ``tile``, the image is restored in overlapping
    ``tile x tile`` pieces stitched by :func:`tile_spans`, so memory stays bounded on large images."""
    if tile is not None and not 0 <= overlap < tile:
        raise ValueError(f"tiling needs 0 <= overlap < tile, got overlap {overlap} and tile {tile}")
    h, w = x.shape[-2:]
    if tile is None or (h <= tile and w <= tile):
        return net(x)
    out: Optional[Tensor] = None
    for top, y0, y1 in tile_spans(h, tile, overlap):
        for left, x0, x1 in tile_spans(w, tile, overlap):
            y = net(x[..., top:top + tile, left:left + tile])
            if out is None:
                out = y.new_zeros(*y.shape[:2], h, w)
            out[..., y0:y1, x0:x1] = y[..., y0 - top:y1 - top, x0 - left:x1 - left]
    return out


def restore_image(net: nn.Module, img: np.ndarray, device: torch.device, tile: Optional[int] = None,
                  overlap: int = 32) -> np.ndarray:
    """Restore one RGB uint8 image with ``net`` (in eval mode) on ``device``; ``tile``/``overlap`` as in
    :func:`restore_tensor`."""
    net.eval()
    return to_uint8(restore_tensor(net, to_tensor(img).to(device), tile, overlap))

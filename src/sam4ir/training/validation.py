"""A cheap PSNR monitor during training, on a fixed batch of the validation split (center crops of its first
pairs): data held out from training, never the test split, so watching it tunes nothing on the test set."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.utils.data import Dataset

from sam4ir.errors import Sam4irError


def held_out_psnr(net: nn.Module, val_set: Dataset, *, n: int, crop: int,
                  device: torch.device) -> Callable[[], dict]:
    """Return ``validate() -> {'val_psnr': dB}`` for ``net`` on ``n`` center crops (RGB, [0,1] images, 8-bit
    rounding); pairs smaller than ``crop`` are refused in one line (they could not be stacked into one batch)."""
    items = [val_set[i] for i in range(min(n, len(val_set)))]
    for item in items:
        if min(item["input"].shape[-2:]) < crop:
            h, w = item["input"].shape[-2:]
            raise Sam4irError(f"validation pair '{item['name']}': {w}x{h} is smaller than train.crop {crop}")

    def center(t: torch.Tensor) -> torch.Tensor:
        h, w = t.shape[-2:]
        top, left = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
        return t[..., top:top + crop, left:left + crop]

    x = torch.stack([center(it["input"]) for it in items]).to(device)
    y = torch.stack([center(it["target"]) for it in items]).to(device)

    def validate() -> dict:
        out = net(x).clamp(0, 1).mul(255).round().div(255)
        mse = ((out - y) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        return {"val_psnr": float((10 * torch.log10(1 / mse)).mean())}

    return validate

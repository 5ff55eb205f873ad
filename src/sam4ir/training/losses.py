"""Reconstruction losses, as the IR models were originally trained (NAFNet/HINet: PSNR loss)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sam4ir.errors import Sam4irError

RECON_LOSSES = ("psnr", "l1")


def psnr_loss(pred: Tensor, target: Tensor) -> Tensor:
    """NAFNet/HINet's PSNRLoss: ``10/ln10 * mean_b log(MSE_b + 1e-8)`` (negative PSNR up to a constant).

    pred, target: B x C x H x W in [0, 1].
    """
    mse = ((pred - target) ** 2).mean(dim=(1, 2, 3))
    return (10.0 / math.log(10.0)) * torch.log(mse + 1e-8).mean()


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    return (pred - target).abs().mean()


def recon_loss(kind: str, images: list[Tensor], target: Tensor) -> Tensor:
    """Sum of the loss over every supervised output (HINet supervises both of its stages)."""
    if kind not in RECON_LOSSES:
        raise Sam4irError(f"unknown reconstruction loss '{kind}' (choose from {', '.join(RECON_LOSSES)})")
    fn = psnr_loss if kind == "psnr" else l1_loss
    return sum(fn(img, target) for img in images)

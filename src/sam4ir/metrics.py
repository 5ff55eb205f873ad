"""PSNR and SSIM exactly as BasicSR computes them (``basicsr/metrics/psnr_ssim.py``), with its signatures,
so numbers are comparable with the field's tables.

Images are on the 0-255 scale (uint8 or float). BasicSR's Y channel assumes BGR input; our images are RGB,
so ``color_order`` (default ``'rgb'``) picks the matching ITU-R BT.601 coefficients: Y is the same either way.
"""

from __future__ import annotations

import cv2
import numpy as np

_Y_COEFFS = {"rgb": np.array([65.481, 128.553, 24.966]), "bgr": np.array([24.966, 128.553, 65.481])}


def reorder_image(img: np.ndarray, input_order: str = "HWC") -> np.ndarray:
    """``H x W x C`` view of an ``HWC`` or ``CHW`` image (a 2-D image gets a channel axis)."""
    if input_order not in ("HWC", "CHW"):
        raise ValueError(f"input_order must be 'HWC' or 'CHW', got {input_order!r}")
    if img.ndim == 2:
        return img[..., None]
    return img.transpose(1, 2, 0) if input_order == "CHW" else img


def to_y_channel(img: np.ndarray, color_order: str = "rgb") -> np.ndarray:
    """Y of YCbCr (BT.601, 16-235) on the 0-255 scale, ``H x W x 1``, float32 arithmetic as BasicSR."""
    img = img.astype(np.float32) / 255.0
    if img.ndim == 3 and img.shape[2] == 3:
        img = (np.dot(img, _Y_COEFFS[color_order]) + 16.0) / 255.0
        img = img[..., None]
    return img * 255.0


def _prepare(img: np.ndarray, img2: np.ndarray, crop_border: int, input_order: str, test_y_channel: bool,
             color_order: str) -> tuple[np.ndarray, np.ndarray]:
    if img.shape != img2.shape:
        raise ValueError(f"image shapes differ: {img.shape} vs {img2.shape}")
    img, img2 = reorder_image(img, input_order), reorder_image(img2, input_order)
    if crop_border != 0:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, ...]
    if test_y_channel:
        img, img2 = to_y_channel(img, color_order), to_y_channel(img2, color_order)
    return img.astype(np.float64), img2.astype(np.float64)


def calculate_psnr(img: np.ndarray, img2: np.ndarray, crop_border: int, input_order: str = "HWC",
                   test_y_channel: bool = False, color_order: str = "rgb", **kwargs) -> float:
    """PSNR (dB) of two 0-255 images; ``inf`` for identical images, as BasicSR."""
    img, img2 = _prepare(img, img2, crop_border, input_order, test_y_channel, color_order)
    mse = np.mean((img - img2) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0 * 255.0 / mse))


def _ssim(img: np.ndarray, img2: np.ndarray) -> float:
    """SSIM of one channel: 11x11 Gaussian window (sigma 1.5), 'valid' region only (5-pixel border dropped)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(kernel, kernel.transpose())
    mu1 = cv2.filter2D(img, -1, window)[5:-5, 5:-5]
    mu2 = cv2.filter2D(img2, -1, window)[5:-5, 5:-5]
    mu1_sq, mu2_sq, mu1_mu2 = mu1 ** 2, mu2 ** 2, mu1 * mu2
    sigma1_sq = cv2.filter2D(img ** 2, -1, window)[5:-5, 5:-5] - mu1_sq
    sigma2_sq = cv2.filter2D(img2 ** 2, -1, window)[5:-5, 5:-5] - mu2_sq
    sigma12 = cv2.filter2D(img * img2, -1, window)[5:-5, 5:-5] - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return float(ssim_map.mean())


def calculate_ssim(img: np.ndarray, img2: np.ndarray, crop_border: int, input_order: str = "HWC",
                   test_y_channel: bool = False, color_order: str = "rgb", **kwargs) -> float:
    """SSIM of two 0-255 images, averaged over channels, as BasicSR."""
    img, img2 = _prepare(img, img2, crop_border, input_order, test_y_channel, color_order)
    return float(np.mean([_ssim(img[..., i], img2[..., i]) for i in range(img.shape[2])]))

"""PSNR and SSIM exactly as BasicSR computes them (``basicsr/metrics/psnr_ssim.py``), with its signatures and
defaults, so our numbers are comparable with the field's tables.

Images are on the 0-255 scale (uint8, or float holding 0-255 values), ``H x W x C``, ``C x H x W`` or ``H x W``.
Colour order: like BasicSR, the default is BGR (images as ``cv2.imread`` returns them), so BasicSR's call on the
same arrays gives the same number. Our own pipeline holds RGB images (``sam4ir.io.read_image``): its callers pass
``color_order='rgb'``, which picks the matching ITU-R BT.601 weights, so the Y channel -- and every Y-channel
number -- is that of the same picture. Without ``test_y_channel`` the order is irrelevant.
"""

from __future__ import annotations

import cv2
import numpy as np

# ITU-R BT.601 luma weights for [0, 1] inputs giving Y in [16, 235], per channel order (BasicSR's bgr2ycbcr).
Y_WEIGHTS = {"rgb": np.array([65.481, 128.553, 24.966]), "bgr": np.array([24.966, 128.553, 65.481])}


def reorder_image(img: np.ndarray, input_order: str = "HWC") -> np.ndarray:
    """``H x W x C`` view of an ``HWC`` or ``CHW`` image; an ``H x W`` image gets a channel axis."""
    if input_order not in ("HWC", "CHW"):
        raise ValueError(f"input_order must be 'HWC' or 'CHW', got {input_order!r}")
    if img.ndim == 2:
        return img[..., None]
    return img.transpose(1, 2, 0) if input_order == "CHW" else img


def to_y_channel(img: np.ndarray, color_order: str = "bgr") -> np.ndarray:
    """Y of YCbCr (BT.601, 16-235) of a 0-255 ``H x W x 3`` image, BGR unless ``color_order='rgb'``, as float32
    ``H x W x 1`` on the 0-255 scale, unrounded; other channel counts pass through (float32). Bit-exact with
    BasicSR's float32 path."""
    if color_order not in Y_WEIGHTS:
        raise ValueError(f"color_order must be 'rgb' or 'bgr', got {color_order!r}")
    img = img.astype(np.float32) / 255.0
    if img.ndim == 3 and img.shape[2] == 3:
        # As BasicSR's bgr2ycbcr on float32 [0, 1]: float64 weights, result divided by 255 and cast to float32.
        y = (np.dot(img, Y_WEIGHTS[color_order]) + 16.0) / 255.0
        img = y.astype(np.float32)[..., None]
    return img * 255.0


def _prepare(img: np.ndarray, img2: np.ndarray, crop_border: int, input_order: str, test_y_channel: bool,
             color_order: str) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float64 ``H x W x C`` after reordering, border cropping and (optionally) Y extraction."""
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
                   test_y_channel: bool = False, color_order: str = "bgr", **kwargs) -> float:
    """PSNR (dB, peak 255) over all pixels and channels left after cropping ``crop_border`` pixels from each
    edge; ``inf`` for identical images, as BasicSR."""
    img, img2 = _prepare(img, img2, crop_border, input_order, test_y_channel, color_order)
    mse = np.mean((img - img2) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0 * 255.0 / mse))


def _ssim(img: np.ndarray, img2: np.ndarray) -> float:
    """SSIM of one float64 ``H x W`` channel: 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, mean of
    the map over the 'valid' region (the 5-pixel border where the window leaves the image is dropped)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = cv2.getGaussianKernel(11, 1.5)
    window = g @ g.T

    def local_mean(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]

    mu1, mu2 = local_mean(img), local_mean(img2)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 ** 2, mu2 ** 2, mu1 * mu2
    sigma1_sq = local_mean(img ** 2) - mu1_sq
    sigma2_sq = local_mean(img2 ** 2) - mu2_sq
    sigma12 = local_mean(img * img2) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return float(ssim_map.mean())


def calculate_ssim(img: np.ndarray, img2: np.ndarray, crop_border: int, input_order: str = "HWC",
                   test_y_channel: bool = False, color_order: str = "bgr", **kwargs) -> float:
    """SSIM of two 0-255 images (each side at least 11 pixels after cropping), computed per channel and
    averaged, as BasicSR."""
    img, img2 = _prepare(img, img2, crop_border, input_order, test_y_channel, color_order)
    if min(img.shape[:2]) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after cropping, got {img.shape[1]}x{img.shape[0]}")
    return float(np.mean([_ssim(img[..., c], img2[..., c]) for c in range(img.shape[2])]))

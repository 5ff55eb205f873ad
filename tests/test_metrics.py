"""BasicSR's PSNR/SSIM conventions, checked against independent implementations on real photographs."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sam4ir.data.degradations import add_rain, gaussian_noise, motion_blur
from sam4ir.metrics import calculate_psnr, calculate_ssim, to_y_channel


def _pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    clean = skimage.data.coffee()[60:124, 180:260]  # 64 x 80, a real photograph
    rng = np.random.default_rng(0)
    return [("noise", clean, gaussian_noise(clean, rng, 15.0)),
            ("rain", clean, add_rain(clean, rng)),
            ("blur", clean, motion_blur(clean, rng))]


PAIRS = _pairs()
IDS = [name for name, _, _ in PAIRS]


def skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """skimage's SSIM with the Wang et al. settings: Gaussian sigma 1.5 truncated at 3.5 sigma (11 taps),
    population covariances, mean of the map without the 5-pixel border -- the region BasicSR's 'valid' filter
    keeps -- so the two should agree to rounding."""
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=-1 if a.ndim == 3 else None)


@pytest.mark.parametrize("name,clean,degraded", PAIRS, ids=IDS)
def test_psnr_is_the_mse_formula(name, clean, degraded):
    diff = clean.astype(np.int64) - degraded.astype(np.int64)
    mse = (diff * diff).sum() / diff.size  # exact integer arithmetic
    expected = 10 * np.log10(255**2 / mse)
    psnr = calculate_psnr(clean, degraded, 0)
    assert psnr == pytest.approx(expected, abs=1e-10)
    assert psnr == pytest.approx(peak_signal_noise_ratio(clean, degraded, data_range=255), abs=1e-10)


def test_psnr_of_identical_images_is_infinite():
    _, clean, _ = PAIRS[0]
    assert calculate_psnr(clean, clean.copy(), 0) == float("inf")
    assert calculate_psnr(clean, clean.copy(), 2, test_y_channel=True) == float("inf")


@pytest.mark.parametrize("name,clean,degraded", PAIRS, ids=IDS)
def test_ssim_matches_skimage(name, clean, degraded):
    assert calculate_ssim(clean, degraded, 0) == pytest.approx(skimage_ssim(clean, degraded), abs=1e-6)
    assert calculate_ssim(clean, clean, 0) == pytest.approx(1.0, abs=1e-12)


def test_ssim_is_the_mean_over_channels():
    _, clean, degraded = PAIRS[0]
    per_channel = [skimage_ssim(clean[..., c], degraded[..., c]) for c in range(3)]
    assert calculate_ssim(clean, degraded, 0) == pytest.approx(np.mean(per_channel), abs=1e-6)
    assert len({round(s, 4) for s in per_channel}) > 1  # the channels really differ, so averaging is tested


def test_y_channel_is_bt601_as_skimage():
    _, clean, degraded = PAIRS[1]  # RGB, as skimage's rgb2ycbcr expects
    y = to_y_channel(clean, color_order="rgb")
    assert y.shape == clean.shape[:2] + (1,) and y.dtype == np.float32
    np.testing.assert_allclose(y[..., 0], rgb2ycbcr(clean)[..., 0], atol=1e-3)
    black_white = np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8)
    np.testing.assert_allclose(to_y_channel(black_white)[0, :, 0], [16.0, 235.0], atol=1e-4)
    # Y-channel metrics are the metrics of skimage's Y images
    y_clean, y_degraded = rgb2ycbcr(clean)[..., 0], rgb2ycbcr(degraded)[..., 0]
    mse = np.mean((y_clean - y_degraded) ** 2)
    psnr_y = calculate_psnr(clean, degraded, 0, test_y_channel=True, color_order="rgb")
    assert psnr_y == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-4)
    # 1e-5, not 1e-6: skimage's Y is float64, ours (BasicSR's) is rounded to float32
    assert calculate_ssim(clean, degraded, 0, test_y_channel=True, color_order="rgb") == pytest.approx(
        structural_similarity(y_clean, y_degraded, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                              data_range=255), abs=1e-5)


def basicsr_y(bgr: np.ndarray) -> np.ndarray:
    """BasicSR's ``to_y_channel`` step by step: float32 [0, 1], ``bgr2ycbcr(img, y_only=True)`` (a dot product
    with the B, G, R weights, + 16, then / 255 back to float32), x 255."""
    img = bgr.astype(np.float32) / 255.0
    y = (np.dot(img, [24.966, 128.553, 65.481]) + 16.0) / 255.0
    return y.astype(np.float32)[..., None] * 255.0


def basicsr_psnr(bgr: np.ndarray, bgr2: np.ndarray, crop_border: int, test_y_channel: bool) -> float:
    """BasicSR's ``calculate_psnr`` on ``HWC`` BGR images, as its source reads."""
    if crop_border:
        bgr, bgr2 = (x[crop_border:-crop_border, crop_border:-crop_border] for x in (bgr, bgr2))
    if test_y_channel:
        bgr, bgr2 = basicsr_y(bgr), basicsr_y(bgr2)
    mse = np.mean((bgr.astype(np.float64) - bgr2.astype(np.float64)) ** 2)
    return 10.0 * np.log10(255.0 * 255.0 / mse)


def bgr(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[..., ::-1])  # what cv2.imread returns for the same file


@pytest.mark.parametrize("name,clean,degraded", PAIRS, ids=IDS)
@pytest.mark.parametrize("crop", [0, 4])
@pytest.mark.parametrize("y", [False, True])
def test_basicsrs_call_on_bgr_images_gives_basicsrs_number(name, clean, degraded, crop, y):
    assert calculate_psnr(bgr(clean), bgr(degraded), crop, test_y_channel=y) == \
        basicsr_psnr(bgr(clean), bgr(degraded), crop, y)


def test_default_y_is_the_bt601_formula_on_bgr():
    _, clean, _ = PAIRS[1]
    img = bgr(clean).astype(np.float64)
    formula = 16.0 + (65.481 * img[..., 2] + 128.553 * img[..., 1] + 24.966 * img[..., 0]) / 255.0
    np.testing.assert_array_equal(to_y_channel(bgr(clean)), basicsr_y(bgr(clean)))
    np.testing.assert_allclose(to_y_channel(bgr(clean))[..., 0], formula, atol=1e-4)  # float32 rounding only


@pytest.mark.parametrize("name,clean,degraded", PAIRS, ids=IDS)
@pytest.mark.parametrize("metric", [calculate_psnr, calculate_ssim])
def test_rgb_with_the_explicit_order_equals_bgr_with_the_default(name, clean, degraded, metric):
    for crop in (0, 4):  # the same Y image: the same number, bit for bit
        assert metric(clean, degraded, crop, test_y_channel=True, color_order="rgb") == \
            metric(bgr(clean), bgr(degraded), crop, test_y_channel=True)
    # all channels: the same channels averaged in the other order, so equal to the last bit or two
    assert metric(clean, degraded, 0, color_order="rgb") == pytest.approx(metric(bgr(clean), bgr(degraded), 0),
                                                                          rel=1e-15, abs=0)
    # RGB images under the default (the mistake the explicit argument prevents) give another Y-channel number
    assert metric(clean, degraded, 0, test_y_channel=True) != \
        metric(clean, degraded, 0, test_y_channel=True, color_order="rgb")


@pytest.mark.parametrize("name,clean,degraded", PAIRS, ids=IDS)
def test_y_channel_ssim_matches_skimage_on_the_same_y(name, clean, degraded):
    """Same Y images in, so only the SSIM computations differ: cv2.filter2D (BasicSR) vs scipy's Gaussian filter
    (skimage), both cropped by 5 pixels -- they agree to rounding."""
    y, y2 = basicsr_y(bgr(clean))[..., 0].astype(np.float64), basicsr_y(bgr(degraded))[..., 0].astype(np.float64)
    assert calculate_ssim(bgr(clean), bgr(degraded), 0, test_y_channel=True) == pytest.approx(
        skimage_ssim(y, y2), abs=1e-9)  # observed: within 2e-13


def test_bad_color_order_raises():
    _, clean, degraded = PAIRS[1]
    with pytest.raises(ValueError, match="color_order"):
        calculate_psnr(clean, degraded, 0, test_y_channel=True, color_order="yuv")


@pytest.mark.parametrize("metric", [calculate_psnr, calculate_ssim])
def test_crop_border_drops_the_border(metric):
    _, clean, degraded = PAIRS[2]
    b = 4
    cropped = metric(clean[b:-b, b:-b], degraded[b:-b, b:-b], 0)
    assert metric(clean, degraded, b) == cropped
    assert metric(clean, degraded, b) != metric(clean, degraded, 0)
    assert metric(clean, degraded, b, test_y_channel=True) == metric(clean[b:-b, b:-b], degraded[b:-b, b:-b], 0,
                                                                     test_y_channel=True)


@pytest.mark.parametrize("metric", [calculate_psnr, calculate_ssim])
@pytest.mark.parametrize("y", [False, True])
def test_layout_and_dtype_do_not_change_the_number(metric, y):
    _, clean, degraded = PAIRS[0]
    hwc = metric(clean, degraded, 2, test_y_channel=y)
    chw = metric(clean.transpose(2, 0, 1), degraded.transpose(2, 0, 1), 2, input_order="CHW", test_y_channel=y)
    as_float = metric(clean.astype(np.float64), degraded.astype(np.float32), 2, test_y_channel=y)
    assert hwc == chw == as_float


def test_single_channel_images():
    _, clean, degraded = PAIRS[0]
    gray, gray2 = clean[..., 1], degraded[..., 1]
    assert calculate_ssim(gray, gray2, 0) == pytest.approx(skimage_ssim(gray, gray2), abs=1e-6)
    assert calculate_psnr(gray, gray2, 0) == calculate_psnr(gray[..., None], gray2[..., None], 0)


@pytest.mark.parametrize("metric", [calculate_psnr, calculate_ssim])
def test_bad_arguments_raise(metric):
    _, clean, degraded = PAIRS[0]
    with pytest.raises(ValueError, match="shapes differ"):
        metric(clean, degraded[:-1], 0)
    with pytest.raises(ValueError, match="input_order"):
        metric(clean, degraded, 0, input_order="NHWC")


def test_ssim_refuses_images_smaller_than_its_window():
    _, clean, degraded = PAIRS[0]
    with pytest.raises(ValueError, match="11x11"):
        calculate_ssim(clean, degraded, 27)  # 64 - 2 * 27 = 10 rows left

"""train.cache_images: ``auto`` caches only a set whose decoded size, estimated from the image headers without
decoding, fits the per-process limit; a cached and an uncached dataset give the same items."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest
import torch

from test_data import make_folder
from test_schema import PARAMS, with_value

from sam4ir.data.paired import CACHE_LIMIT_BYTES, PairedDataset, decoded_bytes, header_size, split_pairs
from sam4ir.errors import Sam4irError
from sam4ir.params.schema import parse_params

SIZES = {"a": (30, 40), "b": (24, 36), "c": (20, 50)}


@pytest.fixture
def folder(tmp_path):
    make_folder(tmp_path / "data", SIZES, masks_root=tmp_path / "masks")
    return tmp_path


def test_header_size_reads_png_and_other_formats_without_decoding(tmp_path):
    img = np.zeros((13, 21, 3), np.uint8)
    for suffix in (".png", ".jpg", ".bmp"):
        cv2.imwrite(str(tmp_path / f"x{suffix}"), img)
        assert header_size(tmp_path / f"x{suffix}") == (13, 21)
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    with pytest.raises(Sam4irError, match=r"bad\.png: cannot decode image \(unreadable header") as err:
        header_size(tmp_path / "bad.png")
    assert "\n" not in str(err.value)


def test_estimate_equals_what_the_cache_holds(folder):
    ds = PairedDataset(folder / "data", "train", crop=16, augment=True, masks_root=folder / "masks", cache=True)
    held = sum(a.nbytes for arrays in ds._cache for a in arrays)
    assert decoded_bytes(ds.pairs, with_masks=True) == held == sum(8 * h * w for h, w in SIZES.values())
    assert decoded_bytes(ds.pairs, with_masks=False) == sum(6 * h * w for h, w in SIZES.values())
    assert all(arrays[2].dtype == np.uint16 for arrays in ds._cache)  # a quarter of int64's memory
    assert ds[0]["mask"].dtype == torch.int64


def test_auto_caches_below_the_limit_only_and_says_so(folder, capsys):
    need = decoded_bytes(split_pairs(folder / "data", "train"), with_masks=True)
    kwargs = dict(crop=16, augment=True, masks_root=folder / "masks", cache="auto")
    assert PairedDataset(folder / "data", "train", cache_limit=need, **kwargs).cached
    assert capsys.readouterr().err == ""
    lazy = PairedDataset(folder / "data", "train", cache_limit=need - 1, **kwargs)
    assert not lazy.cached and lazy._cache is None
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(folder / "data" / "train") in err and "cache limit" in err
    assert PairedDataset(folder / "data", "train", crop=16, augment=True).cached  # the default is auto, 2 GiB
    assert CACHE_LIMIT_BYTES == 2 << 30


def test_cached_and_uncached_items_are_the_same(folder):
    def items(cache: bool) -> list[dict]:
        ds = PairedDataset(folder / "data", "train", crop=16, augment=True, masks_root=folder / "masks", cache=cache)
        torch.manual_seed(3)
        return [ds[i % len(ds)] for i in range(9)]

    for a, b in zip(items(True), items(False)):
        assert a["name"] == b["name"]
        for key in ("input", "target", "mask"):
            assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key])


def test_bad_cache_values_are_one_line(folder):
    for value in ("yes", 1, None):
        with pytest.raises(Sam4irError, match=r"^cache: .* is not one of auto, true, false$"):
            PairedDataset(folder / "data", "train", crop=16, augment=True, cache=value)


def test_params_accept_auto_true_false_only():
    for value in ("auto", True, False):
        parse_params(with_value("train.cache_images", value), "params.yaml")
    with pytest.raises(Sam4irError, match=r"^params.yaml: param 'train.cache_images"):
        parse_params(with_value("train.cache_images", "always"), "params.yaml")
    assert copy.deepcopy(PARAMS)["train"]["cache_images"] == "auto"

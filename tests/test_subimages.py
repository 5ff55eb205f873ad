"""Sub-images as BasicSR's ``extract_subimages.py`` cuts them, through prepare_data's folder source."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from sam4ir.datasets.subimages import MANIFEST, SubimageSpec, assemble, read_windows, subimage_name, windows
from sam4ir.errors import Sam4irError
from sam4ir.io import read_image, write_image
from sam4ir.stages import prepare_data, run_stage

REPO = Path(__file__).resolve().parents[1]
SIDD = {"crop": 512, "step": 384, "thresh_size": 0}  # NAFNet's scripts/data_preparation/sidd.py
SIDD_SHAPE = (900, 1200)  # h, w: SIDD-like proportions, small enough to write in milliseconds


def basicsr_windows(h: int, w: int, crop: int, step: int, thresh_size: int) -> list[tuple[int, int]]:
    """BasicSR's worker() of scripts/data_preparation/extract_subimages.py, restated: (top, left) per sub-image,
    in the order of its ``_s001``, ``_s002``... names."""
    h_space = np.arange(0, h - crop + 1, step)
    if h - (h_space[-1] + crop) > thresh_size:
        h_space = np.append(h_space, h - crop)
    w_space = np.arange(0, w - crop + 1, step)
    if w - (w_space[-1] + crop) > thresh_size:
        w_space = np.append(w_space, w - crop)
    return [(int(x), int(y)) for x in h_space for y in w_space]


@pytest.mark.parametrize("h, w, crop, step, thresh_size", [
    (900, 1200, 512, 384, 0),     # a SIDD-shaped image: the last window flush with each border
    (3000, 5256, 512, 384, 0),    # SIDD-Medium's full size
    (720, 1280, 512, 256, 0),     # GoPro: 1280 - 512 is a multiple of 256, no extra window across
    (1000, 1000, 480, 240, 20),   # 1000 - 960 = 40 > thresh 20: one more window
    (980, 980, 480, 240, 20),     # 980 - 960 = 20, not above thresh 20: the strip is dropped
    (512, 512, 512, 384, 0),      # exactly one window
    (513, 897, 512, 384, 0),      # a 1-pixel remainder still gets its window
])
def test_windows_are_basicsr_extract_subimages(h, w, crop, step, thresh_size):
    spec = SubimageSpec(crop, step, thresh_size)
    found = windows((h, w), spec)
    assert [(y, x) for y, x, _, _ in found] == basicsr_windows(h, w, crop, step, thresh_size)
    assert all(size == (crop, crop) for *_, ch, cw in found for size in [(ch, cw)])
    assert all(y + ch <= h and x + cw <= w for y, x, ch, cw in found)


def test_sides_shorter_than_a_window_are_kept_whole():
    spec = SubimageSpec(512, 384, 0)
    assert windows((300, 400), spec) == [(0, 0, 300, 400)]               # BasicSR would fail on it
    assert windows((300, 1200), spec) == [(0, x, 300, 512) for x in (0, 384, 688)]


@pytest.mark.parametrize("bad", [dict(crop=0, step=1), dict(crop=64, step=65), dict(crop=64, step=32, thresh_size=-1)])
def test_unusable_settings_are_one_line(bad):
    with pytest.raises(Sam4irError, match="sub-images"):
        SubimageSpec(**bad)


def smooth_image(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Smooth colour noise, ``H x W x 3`` uint8: a coarse random grid upsampled (fast to make and to encode)."""
    h, w = shape
    coarse = np.random.default_rng(seed).integers(0, 256, (h // 64 + 2, w // 64 + 2, 3), dtype=np.uint8)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def write_sidd_folder(root: Path, n_train: int = 3, test_shape: tuple[int, int] = (96, 128)) -> dict[str, np.ndarray]:
    """``root/{train,test}/{input,target}/``: ``n_train`` SIDD-shaped pairs and two small test pairs; returns the
    training inputs by name."""
    inputs = {}
    for split, n, shape in (("train", n_train, SIDD_SHAPE), ("test", 2, test_shape)):
        for i in range(n):
            clean = smooth_image(shape, seed=i + 10 * (split == "test"))
            noisy = np.clip(clean.astype(np.int16) + np.random.default_rng(i).integers(-20, 21, clean.shape), 0, 255)
            write_image(root / split / "input" / f"scene{i}.png", noisy.astype(np.uint8))
            write_image(root / split / "target" / f"scene{i}.png", clean)
            if split == "train":
                inputs[f"scene{i}"] = noisy.astype(np.uint8)
    return inputs


def prepare_folder(root: Path, monkeypatch, task: str = "denoise", subimages: dict | None = SIDD,
                   val_pairs: int = 1) -> Path:
    """Run prepare_data (source: folder, ``subimages`` for the task or none) in ``root`` on
    ``root/data/real/<task>``; return the prepared folder."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["tasks"] = [task]
    params["data"].update(source="folder", val_pairs=val_pairs, subimages={task: subimages})
    params["train"]["crop"] = 8  # tiny test images; prepare_data checks the crop fits them
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "argv", ["prepare_data", "--task", task])
    run_stage(prepare_data.main)
    return root / "data" / "prepared" / task


def test_sidd_shaped_folder_prepares_into_basicsr_windows(tmp_path, monkeypatch):
    inputs = write_sidd_folder(tmp_path / "data" / "real" / "denoise")
    out = prepare_folder(tmp_path, monkeypatch)
    expected = {f"scene{i}_y{y:04d}_x{x:04d}": (f"scene{i}", (y, x)) for i in range(3)
                for y, x in basicsr_windows(*SIDD_SHAPE, **SIDD)}
    assert len(expected) == 27  # 3 x 3 windows per 1200x900 image
    assert sorted(p.stem for p in (out / "train" / "input").glob("*.png")) == sorted(expected)
    assert sorted(p.stem for p in (out / "train" / "target").glob("*.png")) == sorted(expected)
    for name, (source, (y, x)) in expected.items():
        assert np.array_equal(read_image(out / "train" / "input" / f"{name}.png"),
                              inputs[source][y:y + 512, x:x + 512])
    assert {p.stem: read_image(p).shape for p in (out / "test" / "input").glob("*.png")} == \
        {"scene0": (96, 128, 3), "scene1": (96, 128, 3)}  # test images stay whole
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["sources"]["scene1"]["shape"] == list(SIDD_SHAPE)
    assert read_windows(out)["scene2_y0388_x0688"] == ("scene2", (388, 688, 512, 512))
    rebuilt = assemble([(out / "train" / "input" / f"{n}.png", w) for n, (s, w) in read_windows(out).items()
                        if s == "scene0"], read_image)
    assert np.array_equal(rebuilt, inputs["scene0"])  # the windows cover the image (thresh_size 0)
    held_out = json.loads((out / "val_pairs.json").read_text())
    assert len(held_out) == 9 and len({read_windows(out)[n][0] for n in held_out}) == 1  # one whole source
    summary = json.loads((out / "summary.json").read_text())
    assert summary == {**summary, "train": 27 - 9, "test": 2, "val": 9, "sources": {"folder": 3}}  # trained on


def write_whole_pairs(folder: Path, n: int) -> None:
    """``n`` small train and test pairs named 0..n-1 (no sub-images: smaller than any window)."""
    for split in ("train", "test"):
        for i in range(n):
            for kind in ("input", "target"):
                write_image(folder / split / kind / f"{i}.png", smooth_image((40, 48), i))


def test_folder_without_subimages_keeps_whole_pairs_and_their_hold_out(tmp_path, monkeypatch):
    write_whole_pairs(tmp_path / "data" / "real" / "deblur", 4)
    out = prepare_folder(tmp_path, monkeypatch, task="deblur", subimages=None, val_pairs=2)
    assert not (out / MANIFEST).exists() and read_windows(out) == {}
    assert sorted(p.stem for p in (out / "train" / "input").glob("*.png")) == ["0", "1", "2", "3"]
    assert len(json.loads((out / "val_pairs.json").read_text())) == 2
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["train"], summary["val"], summary["val_sources"]) == (2, 2, 2)  # trained on: the other two


def test_a_hold_out_larger_than_half_the_sources_is_said_and_recorded(tmp_path, monkeypatch, capsys):
    write_whole_pairs(tmp_path / "data" / "real" / "deblur", 5)
    out = prepare_folder(tmp_path, monkeypatch, task="deblur", subimages=None, val_pairs=4)
    assert "data.val_pairs = 4, but 5 training source image(s) allow at most 2 held out" in capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["train"], summary["val"], summary["val_sources"], summary["val_sources_asked"]) == (3, 2, 2, 4)


def test_small_images_are_one_window_and_named_by_it(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "real" / "deblur"
    for split in ("train", "test"):
        for kind in ("input", "target"):
            write_image(folder / split / kind / "a.png", smooth_image((40, 48), 0))
            write_image(folder / split / kind / "b.png", smooth_image((40, 48), 1))
    out = prepare_folder(tmp_path, monkeypatch, task="deblur")
    assert read_windows(out) == {"a_y0000_x0000": ("a", (0, 0, 40, 48)), "b_y0000_x0000": ("b", (0, 0, 40, 48))}
    assert subimage_name("a", (0, 0, 40, 48)) == "a_y0000_x0000"

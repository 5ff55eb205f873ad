"""Synthetic degradations, the offline demo, paired-folder validation and the training dataset's transforms."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from torch.utils.data import DataLoader

from sam4ir.data import (DEMO_PHOTOS, PairedDataset, PairedTransform, build_demo, build_scenes, random_transform,
                         scan_pairs, scan_splits)
from sam4ir.data.degradations import add_rain, gaussian_noise, motion_blur, motion_kernel
from sam4ir.data.demo import load_photo
from sam4ir.errors import Sam4irError
from sam4ir.io import read_image, read_label_map, write_image
from sam4ir.metrics import calculate_psnr
from sam4ir.training.validation import held_out_psnr

PHOTO = cv2.resize(skimage.data.astronaut(), (96, 96), interpolation=cv2.INTER_AREA)
DEMO = dict(photos_train=["chelsea", "coffee"], photos_test=["astronaut"], size=32, patches_per_photo=2,
            noise_sigma=25.0)


# --- degradations -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("degrade,low,high", [
    (add_rain, 15.0, 35.0),
    (motion_blur, 15.0, 35.0),
    (lambda img, rng: gaussian_noise(img, rng, 25.0), 19.0, 22.0),  # 20.2 dB for sigma 25, a bit more from clipping
])
def test_degradation_is_seeded_and_lowers_psnr_plausibly(degrade, low, high):
    out = degrade(PHOTO, np.random.default_rng(1))
    assert out.dtype == np.uint8 and out.shape == PHOTO.shape
    assert np.array_equal(out, degrade(PHOTO, np.random.default_rng(1)))
    assert not np.array_equal(out, degrade(PHOTO, np.random.default_rng(2)))
    assert low < calculate_psnr(out, PHOTO, 0) < high


def test_rain_only_brightens():
    rainy = add_rain(PHOTO, np.random.default_rng(0))
    assert (rainy >= PHOTO).all() and (rainy > PHOTO).mean() > 0.02


def test_noise_std_is_sigma():
    gray = np.full((128, 128, 3), 128, np.uint8)
    residual = gaussian_noise(gray, np.random.default_rng(0), 10.0).astype(np.float64) - 128
    assert abs(residual.mean()) < 0.1
    assert residual.std() == pytest.approx(np.sqrt(10.0**2 + 1 / 12), rel=0.02)  # rounding adds 1/12
    assert np.array_equal(gaussian_noise(gray, np.random.default_rng(0), 0.0), gray)


@pytest.mark.parametrize("size", [9, 15, 21])
def test_motion_kernel_is_a_centred_trajectory_of_sum_one(size):
    k = motion_kernel(np.random.default_rng(size), size)
    assert k.shape == (size, size) and (k >= 0).all()
    assert k.sum() == pytest.approx(1.0, abs=1e-5)
    ys, xs = np.mgrid[:size, :size]
    centre = (size - 1) / 2
    assert (k * ys).sum() == pytest.approx(centre, abs=1e-3)  # centred: the blurred image is not shifted
    assert (k * xs).sum() == pytest.approx(centre, abs=1e-3)
    assert (k > 0).sum() > size  # a trail, not a point
    reach = np.maximum(np.abs(ys - centre), np.abs(xs - centre))[k > 0].max()
    assert reach >= size / 2 - 2  # uses the kernel's size: scaled until it nearly touches an edge


def test_motion_blur_keeps_flat_images_flat():
    flat = np.full((40, 40, 3), 77, np.uint8)
    assert np.array_equal(motion_blur(flat, np.random.default_rng(0)), flat)


# --- the offline demo -----------------------------------------------------------------------------------------

def test_demo_photos_load_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    for name in DEMO_PHOTOS:
        img = load_photo(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 128, name


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_demo_is_a_function_of_the_seed(tmp_path):
    summary = build_demo("derain", tmp_path / "a", seed=0, **DEMO)
    build_demo("derain", tmp_path / "b", seed=0, **DEMO)
    build_demo("derain", tmp_path / "c", seed=1, **DEMO)
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert summary == {"train": 4, "test": 2}
    assert len(a) == 2 * (4 + 2) and a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)
    build_demo("derain", tmp_path / "a", seed=0, **DEMO)  # rebuilding in place is a no-op
    assert _files(tmp_path / "a") == a


def test_demo_splits_by_photo_and_degrades_per_task(tmp_path):
    for task in ("derain", "deblur", "denoise"):
        build_demo(task, tmp_path / task, seed=0, **DEMO)
        train, test = scan_pairs(tmp_path / task, "train"), scan_pairs(tmp_path / task, "test")
        photos = lambda pairs: {p.name.rsplit("_", 1)[0] for p in pairs}  # noqa: E731
        assert photos(train) == {"chelsea", "coffee"} and photos(test) == {"astronaut"}
        for pair in train + test:
            degraded, target = cv2.imread(str(pair.input)), cv2.imread(str(pair.target))
            assert degraded.shape == target.shape == (32, 32, 3)
            assert 10.0 < calculate_psnr(degraded, target, 0) < 40.0, (task, pair.name)
    # the same crops (targets) for every task would be fine, but the task must change the degraded inputs
    assert (tmp_path / "derain/train/input/coffee_00.png").read_bytes() != \
        (tmp_path / "denoise/train/input/coffee_00.png").read_bytes()


@pytest.mark.parametrize("change,message", [
    (dict(task="dehaze"), "unknown task 'dehaze'"),
    (dict(photos_test=["coffee"]), "in both photos_train and photos_test"),
    (dict(photos_train=["lena"]), "unknown photo 'lena'"),
    (dict(photos_train=[]), "photos_train: empty"),
    (dict(patches_per_photo=0), "patches_per_photo"),
])
def test_demo_rejects_bad_arguments(tmp_path, change, message):
    args = {"task": "denoise", **DEMO, **change}
    with pytest.raises(Sam4irError, match=message):
        build_demo(args.pop("task"), tmp_path, seed=0, **args)
    assert not any(tmp_path.iterdir())  # checked before anything is written


def test_demo_refuses_to_mix_with_other_images(tmp_path):
    write_image(tmp_path / "train" / "input" / "old_99.png", PHOTO)
    with pytest.raises(Sam4irError, match="old_99.png: not part of this demo build"):
        build_demo("denoise", tmp_path, seed=0, **DEMO)
    assert (tmp_path / "train" / "input" / "old_99.png").is_file()  # never deleted


# --- scenes demo ------------------------------------------------------------------------------------------------

SCENES = dict(photos_train=["chelsea", "coffee"], photos_test=["astronaut"], size=48, scenes_train=3, scenes_val=2,
              scenes_test=2, shapes=[4, 8], flat_fraction=0.5, noise_sigma=25.0, blur_kernel=[5, 9], rain_opacity=[0.7, 1.0])


def test_scenes_are_a_function_of_the_seed_with_exact_segment_maps(tmp_path):
    summary = build_scenes("denoise", tmp_path / "a", seed=0, **SCENES)
    build_scenes("denoise", tmp_path / "b", seed=0, **SCENES)
    build_scenes("denoise", tmp_path / "c", seed=1, **SCENES)
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert summary == {"train": 3, "test": 2, "val": 2} and len(a) == 3 * (3 + 2 + 2) and a == b
    without_val = build_scenes("denoise", tmp_path / "d", seed=0, **{**SCENES, "scenes_val": 1})
    assert without_val["val"] == 1 and {k: v for k, v in a.items() if not k.startswith("val")} == {
        k: v for k, v in _files(tmp_path / "d").items() if not k.startswith("val")}  # val draws touch no other byte
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)
    flat_segments = 0
    for split in ("train", "val", "test"):
        for pair in scan_pairs(tmp_path / "a", split):
            target = read_image(pair.target)
            regions = read_label_map(tmp_path / "a" / split / "regions" / f"{pair.name}.png")
            assert regions.shape == target.shape[:2] and regions.min() == 1  # every pixel belongs to a segment
            ids = np.unique(regions)
            assert list(ids) == list(range(1, len(ids) + 1)) and len(ids) >= 3  # ids 1..K, contiguous
            areas = np.bincount(regions.ravel())[1:]
            assert (np.diff(areas) <= 0).all()  # ordered by area, largest first
            # the map is exact: flat-colour segments are single colours to the pixel (hard edges, no blending)
            flat_segments += sum(len(np.unique(target[regions == k], axis=0)) == 1 for k in ids)
    assert flat_segments >= 5


def test_scenes_same_scene_for_every_task_different_degradation(tmp_path):
    for task in ("derain", "deblur", "denoise"):
        build_scenes(task, tmp_path / task, seed=0, **SCENES)
    name = "train/{}/scene_000.png"
    assert len({(tmp_path / t / name.format("target")).read_bytes() for t in ("derain", "deblur", "denoise")}) == 1
    assert len({(tmp_path / t / name.format("input")).read_bytes() for t in ("derain", "deblur", "denoise")}) == 3
    for task in ("derain", "deblur", "denoise"):
        for pair in scan_pairs(tmp_path / task, "test"):
            assert 10.0 < calculate_psnr(read_image(pair.input), read_image(pair.target), 0) < 40.0, task


@pytest.mark.parametrize("change,message", [
    (dict(photos_test=["coffee"]), "in both photos_train and photos_test"),
    (dict(photos_train=["lena"]), "unknown photo 'lena'"),
    (dict(scenes_test=0), "scenes_test"),
    (dict(shapes=[5, 2]), "data.scenes.shapes"),
    (dict(flat_fraction=1.5), "flat_fraction"),
    (dict(size=16), "data.scenes.size"),
])
def test_scenes_reject_bad_arguments(tmp_path, change, message):
    with pytest.raises(Sam4irError, match=message):
        build_scenes("deblur", tmp_path, seed=0, **{**SCENES, **change})
    assert not any(tmp_path.iterdir())


# --- paired folders ---------------------------------------------------------------------------------------------

def coordinate_images(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images whose pixels say where they came from: target R = 5x, G = 5y; input = 255 - target;
    mask = 1 + y * w + x. Any crop/flip/rotation can be read back from the result."""
    ys, xs = np.mgrid[:h, :w]
    target = np.stack([5 * xs, 5 * ys, np.full_like(xs, 200)], axis=-1).astype(np.uint8)
    return 255 - target, target, (1 + ys * w + xs).astype(np.uint16)


def make_folder(root: Path, names: dict[str, tuple[int, int]], split: str = "train",
                masks_root: Path | None = None) -> None:
    for name, (h, w) in names.items():
        degraded, target, mask = coordinate_images(h, w)
        write_image(root / split / "input" / f"{name}.png", degraded)
        write_image(root / split / "target" / f"{name}.png", target)
        if masks_root is not None:
            write_image(masks_root / split / f"{name}.png", mask)


def test_scan_pairs_matches_by_name_and_skips_hidden_files(tmp_path):
    make_folder(tmp_path, {"b": (20, 24), "a": (20, 24)})
    (tmp_path / "train" / "input" / ".b.png.x1.tmp.png").write_bytes(b"half written")
    (tmp_path / "train" / "target" / "notes.txt").write_text("not an image")
    pairs = scan_pairs(tmp_path, "train")
    assert [p.name for p in pairs] == ["a", "b"]
    assert pairs[0].input == tmp_path / "train" / "input" / "a.png"
    assert pairs[0].target == tmp_path / "train" / "target" / "a.png"


@pytest.mark.parametrize("breakage,message", [
    (lambda r: (r / "train/input/b.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage"), r"b\.png: cannot decode"),
    (lambda r: (r / "train/target/b.png").unlink(), r"input/b\.png: no target image"),
    (lambda r: (r / "train/input/a.png").unlink(), r"target/a\.png: no input image"),
    (lambda r: write_image(r / "train/target/b.png", np.zeros((20, 23, 3), np.uint8)),
     r"input/b\.png: size 24x20 does not match its target .*b\.png \(23x20\)"),
    (lambda r: cv2.imwrite(str(r / "train/input/a.jpg"), PHOTO), r"a\.png: two images named 'a'"),
])
def test_scan_pairs_names_the_broken_file(tmp_path, breakage, message):
    make_folder(tmp_path, {"a": (20, 24), "b": (20, 24)})
    breakage(tmp_path)
    with pytest.raises(Sam4irError, match=message) as err:
        scan_pairs(tmp_path, "train")
    assert "\n" not in str(err.value)


def test_scan_pairs_reports_every_bad_file_at_once_one_line_each(tmp_path):
    make_folder(tmp_path, {name: (20, 24) for name in "abcde"})
    split = tmp_path / "train"
    (split / "input/b.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (split / "target/c.png").unlink()
    write_image(split / "target/d.png", np.zeros((20, 23, 3), np.uint8))
    (split / "target/e.png").write_bytes(b"not an image")
    (split / "input/e.png").write_bytes(b"nor this")
    with pytest.raises(Sam4irError) as err:
        scan_pairs(tmp_path, "train")
    head, *lines = str(err.value).split("\n")
    assert head == f"{split}: 5 bad files (fix them all, then rerun):"
    expected = [rf"input/b\.png: cannot decode", rf"input/c\.png: no target image",
                rf"input/d\.png: size 24x20 does not match its target .*d\.png \(23x20\)",
                rf"input/e\.png: cannot decode", rf"target/e\.png: cannot decode"]
    assert len(lines) == len(expected)  # every problem, pair a (sound) in none
    for line, pattern in zip(lines, expected):
        assert re.match(rf"  {re.escape(str(split))}/{pattern}", line), line


def test_scan_splits_reports_the_bad_files_of_every_split_at_once(tmp_path):
    for split in ("train", "test"):
        make_folder(tmp_path, {"a": (20, 24), "b": (20, 24)}, split)
        (tmp_path / split / "target/b.png").unlink()
    with pytest.raises(Sam4irError) as err:
        scan_splits(tmp_path, ("train", "test"))
    assert str(err.value).split("\n") == [f"{tmp_path}: 2 bad files (fix them all, then rerun):", *(
        f"  {tmp_path}/{split}/input/b.png: no target image with the same name in {tmp_path}/{split}/target"
        for split in ("test", "train"))]
    (tmp_path / "test/input/b.png").unlink()
    (tmp_path / "train/input/b.png").unlink()
    assert {split: [p.name for p in pairs] for split, pairs in scan_splits(tmp_path, ("train", "test")).items()} \
        == {"train": ["a"], "test": ["a"]}


def test_scan_pairs_missing_folders(tmp_path):
    with pytest.raises(Sam4irError, match="nowhere: dataset folder not found"):
        scan_pairs(tmp_path / "nowhere", "train")
    make_folder(tmp_path, {"a": (20, 24)})
    with pytest.raises(Sam4irError, match="test: split folder not found"):
        scan_pairs(tmp_path, "test")
    (tmp_path / "val" / "input").mkdir(parents=True)
    with pytest.raises(Sam4irError, match="val/target: folder not found"):
        scan_pairs(tmp_path, "val")
    (tmp_path / "val" / "target").mkdir()
    with pytest.raises(Sam4irError, match="val/input: no images"):
        scan_pairs(tmp_path, "val")


# --- the dataset and its transforms -----------------------------------------------------------------------------

def decode(item: dict, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Source (y, x) of every output pixel according to the mask, and according to the target's colours."""
    mask = item["mask"].numpy() - 1
    target = (item["target"].numpy() * 255).round().astype(int)
    return np.stack([mask // w, mask % w]), np.stack([target[1] // 5, target[0] // 5])


def coded_dataset(tmp_path: Path, augment: bool, w: int = 40) -> PairedDataset:
    """16x16 crops of one 30 x ``w`` pair whose mask and colours both encode each pixel's source position."""
    make_folder(tmp_path / "data", {"a": (30, w)}, masks_root=tmp_path / "masks")
    torch.manual_seed(0)
    return PairedDataset(tmp_path / "data", "train", crop=16, augment=augment, masks_root=tmp_path / "masks")


def test_crop_and_flips_are_the_same_for_input_target_and_mask(tmp_path):
    w = 40
    ds = coded_dataset(tmp_path, augment=True, w=w)
    layouts = set()
    for _ in range(40):
        item = ds[0]
        assert item["input"].shape == item["target"].shape == (3, 16, 16) and item["input"].dtype == torch.float32
        assert item["mask"].shape == (16, 16) and item["mask"].dtype == torch.int64
        from_mask, from_target = decode(item, w)
        assert np.array_equal(from_mask, from_target)  # mask and target went through the same transform
        assert torch.allclose(item["input"], 1 - item["target"], atol=1e-6)  # and so did the input
        # a window of the source: 16x16 distinct pixels, steps of one pixel along each output axis
        assert len(np.unique(item["mask"])) == 256
        step = tuple(from_mask[:, 0, 1] - from_mask[:, 0, 0]), tuple(from_mask[:, 1, 0] - from_mask[:, 0, 0])
        layouts.add(step)
    assert len(layouts) == 8  # all 8 flips/rotations occur


def test_without_augment_the_crop_is_a_plain_window(tmp_path):
    w = 40
    ds = coded_dataset(tmp_path, augment=False, w=w)
    corners = set()
    for _ in range(10):
        (ys, xs), _ = decode(ds[0], w)
        assert (ys == ys[:, :1]).all() and (xs == xs[:1]).all()  # rows share y, columns share x
        corners.add((ys[0, 0], xs[0, 0]))
    assert len(corners) > 1


def test_validation_is_held_out_from_training_never_the_test_split(tmp_path):
    """val_pairs.json moves training pairs into `val` and out of `train`; a generated `val` folder wins; the
    monitor refuses a validation pair smaller than its crop in one line."""
    make_folder(tmp_path / "data", {"a": (30, 40), "b": (30, 40), "c": (12, 12)})
    make_folder(tmp_path / "data", {"t": (30, 40)}, split="test")
    (tmp_path / "data" / "val_pairs.json").write_text('["b", "c"]')
    train = PairedDataset(tmp_path / "data", "train", crop=None, augment=False)
    val = PairedDataset(tmp_path / "data", "val", crop=None, augment=False)
    assert [p.name for p in train.pairs] == ["a"] and [p.name for p in val.pairs] == ["b", "c"]
    with pytest.raises(Sam4irError, match=r"validation pair 'c': 12x12 is smaller than train.crop 16"):
        held_out_psnr(torch.nn.Identity(), val, n=4, crop=16, device=torch.device("cpu"))
    make_folder(tmp_path / "data", {"v": (30, 40)}, split="val")
    assert [p.name for p in PairedDataset(tmp_path / "data", "val", crop=None, augment=False).pairs] == ["v"]


def test_test_split_returns_whole_images(tmp_path):
    make_folder(tmp_path / "data", {"a": (30, 40)}, split="test")
    ds = PairedDataset(tmp_path / "data", "test", crop=None, augment=False)
    degraded, target, _ = coordinate_images(30, 40)
    item = ds[0]
    assert item["name"] == "a" and "mask" not in item
    assert torch.equal(item["target"], torch.from_numpy(target).permute(2, 0, 1).float() / 255)
    assert torch.equal(item["input"], torch.from_numpy(degraded).permute(2, 0, 1).float() / 255)


def test_augment_without_crop_keeps_the_shape_of_non_square_images():
    for seed in range(20):
        t = random_transform(30, 40, None, True, generator=torch.Generator().manual_seed(seed))
        assert t.apply_one(np.zeros((30, 40))).shape == (30, 40)
    with pytest.raises(ValueError, match="differ in H x W"):
        PairedTransform().apply([np.zeros((4, 5)), np.zeros((5, 4))])


def test_items_do_not_share_memory_with_the_cache(tmp_path):
    make_folder(tmp_path / "data", {"a": (20, 20)}, split="test", masks_root=tmp_path / "masks")
    ds = PairedDataset(tmp_path / "data", "test", crop=None, augment=False, masks_root=tmp_path / "masks")
    ds[0]["mask"].zero_()
    assert ds[0]["mask"].min() == 1


@pytest.mark.parametrize("workers", [0, 2])
def test_seeded_dataloader_reproduces_the_augmentation(tmp_path, workers):
    make_folder(tmp_path / "data", {f"p{i}": (24, 28) for i in range(4)}, masks_root=tmp_path / "masks")
    ds = PairedDataset(tmp_path / "data", "train", crop=12, augment=True, masks_root=tmp_path / "masks")

    def masks(seed: int) -> torch.Tensor:
        loader = DataLoader(ds, batch_size=2, num_workers=workers, generator=torch.Generator().manual_seed(seed))
        if workers == 0:
            torch.manual_seed(seed)
        return torch.cat([batch["mask"] for batch in loader])

    assert torch.equal(masks(3), masks(3))
    assert not torch.equal(masks(3), masks(4))


def test_dataset_errors_name_the_file(tmp_path):
    make_folder(tmp_path / "data", {"a": (20, 24)}, masks_root=tmp_path / "masks")
    with pytest.raises(Sam4irError, match=r"input/a\.png: image 24x20 is smaller than the training crop 22"):
        PairedDataset(tmp_path / "data", "train", crop=22, augment=True)
    write_image(tmp_path / "masks" / "train" / "a.png", np.ones((20, 25), np.uint16))
    with pytest.raises(Sam4irError, match=r"masks/train/a\.png: label map is 25x20, image .*a\.png is 24x20"):
        PairedDataset(tmp_path / "data", "train", crop=16, augment=True, masks_root=tmp_path / "masks")
    (tmp_path / "masks" / "train" / "a.png").unlink()
    with pytest.raises(Sam4irError, match=r"masks/train/a\.png: label map missing"):
        PairedDataset(tmp_path / "data", "train", crop=16, augment=True, masks_root=tmp_path / "masks")
    write_image(tmp_path / "data" / "train" / "target" / "a.png", np.zeros((20, 23, 3), np.uint8))
    with pytest.raises(Sam4irError, match=r"input/a\.png: size 24x20 does not match"):
        PairedDataset(tmp_path / "data", "train", crop=16, augment=True)
    # without the cache the same checks run when the item is read
    lazy = PairedDataset(tmp_path / "data", "train", crop=16, augment=True, cache=False)
    with pytest.raises(Sam4irError, match=r"input/a\.png: size 24x20 does not match"):
        lazy[0]

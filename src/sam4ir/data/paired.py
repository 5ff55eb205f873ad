"""Paired restoration data in one layout for every task: ``<root>/<split>/{input,target}/<name>.<ext>``,
matched by file name; optional SAM label maps at ``<masks_root>/<split>/<name>.png``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from sam4ir.errors import Sam4irError
from sam4ir.io import read_image, read_label_map
from sam4ir.data.transforms import random_transform

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class Pair:
    name: str
    input: Path
    target: Path


def _images(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise Sam4irError(f"{folder}: folder not found")
    found = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in found:
                raise Sam4irError(f"{path}: two images named '{path.stem}' in {folder}")
            found[path.stem] = path
    return found


def _size(path: Path) -> tuple[int, int]:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise Sam4irError(f"{path}: cannot decode image (corrupt or unsupported format)")
    return img.shape[:2]


def scan_pairs(root: str | Path, split: str, *, check_images: bool = True) -> list[Pair]:
    """Validated pairs of ``<root>/<split>``: every input has a target of the same size and vice versa.

    Errors are one line naming the offending file.
    """
    base = Path(root) / split
    if not base.is_dir():
        raise Sam4irError(f"{base}: split folder not found (expected {base}/input and {base}/target)")
    inputs, targets = _images(base / "input"), _images(base / "target")
    for name in inputs.keys() - targets.keys():
        raise Sam4irError(f"{inputs[name]}: no target image with the same name in {base / 'target'}")
    for name in targets.keys() - inputs.keys():
        raise Sam4irError(f"{targets[name]}: no input image with the same name in {base / 'input'}")
    if not inputs:
        raise Sam4irError(f"{base}: no images in {base / 'input'}")
    pairs = [Pair(name, inputs[name], targets[name]) for name in sorted(inputs)]
    if check_images:
        for pair in pairs:
            a, b = _size(pair.input), _size(pair.target)
            if a != b:
                raise Sam4irError(f"{pair.input}: size {a[1]}x{a[0]} does not match its target {pair.target} ({b[1]}x{b[0]})")
    return pairs


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).float().div(255)


class PairedDataset(Dataset):
    """Items: ``{'input', 'target'}`` float 3 x H x W in [0, 1], ``'name'``, and ``'mask'`` (int64 H x W) when
    ``masks_root`` is given. With ``crop`` (training) a random crop and flip/rotation is drawn from torch's RNG
    and applied identically to input, target and mask."""

    def __init__(self, root: str | Path, split: str, *, crop: Optional[int], augment: bool,
                 masks_root: str | Path | None = None, cache: bool = True) -> None:
        self.pairs = scan_pairs(root, split)
        self.crop, self.augment, self.cache = crop, augment, cache
        self.masks = Path(masks_root) / split if masks_root is not None else None
        self._cached: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, i: int) -> tuple:
        if i in self._cached:
            return self._cached[i]
        pair = self.pairs[i]
        arrays = (read_image(pair.input), read_image(pair.target))
        if self.masks is not None:
            path = self.masks / f"{pair.name}.png"
            if not path.is_file():
                raise Sam4irError(f"{path}: label map missing for {pair.input} (run the sam_masks stage)")
            mask = read_label_map(path)
            if mask.shape != arrays[0].shape[:2]:
                raise Sam4irError(f"{path}: label map is {mask.shape[1]}x{mask.shape[0]}, image "
                                  f"{pair.input} is {arrays[0].shape[1]}x{arrays[0].shape[0]}")
            arrays += (mask,)
        if self.cache:
            self._cached[i] = arrays
        return arrays

    def __getitem__(self, i: int) -> dict:
        arrays = self._load(i)
        h, w = arrays[0].shape[:2]
        if self.crop is not None and (h < self.crop or w < self.crop):
            raise Sam4irError(f"{self.pairs[i].input}: image {w}x{h} is smaller than the training crop {self.crop}")
        t = random_transform(h, w, self.crop, self.augment)
        out = [t.apply(a) for a in arrays]
        item = {"input": _to_tensor(out[0]), "target": _to_tensor(out[1]), "name": self.pairs[i].name}
        if self.masks is not None:
            item["mask"] = torch.from_numpy(out[2])
        return item

"""Paired restoration data in one layout for every task: ``<root>/<split>/{input,target}/<name>.<ext>``,
matched by file name; optional SAM label maps at ``<masks_root>/<split>/<name>.png``.

The training monitor's ``val`` split is held out from *training* data, never taken from the test split: a
``<root>/val`` folder where the source generates one (the scenes demo), otherwise the training pairs listed in
``<root>/val_pairs.json``, which the ``train`` split then leaves out.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from sam4ir.data.transforms import random_transform
from sam4ir.errors import Sam4irError
from sam4ir.io import header_size, read_image, read_label_map

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VAL_PAIRS = "val_pairs.json"  # names of the training pairs held out for the training monitor
# Where one split holds several benchmark sets (deraining tests on five), names are ``<set>__<image>``.
SEPARATOR = "__"
# ``cache="auto"`` keeps decoded images in memory only below this many bytes per process: every torchrun process
# (and every stage run) holds its own copy, so a paper-size set (Rain13K: ~13 GB decoded, SIDD: ~30 GB) is read
# item by item instead, while the demo and small sets still skip decoding after the first epoch.
CACHE_LIMIT_BYTES = 2 << 30
Cache = Union[bool, Literal["auto"]]


@dataclass(frozen=True)
class Pair:
    name: str
    input: Path
    target: Path

    @property
    def test_set(self) -> str:
        """The benchmark set this pair belongs to: its name's ``<set>__`` prefix, or ``test`` without one."""
        return self.name.split(SEPARATOR, 1)[0] if SEPARATOR in self.name else "test"


def _images(folder: Path) -> dict[str, list[Path]]:
    """Image files of ``folder`` by stem (more than one is a problem for :func:`scan_pairs` to report); hidden
    files (e.g. a killed writer's temp files) are skipped."""
    if not folder.is_dir():
        raise Sam4irError(f"{folder}: folder not found")
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
            found.setdefault(path.stem, []).append(path)
    return found


def _size(path: Path) -> tuple[int, int]:
    header_size(path)  # refuses a decompression bomb before OpenCV allocates it
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise Sam4irError(f"{path}: cannot decode image (corrupt or unsupported format)")
    return img.shape[:2]


def decoded_bytes(pairs: list[Pair], with_masks: bool) -> int:
    """Bytes the cache would hold: RGB uint8 input and target, plus a uint16 label map per pair with masks.

    Sizes come from the inputs' headers (targets must match them; a mismatch is caught when the pair is read)."""
    per_pixel = 3 + 3 + (2 if with_masks else 0)
    return sum(per_pixel * h * w for h, w in (header_size(p.input) for p in pairs))


def _check_same_size(pair: Pair, a: tuple[int, int], b: tuple[int, int]) -> None:
    if a != b:
        raise Sam4irError(f"{pair.input}: size {a[1]}x{a[0]} does not match its target {pair.target} ({b[1]}x{b[0]})")


def _pair_problems(pair: Pair) -> list[str]:
    """What is wrong with a pair's images: each that does not decode, else a size mismatch; none if it is sound."""
    sizes, problems = [], []
    for path in (pair.input, pair.target):
        try:
            sizes.append(_size(path))
        except Sam4irError as err:
            problems.append(str(err))
    if not problems:
        try:
            _check_same_size(pair, *sizes)
        except Sam4irError as err:
            problems.append(str(err))
    return problems


def _refuse(base: Path, problems: list[str]) -> None:
    """One error for all the bad files under ``base``, one line each (a single one is the message itself), so that one
    run lists everything to fix rather than the first of them."""
    if len(problems) == 1:
        raise Sam4irError(problems[0])
    if problems:
        lines = "".join(f"\n  {problem}" for problem in sorted(problems))
        raise Sam4irError(f"{base}: {len(problems)} bad files (fix them all, then rerun):{lines}")


def scan_pairs(root: str | Path, split: str, *, check_images: bool = True) -> list[Pair]:
    """Validated pairs of ``<root>/<split>``, sorted by name: every input has a target and vice versa, and with
    ``check_images`` every image decodes and matches its partner's size (a full decode: thorough, not fast).

    A missing folder is one line naming it; bad files are all reported in one error, a line each naming the file.
    """
    return scan_splits(root, (split,), check_images=check_images)[split]


def scan_splits(root: str | Path, splits: Sequence[str], *, check_images: bool = True) -> dict[str, list[Pair]]:
    """:func:`scan_pairs` of several splits, their bad files all reported in one error (a dataset's train and test
    splits checked in one run)."""
    root = Path(root)
    if not root.is_dir():
        raise Sam4irError(f"{root}: dataset folder not found")
    scanned = {split: _scan(root / split, check_images) for split in splits}
    _refuse(root / splits[0] if len(splits) == 1 else root,
            [problem for _, problems in scanned.values() for problem in problems])
    return {split: pairs for split, (pairs, _) in scanned.items()}


def _scan(base: Path, check_images: bool) -> tuple[list[Pair], list[str]]:
    """The sound pairs of the split folder ``base`` and the problems of its other files, one line each."""
    if not base.is_dir():
        raise Sam4irError(f"{base}: split folder not found (expected {base}/input and {base}/target)")
    inputs, targets = _images(base / "input"), _images(base / "target")
    problems = [f"{path}: two images named '{stem}' in {path.parent}"
                for images in (inputs, targets) for stem, paths in images.items() for path in paths[1:]]
    problems += [f"{inputs[name][0]}: no target image with the same name in {base / 'target'}"
                 for name in sorted(inputs.keys() - targets.keys())]
    problems += [f"{targets[name][0]}: no input image with the same name in {base / 'input'}"
                 for name in sorted(targets.keys() - inputs.keys())]
    if not inputs and not problems:
        raise Sam4irError(f"{base / 'input'}: no images ({', '.join(IMAGE_SUFFIXES)})")
    pairs = [Pair(name, inputs[name][0], targets[name][0]) for name in sorted(inputs.keys() & targets.keys())
             if len(inputs[name]) == len(targets[name]) == 1]  # which of two images of a name pairs is unclear
    if check_images:
        problems += [problem for pair in pairs for problem in _pair_problems(pair)]
    return pairs, problems


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """RGB uint8 H x W x 3 -> float32 3 x H x W in [0, 1]."""
    return torch.from_numpy(img).permute(2, 0, 1).float().div(255)


def held_out_names(root: str | Path) -> set[str]:
    """Training pairs held out for validation (``<root>/val_pairs.json``); none if the file is absent."""
    path = Path(root) / VAL_PAIRS
    if not path.is_file():
        return set()
    try:
        names = json.loads(path.read_text())
    except ValueError as err:
        raise Sam4irError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise Sam4irError(f"{path}: expected a JSON list of training pair names")
    return set(names)


def split_pairs(root: str | Path, split: str) -> list[Pair]:
    """Pairs of ``split`` with the validation hold-out applied: ``train`` without the held-out pairs; ``val`` from
    ``<root>/val`` if it exists, else the held-out training pairs."""
    root = Path(root)
    if split not in ("train", "val"):
        return scan_pairs(root, split, check_images=False)
    if split == "val" and (root / "val").is_dir():
        return scan_pairs(root, "val", check_images=False)
    held_out = held_out_names(root)
    pairs = [p for p in scan_pairs(root, "train", check_images=False) if (p.name in held_out) == (split == "val")]
    if not pairs:
        raise Sam4irError(f"{root}: no {split} pairs ({VAL_PAIRS} holds {len(held_out)} of the training pairs)")
    return pairs


class PairedDataset(Dataset):
    """Items: ``'input'`` and ``'target'`` (float32 3 x H x W in [0, 1]), ``'name'``, and ``'mask'`` (int64 H x W
    label map) when ``masks_root`` is given.

    With ``crop`` (training) a random ``crop x crop`` window and, with ``augment``, one of the 8 flips/rotations
    are drawn from torch's RNG inside ``__getitem__`` (so a seeded DataLoader and its workers reproduce them)
    and applied identically to input, target and mask. The test split uses ``crop=None, augment=False``.
    With ``cache=True`` every pair is decoded and checked once, up front, and kept in memory (label maps as uint16);
    ``False`` reads and checks each item when it is drawn; ``"auto"`` caches only when the decoded set, estimated
    from the image headers, fits ``cache_limit`` bytes (:data:`CACHE_LIMIT_BYTES`): the demo is cached, Rain13K-
    or SIDD-sized sets are not, so no process holds tens of GB.
    """

    def __init__(self, root: str | Path, split: str, *, crop: Optional[int], augment: bool,
                 masks_root: str | Path | None = None, cache: Cache = "auto",
                 cache_limit: int = CACHE_LIMIT_BYTES) -> None:
        if crop is not None and crop < 1:
            raise Sam4irError(f"crop: {crop} must be a positive number of pixels")
        if not (isinstance(cache, bool) or cache == "auto"):
            raise Sam4irError(f"cache: {cache!r} is not one of auto, true, false")
        self.pairs = split_pairs(root, split)  # decoding below checks the images
        self.crop, self.augment = crop, augment
        self.masks = Path(masks_root) / split if masks_root is not None else None
        if cache == "auto":
            need = decoded_bytes(self.pairs, self.masks is not None)
            cache = need <= cache_limit
            if not cache:
                print(f"sam4ir: {Path(root) / split}: {len(self.pairs)} pairs decode to {need / 2**30:.1f} GiB, above "
                      f"the {cache_limit / 2**30:.1f} GiB cache limit per process (cache_images: auto); reading "
                      f"images as they are drawn", file=sys.stderr)
        self.cached = bool(cache)
        self._cache = [self._load(i, keep=True) for i in range(len(self.pairs))] if cache else None

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, i: int, keep: bool = False) -> list[np.ndarray]:
        """Decoded, validated ``[input, target(, mask)]`` of pair ``i``; ``keep``: the mask as uint16 (a quarter
        of int64's memory; label maps are 16-bit PNGs, so nothing is lost)."""
        pair = self.pairs[i]
        img, target = read_image(pair.input), read_image(pair.target)
        _check_same_size(pair, img.shape[:2], target.shape[:2])
        h, w = img.shape[:2]
        if self.crop is not None and (h < self.crop or w < self.crop):
            raise Sam4irError(f"{pair.input}: image {w}x{h} is smaller than the training crop {self.crop}")
        arrays = [img, target]
        if self.masks is not None:
            path = self.masks / f"{pair.name}.png"
            if not path.is_file():
                raise Sam4irError(f"{path}: label map missing for {pair.input} (run the sam_masks stage)")
            mask = read_label_map(path)
            if mask.shape != (h, w):
                raise Sam4irError(f"{path}: label map is {mask.shape[1]}x{mask.shape[0]}, "
                                  f"image {pair.input} is {w}x{h}")
            arrays.append(mask.astype(np.uint16) if keep else mask)
        return arrays

    def __getitem__(self, i: int) -> dict:
        arrays = self._cache[i] if self._cache is not None else self._load(i)
        h, w = arrays[0].shape[:2]
        out = random_transform(h, w, self.crop, self.augment).apply(arrays)
        item = {"input": _to_tensor(out[0]), "target": _to_tensor(out[1]), "name": self.pairs[i].name}
        if self.masks is not None:
            item["mask"] = torch.from_numpy(out[2].astype(np.int64, copy=False))
        return item

"""Atomic file output and validated image input.

Every output goes through a temp file in the destination folder and an ``os.replace``
so that a killed stage never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import cv2
import numpy as np
import torch

from sam4ir.errors import Sam4irError


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``dest``; rename it onto ``dest`` only if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp" + dest.suffix, dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` atomically, byte-identical for identical contents: through a file object, so the archive's
    inner folder is always ``archive`` rather than the random temp name (DVC hashes the bytes)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def files_sha256(files: Iterable[str | os.PathLike]) -> str:
    """sha256 over the names and contents of ``files``, in order: the identity of what a result was made from."""
    digest = hashlib.sha256()
    for path in map(Path, files):
        with open(path, "rb") as f:
            digest.update(f"{path.name}\0".encode() + hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an 8-bit image as RGB ``H x W x 3`` uint8; one-line error if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise Sam4irError(f"{path}: image file not found")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise Sam4irError(f"{path}: cannot decode image (corrupt or unsupported format)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_image(path: str | os.PathLike, img: np.ndarray) -> None:
    """Write RGB uint8 (``H x W x 3``) or a single-channel uint8/uint16 map (``H x W``) as PNG, atomically."""
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    with atomic_path(Path(path).with_suffix(".png")) as tmp:
        if not cv2.imwrite(str(tmp), img):
            raise Sam4irError(f"{path}: could not write image")


def read_label_map(path: str | os.PathLike) -> np.ndarray:
    """Read a 16-bit label-map PNG (``H x W``, 0 = unlabelled) as int64."""
    path = Path(path)
    lab = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if lab is None or lab.ndim != 2:
        raise Sam4irError(f"{path}: cannot decode label map (expected a single-channel PNG)")
    return lab.astype(np.int64)

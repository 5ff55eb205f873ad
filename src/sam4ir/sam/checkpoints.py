"""The official SAM checkpoints and getting one onto disk, verified.

Meta's file names end in the first hex digits of the file's **MD5** (``sam_vit_h_4b8939.pth``:
MD5 ``4b8939a8...``), not of its sha256 as torch.hub names do; that prefix is what we check.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse

from sam4ir.download import download as fetch_file
from sam4ir.errors import Sam4irError

_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything"
SAM_CHECKPOINTS = {  # model type -> (file name, URL), from the segment-anything README
    "vit_h": ("sam_vit_h_4b8939.pth", f"{_BASE_URL}/sam_vit_h_4b8939.pth"),
    "vit_l": ("sam_vit_l_0b3195.pth", f"{_BASE_URL}/sam_vit_l_0b3195.pth"),
    "vit_b": ("sam_vit_b_01ec64.pth", f"{_BASE_URL}/sam_vit_b_01ec64.pth"),
}


def ensure_checkpoint(model_type: str, path: str | os.PathLike, download: bool, *,
                      url: str | None = None, progress: bool = True) -> Path:
    """``path`` if present; otherwise download ``url`` (default: the official one for ``model_type``) there.

    The MD5 prefix is read from the URL's file name, so ``path`` may be named freely.
    Absent with ``download=False`` -> one-line error saying what to put where.
    """
    path = Path(path)
    if path.is_file():
        return path
    if url is None:
        if model_type not in SAM_CHECKPOINTS:
            raise Sam4irError(f"{path}: SAM checkpoint not found, and there is no official download for "
                              f"model type {model_type!r} (known: {sorted(SAM_CHECKPOINTS)})")
        url = SAM_CHECKPOINTS[model_type][1]
    name = Path(urlparse(url).path).name
    if not download:
        raise Sam4irError(f"{path}: SAM checkpoint not found and sam.download is false; "
                          f"download {url} and save it as {path}")
    return fetch_file(url, path, md5_prefix=md5_prefix_from_name(name), progress=progress)


def md5_prefix_from_name(name: str) -> str:
    """``sam_vit_h_4b8939.pth`` -> ``4b8939``: the hex digits after the last ``_`` of the stem."""
    match = re.search(r"_([0-9a-f]{6,})$", Path(name).stem)
    if not match:
        raise Sam4irError(f"{name}: file name carries no hash prefix (expected <name>_<hex>.pth)")
    return match.group(1)

"""The official SAM checkpoints and getting one onto disk, verified.

Meta's file names end in the first hex digits of the file's **MD5** (``sam_vit_h_4b8939.pth``:
MD5 ``4b8939a8...``), not of its sha256 as torch.hub names do. The official files are checked against their full
sha256 instead, present or downloaded; a checkpoint from any other URL is checked by the MD5 prefix its name carries.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse

from sam4ir.download import cached_sha256
from sam4ir.download import download as fetch_file
from sam4ir.errors import Sam4irError

_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything"
SAM_CHECKPOINTS = {  # model type -> (file name, URL), from the segment-anything README
    "vit_h": ("sam_vit_h_4b8939.pth", f"{_BASE_URL}/sam_vit_h_4b8939.pth"),
    "vit_l": ("sam_vit_l_0b3195.pth", f"{_BASE_URL}/sam_vit_l_0b3195.pth"),
    "vit_b": ("sam_vit_b_01ec64.pth", f"{_BASE_URL}/sam_vit_b_01ec64.pth"),
}
# Full sha256 of the official files by name. Meta publishes none; these are the digests pinned in micro-sam's model
# registry (github.com/computational-cell-analytics/micro-sam, micro_sam/util.py), which verifies every download of
# these exact URLs against them; other public projects pin the same three digests.
SAM_SHA256 = {
    "sam_vit_h_4b8939.pth": "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
    "sam_vit_l_0b3195.pth": "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
    "sam_vit_b_01ec64.pth": "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
}


def ensure_checkpoint(model_type: str, path: str | os.PathLike, download: bool, *,
                      url: str | None = None, progress: bool = True) -> Path:
    """``path``, verified; downloaded first from ``url`` (default: the official one for ``model_type``) if absent.

    The file is identified by the name in ``url`` when one is given, else by the name of ``path``. An official
    file must have its full sha256 (:data:`SAM_SHA256`), also when already present: a damaged or swapped file
    fails here in one line instead of loading into a broken model. The digest is read once and remembered beside
    the file (``<path>.sha256``), so a 2.5 GB checkpoint is not re-read on every run. Other downloads are checked
    by the MD5 prefix of their URL's file name; other present files (custom checkpoints) are used as they are.
    Absent with ``download=False`` -> one-line error saying what to put where.
    """
    path = Path(path)
    if path.is_file():
        name = _url_name(url) if url else path.name
        if name in SAM_SHA256:
            _check_official(path, name, url or f"{_BASE_URL}/{name}")
        return path
    if url is None:
        if model_type not in SAM_CHECKPOINTS:
            raise Sam4irError(f"{path}: SAM checkpoint not found, and there is no official download for "
                              f"model type {model_type!r} (known: {sorted(SAM_CHECKPOINTS)})")
        url = SAM_CHECKPOINTS[model_type][1]
    name = _url_name(url)
    if not download:
        raise Sam4irError(f"{path}: SAM checkpoint not found and sam.download is false; "
                          f"download {url} and save it as {path}")
    if name in SAM_SHA256:
        return fetch_file(url, path, sha256=SAM_SHA256[name], progress=progress)
    return fetch_file(url, path, md5_prefix=md5_prefix_from_name(name), progress=progress)


def md5_prefix_from_name(name: str) -> str:
    """``sam_vit_h_4b8939.pth`` -> ``4b8939``: the hex digits after the last ``_`` of the stem."""
    match = re.search(r"_([0-9a-f]{6,})$", Path(name).stem)
    if not match:
        raise Sam4irError(f"{name}: file name carries no hash prefix (expected <name>_<hex>.pth)")
    return match.group(1)


def _url_name(url: str) -> str:
    return Path(urlparse(url).path).name


def _check_official(path: Path, name: str, url: str) -> None:
    """Raise unless ``path`` has the sha256 of the official ``name`` (from its ``.sha256`` record when current)."""
    found, expected = cached_sha256(path), SAM_SHA256[name]
    if found != expected:
        raise Sam4irError(f"{path}: not the official {name} (sha256 {found}, expected {expected}): damaged or "
                          f"another file; delete it and run again with sam.download: true, or download {url} there")

"""Resumable, verified downloads of large files (SAM checkpoints, datasets).

Bytes stream into ``<dest>.part``; a later call resumes it with an HTTP Range request,
and the file is renamed onto ``dest`` only once it is complete and its hash matches,
so ``dest`` existing means "whole and verified". Standard library only (``urllib``),
which also gives ``file://`` URLs for free.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from sam4ir.errors import Sam4irError


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, sha256_prefix: str | None = None,
             md5_prefix: str | None = None, progress: bool = True, timeout: float = 30,
             chunk_size: int = 1 << 20) -> Path:
    """Fetch ``url`` to ``dest`` unless it exists; resume a partial download; verify; return ``dest``.

    ``sha256`` is a full hex digest; ``sha256_prefix`` / ``md5_prefix`` are leading hex digits
    (the convention of file names such as torch.hub's ``name-<sha256 prefix>.pth`` or SAM's
    ``sam_vit_h_<md5 prefix>.pth``). A file failing a check is deleted and a one-line
    :class:`Sam4irError` names it with the expected and actual digests.
    """
    dest = Path(dest)
    if dest.is_file():
        return dest
    checks = _checks(sha256, sha256_prefix, md5_prefix)
    part = dest.with_suffix(dest.suffix + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _fetch(url, dest, part, progress=progress, timeout=timeout, chunk_size=chunk_size)
    _verify(part, dest, checks)
    os.replace(part, dest)
    return dest


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks (checkpoints are gigabytes)."""
    return _digests(Path(path), ["sha256"])["sha256"]


def _checks(sha256: str | None, sha256_prefix: str | None, md5_prefix: str | None) -> list[tuple[str, str, str]]:
    """(algorithm, expected leading hex digits, label) for every hash the caller gave."""
    checks = []
    for algo, expected, label in [("sha256", sha256, "sha256"), ("sha256", sha256_prefix, "sha256 prefix"),
                                  ("md5", md5_prefix, "md5 prefix")]:
        if expected is None:
            continue
        if not re.fullmatch(r"[0-9a-fA-F]+", expected) or (label == "sha256" and len(expected) != 64):
            raise Sam4irError(f"invalid {label} {expected!r}: expected hex digits")
        checks.append((algo, expected.lower(), label))
    return checks


def _fetch(url: str, dest: Path, part: Path, *, progress: bool, timeout: float, chunk_size: int) -> None:
    """Stream ``url`` into ``part``, continuing from its current size when the server honours Range."""
    offset = part.stat().st_size if part.is_file() else 0
    try:
        resp = urllib.request.urlopen(_request(url, offset), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code != 416 or offset == 0:
            raise _unreachable(url, dest, f"HTTP {err.code} {err.reason}") from None
        # Range not satisfiable: the .part is already whole (then verify it) or longer than the file.
        if _content_range(err.headers.get("Content-Range", ""))[1] == offset:
            return
        part.unlink()
        return _fetch(url, dest, part, progress=progress, timeout=timeout, chunk_size=chunk_size)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise _unreachable(url, dest, _reason(err)) from None
    with resp:
        if getattr(resp, "status", None) == 206:
            start, total = _content_range(resp.headers.get("Content-Range", ""))
            if start != offset:
                raise _unreachable(url, dest, f"asked for bytes from {offset}, server sent from {start}")
        else:  # full body: no Range asked, or the server ignored it
            offset = 0
            length = resp.headers.get("Content-Length")
            total = int(length) if length is not None else None
        with open(part, "ab" if offset else "wb") as out, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=dest.name, disable=not progress, leave=False) as bar:
            try:
                while chunk := resp.read(chunk_size):
                    out.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as err:
                raise Sam4irError(f"download of {dest.name} from {url} was interrupted ({_reason(err)}); "
                                  f"run again to resume, or download it manually to {dest}") from None
    size = part.stat().st_size
    if total is not None and size != total:
        raise Sam4irError(f"download of {dest.name} from {url} stopped at {size} of {total} bytes; "
                          f"run again to resume, or download it manually to {dest}")


def _request(url: str, offset: int) -> urllib.request.Request:
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    return urllib.request.Request(url, headers=headers)


def _content_range(value: str) -> tuple[int | None, int | None]:
    """(first byte, total size) from ``Content-Range: bytes 10-99/100`` or ``bytes */100``."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value)
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total != "*" else None)


def _unreachable(url: str, dest: Path, reason: str) -> Sam4irError:
    return Sam4irError(f"{dest.name} is missing and could not be downloaded from {url} ({reason}); "
                       f"download it manually to {dest}")


def _reason(err: BaseException) -> str:
    reason = getattr(err, "reason", None) or err
    return " ".join(str(reason).split()) or type(err).__name__


def _verify(part: Path, dest: Path, checks: list[tuple[str, str, str]]) -> None:
    """Delete ``part`` and raise if any digest does not start with the expected hex digits."""
    if not checks:
        return
    actual = _digests(part, sorted({algo for algo, _, _ in checks}))
    for algo, expected, label in checks:
        if not actual[algo].startswith(expected):
            part.unlink()
            raise Sam4irError(f"{dest.name}: {label} mismatch (expected {expected}, got {actual[algo]}); "
                              f"the download was deleted")


def _digests(path: Path, algorithms: list[str]) -> dict[str, str]:
    hashers = {algo: hashlib.new(algo) for algo in algorithms}
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            for h in hashers.values():
                h.update(chunk)
    return {algo: h.hexdigest() for algo, h in hashers.items()}

"""One archive into the download cache: from its official sources (or a mirror), resumable, verified against the
manifest's pin, or pinned there on first download."""

from __future__ import annotations

from pathlib import Path

from sam4ir.datasets import lock
from sam4ir.datasets.extract import check_archive
from sam4ir.datasets.registry import Archive, Source
from sam4ir.download import UnreachableError, cached_sha256, download
from sam4ir.errors import Sam4irError


def fetch_archive(archive: Archive, cache: Path, manifest: Path, *, mirror: str | None = None,
                  pull_hint: str = "", progress: bool = True, timeout: float = 30) -> Path:
    """``cache/<archive.file>``, downloaded unless present, and checked against its pin in ``manifest``.

    Sources are tried in order while they are unreachable; with ``mirror`` (a base URL or a folder holding the
    archives under their cache names) only the mirror is asked. When every source fails the one-line error names
    each URL with its reason, where to put the file by hand, and ``pull_hint`` (e.g. a ``dvc pull`` to try).
    A partial download is kept and resumed on the next call. An archive that has no pin yet is read through
    (:func:`check_archive`) and then pinned, so a corrupt first download is never pinned. An archive's digest is
    computed once and remembered beside it (``<file>.sha256``): a later run verifies a multi-GB cache by a ``stat``.
    """
    dest = cache / archive.file
    pinned = lock.read_pins(manifest).get(archive.file)
    url = None
    if dest.is_file():
        if pinned is not None:
            _check_pin(dest, pinned, manifest)
    else:
        url = _download(archive, dest, pinned, mirror=mirror, pull_hint=pull_hint, progress=progress,
                        timeout=timeout)
    if pinned is None:
        try:
            check_archive(dest)
        except Sam4irError as err:
            if url is None:
                raise Sam4irError(f"{err}; replace it, or delete it to download it") from None
            dest.unlink()  # a fresh download that is not what it claims to be (an error page, a cut file)
            raise Sam4irError(f"{err}; the download from {url} was deleted, run again to retry") from None
        lock.pin(manifest, archive.file, cached_sha256(dest), dest.stat().st_size, url)
    return dest


def _download(archive: Archive, dest: Path, pinned: lock.Pin | None, *, mirror: str | None, pull_hint: str,
              progress: bool, timeout: float) -> str:
    """Download from the first source that answers; return its URL."""
    sources = (_mirror_source(mirror, archive.file),) if mirror else archive.sources
    failures = []
    for source in sources:
        try:
            download(source.url, dest, sha256=pinned.sha256 if pinned else None, progress=progress,
                     timeout=timeout, google_drive=source.google_drive)
            return source.url
        except UnreachableError as err:
            failures.append(f"{err.url}: {err.reason}")
    where = "the mirror" if mirror else archive.where
    raise Sam4irError(f"{archive.file} could not be downloaded ({'; '.join(failures)}); download it by hand from "
                      f"{where} and place it at {dest}{pull_hint}")


def _mirror_source(mirror: str, file: str) -> Source:
    base = mirror if "://" in mirror else Path(mirror).absolute().as_uri()
    return Source(f"{base.rstrip('/')}/{file}")


def _check_pin(path: Path, pinned: lock.Pin, manifest: Path) -> None:
    """The cached archive against its pin; its digest is read once and then remembered (``<file>.sha256``)."""
    actual = cached_sha256(path)
    if actual != pinned.sha256:
        raise Sam4irError(f"{path}: sha256 mismatch (expected {pinned.sha256}, {pinned.size} bytes, from {manifest}; "
                          f"got {actual}, {path.stat().st_size} bytes); delete it to download it again")

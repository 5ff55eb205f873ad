"""Degraded/clean pairs read straight out of downloaded archives (zip, tar, MATLAB blocks), one pair at a time.

Nothing is unpacked to disk: a :class:`PairSource` lists the pairs' names up front and decodes a pair on demand,
so a resumed extraction skips finished pairs without reading them.
"""

from __future__ import annotations

import contextlib
import re
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import IO, Iterator, Protocol

import numpy as np

from sam4ir.datasets.registry import FolderPairs, MatBlocks
from sam4ir.errors import Sam4irError
from sam4ir.io import decode_image

_ARCHIVE_ERRORS = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError, ValueError)

MAX_MEMBER_BYTES = 1 << 30
"""Largest member unpacked (one image; the registered sets' largest are tens of MB): a bigger declared size is a
corrupt header or a decompression bomb, refused before a byte of it is read."""
MAX_RATIO = 100
"""Largest zip compression ratio of a member over :data:`_RATIO_FLOOR`: images barely compress, while a zip bomb's
zeros deflate about 1000:1."""
_RATIO_FLOOR = 1 << 20  # smaller members cannot hurt, whatever their ratio (a blank text file compresses well)
_CHUNK = 1 << 20


class PairSource(Protocol):
    """The pairs of one dataset: ``names`` (sorted) and ``load(name) -> (input, target)``, RGB uint8 H x W x 3."""

    names: list[str]

    def load(self, name: str) -> tuple[np.ndarray, np.ndarray]: ...


def check_archive(path: Path) -> None:
    """Read every byte of an archive once (zip CRCs, tar headers, MATLAB header): a truncated or foreign file
    (an error page saved as ``.zip``) or a decompression bomb fails here, in one line, before its digest is
    pinned. Members are streamed in chunks, so memory stays flat whatever their size."""
    if path.suffix.lower() == ".mat":
        with open(path, "rb") as f:
            if not f.read(128).startswith(b"MATLAB"):
                raise Sam4irError(f"{path}: not a MATLAB .mat file")
        return
    with _open_members(path) as members:
        for name in members.names():
            members.check(name)


@contextlib.contextmanager
def open_pairs(layout: FolderPairs | MatBlocks, files: dict[str, Path]) -> Iterator[PairSource]:
    """The pairs ``layout`` describes, read from the downloaded ``files`` (archive name -> path)."""
    if isinstance(layout, MatBlocks):
        yield _MatBlockPairs(files[layout.input_file], layout.input_key, files[layout.target_file],
                             layout.target_key)
        return
    with _open_members(files[layout.archive]) as members:
        yield _ArchivePairs(members, layout, files[layout.archive])


class _Members:
    """Regular files of a zip or tar archive by their ``/``-separated path; read errors are one line, and members
    over :data:`MAX_MEMBER_BYTES` or :data:`MAX_RATIO` are refused before they are read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            if path.name.lower().endswith(".zip"):
                archive = zipfile.ZipFile(path)
                self._files = {i.filename.replace("\\", "/"): i for i in archive.infolist() if not i.is_dir()}
                self._sizes = {name: (i.file_size, i.compress_size) for name, i in self._files.items()}
                self._open = archive.open
            elif re.search(r"\.(tar|tgz|tar\.gz|tar\.bz2|tar\.xz)$", path.name.lower()):
                archive = tarfile.open(path, "r:*")
                self._files = {m.name: m for m in archive.getmembers() if m.isfile()}
                self._sizes = {name: (m.size, None) for name, m in self._files.items()}  # tar compresses as a whole
                self._open = archive.extractfile
            else:
                raise Sam4irError(f"{path}: unknown archive type (expected .zip, .tar, .tar.gz, .tgz, .tar.bz2, "
                                  f".tar.xz)")
        except _ARCHIVE_ERRORS as err:
            raise Sam4irError(f"{path}: corrupt or not an archive ({_reason(err)})") from None
        self.close = archive.close

    def names(self) -> list[str]:
        return list(self._files)

    def read(self, name: str) -> bytes:
        """The whole member (one image to decode)."""
        with self._stream(name) as f:
            return f.read()

    def check(self, name: str) -> None:
        """Read the member through in chunks, which checks its CRC (zip) or its length (tar)."""
        with self._stream(name) as f:
            while f.read(_CHUNK):
                pass

    @contextlib.contextmanager
    def _stream(self, name: str) -> Iterator[IO[bytes]]:
        """The member as a file; zip and tar readers stop at its declared size, which is checked first."""
        size, packed = self._sizes[name]
        if size > MAX_MEMBER_BYTES:
            raise Sam4irError(f"{self.path}: member {name} unpacks to {size} bytes, over the limit of "
                              f"{MAX_MEMBER_BYTES} (a corrupt header or a decompression bomb); refused")
        if packed is not None and size > _RATIO_FLOOR and size > MAX_RATIO * packed:
            raise Sam4irError(f"{self.path}: member {name} unpacks {packed} bytes to {size}, a ratio over "
                              f"{MAX_RATIO}:1 (a zip bomb, not images); refused")
        try:
            with self._open(self._files[name]) as f:
                yield f
        except _ARCHIVE_ERRORS as err:
            raise Sam4irError(f"{self.path}: member {name} is corrupt ({_reason(err)})") from None


@contextlib.contextmanager
def _open_members(path: Path) -> Iterator[_Members]:
    members = _Members(path)
    try:
        yield members
    finally:
        members.close()


class _ArchivePairs:
    """Pairs of archive members matched by :class:`FolderPairs` regexes."""

    def __init__(self, members: _Members, layout: FolderPairs, path: Path) -> None:
        self._members, self._path = members, path
        inputs = _match(members.names(), layout.input, path)
        targets = _match(members.names(), layout.target, path)
        if not inputs:
            raise Sam4irError(f"{path}: no member matches .../{layout.input} (not the expected archive layout)")
        for key in sorted(inputs.keys() - targets.keys()):
            raise Sam4irError(f"{path}: {inputs[key]} has no target (a member matching .../{layout.target} "
                              f"with {dict(key)})")
        for key in sorted(targets.keys() - inputs.keys()):
            raise Sam4irError(f"{path}: {targets[key]} has no input (a member matching .../{layout.input} "
                              f"with {dict(key)})")
        self._pairs = {_name(key): (inputs[key], targets[key]) for key in inputs}
        self.names = sorted(self._pairs)

    def load(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        input_member, target_member = self._pairs[name]
        img = _decode(self._members.read(input_member), f"{self._path}: {input_member}")
        target = _decode(self._members.read(target_member), f"{self._path}: {target_member}")
        if img.shape != target.shape:
            raise Sam4irError(f"{self._path}: {input_member} is {img.shape[1]}x{img.shape[0]} but its target "
                              f"{target_member} is {target.shape[1]}x{target.shape[0]}")
        return img, target


Key = tuple[tuple[str, str], ...]


def _match(names: list[str], pattern: str, path: Path) -> dict[Key, str]:
    """Members whose path ends like ``pattern``, by their named groups in pattern order. The ``ext`` group joins
    the key only for members that differ by nothing else (``1.png`` and ``1.jpg``), so ``1.png`` still pairs with a
    ``1.jpg`` target. Hidden files and macOS resource forks (``__MACOSX/``, ``._*``) are skipped."""
    rx = re.compile(rf"(?:^|/)(?:{pattern})$", re.IGNORECASE)
    by_stem: dict[Key, list[tuple[str, str]]] = {}
    for name in names:
        if "__MACOSX" in name.split("/") or name.rsplit("/", 1)[-1].startswith("."):
            continue
        m = rx.search(name)
        if m is not None:
            groups = m.groupdict()
            ext = groups.pop("ext", "")
            by_stem.setdefault(tuple(groups.items()), []).append((ext, name))
    found: dict[Key, str] = {}
    for stem, members in by_stem.items():
        for ext, name in members:
            key = stem if len(members) == 1 else stem + (("ext", ext.lower()),)
            if key in found:
                raise Sam4irError(f"{path}: members {found[key]} and {name} both match .../{pattern} "
                                  f"with {dict(key)}")
            found[key] = name
    return found


def _name(key: Key) -> str:
    return "_".join(value for _, value in key)


def _decode(data: bytes, where: str) -> np.ndarray:
    return decode_image(data, where)  # truncated members are errors, not grey-filled images


class _MatBlockPairs:
    """Pairs of :class:`MatBlocks`: both arrays are loaded once (the SIDD validation blocks are ~250 MB each)."""

    def __init__(self, input_path: Path, input_key: str, target_path: Path, target_key: str) -> None:
        self._inputs = _load_blocks(input_path, input_key)
        self._targets = _load_blocks(target_path, target_key)
        if self._inputs.shape != self._targets.shape:
            raise Sam4irError(f"{input_path}: blocks {self._inputs.shape} do not match {target_path} "
                              f"{self._targets.shape}")
        n, k = self._inputs.shape[:2]
        self._index = {f"{i + 1:04d}_{j + 1:02d}": (i, j) for i in range(n) for j in range(k)}
        self.names = sorted(self._index)

    def load(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        i, j = self._index[name]
        return np.ascontiguousarray(self._inputs[i, j]), np.ascontiguousarray(self._targets[i, j])


def _load_blocks(path: Path, key: str) -> np.ndarray:
    """Variable ``key`` of a MATLAB (v4-v7.2) file as N x K x H x W x 3 uint8."""
    import scipy.io  # only the SIDD blocks need it

    try:
        variables = scipy.io.loadmat(path, variable_names=[key])
    except NotImplementedError:  # scipy's answer to v7.3 (HDF5) files
        raise Sam4irError(f"{path}: MATLAB v7.3 file; scipy reads v4-v7.2 only (re-save it with -v7)") from None
    except (ValueError, OSError, TypeError) as err:
        raise Sam4irError(f"{path}: cannot read MATLAB file ({_reason(err)})") from None
    if key not in variables:
        raise Sam4irError(f"{path}: no variable '{key}'")
    blocks = variables[key]
    if blocks.ndim != 5 or blocks.shape[-1] != 3 or blocks.dtype != np.uint8:
        raise Sam4irError(f"{path}: '{key}' is {blocks.dtype} {blocks.shape}, expected uint8 N x K x H x W x 3")
    return blocks


def _reason(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__

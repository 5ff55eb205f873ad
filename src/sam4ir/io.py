"""Atomic, verified file output and strict image input.

Every output goes through a hidden temp file in the destination folder, ``.<name>.<random>.partial`` (no reader's
``*.png`` / ``*.json`` / ``*`` + suffix pattern matches it), written with checked writes, verified, synced to disk
and given the permissions the umask allows, and only then renamed onto its name: a killed stage or a full disk
never leaves a half-written file under a real name. Failures are one-line ``Sam4irError``s naming the target.

Inputs are read whole and checked for truncation before OpenCV decodes them, because OpenCV decodes a truncated
JPEG into a grey-filled image and only prints "Premature end of JPEG file".
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import struct
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import cv2
import numpy as np
import torch
from PIL import Image

from sam4ir.errors import Sam4irError

TEMP_SUFFIX = ".partial"  # not an image, JSON or checkpoint suffix: globbing readers never see temp files

JPEG_SOI, JPEG_EOI = b"\xff\xd8\xff", b"\xff\xd9"
# Decodes above this many pixels are refused from the header (the largest benchmark images, SIDD's 5256x3000, are
# 16 MP; Pillow refuses above 179 MP by default): a 1 MB PNG claiming 20000x20000 would otherwise take 5 GB.
# Stages set it from data.max_pixels (limit_pixels).
MAX_PIXELS = 180_000_000


def limit_pixels(n: int) -> None:
    """Refuse, from the header, every image above ``n`` pixels this process reads from now on."""
    global MAX_PIXELS
    MAX_PIXELS = n
PNG_SIGNATURE, PNG_IEND = b"\x89PNG\r\n\x1a\n", b"\x00\x00\x00\x00IEND\xaeB`\x82"

_reported: set[str] = set()  # one-time notes already given in this process


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _write_error(dest: Path, e: OSError) -> Sam4irError:
    """One line naming ``dest``; a file the error names is kept unless it is our temp file: it may be the cause."""
    detail = e.strerror or str(e)
    if e.filename is not None and not _is_temp_of(Path(os.fsdecode(e.filename)), dest):
        detail += f": {os.fsdecode(e.filename)}"
    return Sam4irError(f"{dest}: cannot write ({_one_line(detail)})")


def _is_temp_of(path: Path, dest: Path) -> bool:
    return path.name.startswith(f".{dest.name}.") and path.name.endswith(TEMP_SUFFIX)


def _umask() -> int:
    """The process umask: from /proc where possible, since ``os.umask`` can only read it by setting it (a
    window in which another thread's files would get the temporary mask; 077 keeps that window harmless)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    old = os.umask(0o077)
    os.umask(old)
    return old


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; best effort, as some file systems cannot sync a folder."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _staged(dest: Path) -> Iterator[tuple[int, Path]]:
    """An open temp file beside ``dest``; if the block succeeds it is synced, made ``0o666 & ~umask`` (mkstemp
    makes 0600) and renamed onto ``dest``; in every other case it is removed. OS errors name ``dest``."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=TEMP_SUFFIX, dir=dest.parent)
    except OSError as e:
        raise _write_error(dest, e) from e
    tmp = Path(name)
    try:
        try:
            yield fd, tmp
            os.fsync(fd)
            os.fchmod(fd, 0o666 & ~_umask())
        finally:
            os.close(fd)
        os.replace(tmp, dest)
    except OSError as e:
        raise _write_error(dest, e) from e
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    _fsync_dir(dest.parent)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``dest`` for writers that need a path (pandas, matplotlib); it becomes ``dest``
    (synced, umask permissions) only if the block succeeds. The temp name ends in ``.partial``, so a writer that
    picks its format from the suffix must be told the format."""
    with _staged(Path(dest)) as (_, tmp):
        yield tmp


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until every byte is written: a short write is resumed, a failed one raises."""
    view = memoryview(data).cast("B")
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.EIO, "write wrote nothing")
        view = view[n:]


def _read_back(fd: int, size: int, dest: Path) -> bytes:
    """The temp file's bytes as the file system returns them; its size must be ``size``."""
    if (found := os.fstat(fd).st_size) != size:
        raise Sam4irError(f"{dest}: wrote {found} bytes but {size} were given")
    chunks, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def write_bytes(path: str | os.PathLike, data: bytes, check: Callable[[bytes], None] | None = None) -> None:
    """Write ``data`` atomically; the bytes are read back and compared (and ``check``ed, e.g. decoded) before the
    file gets its name, so a file under its final name holds exactly ``data``."""
    dest = Path(path)
    with _staged(dest) as (fd, _):
        _write_all(fd, data)
        back = _read_back(fd, len(data), dest)
        if back != data:
            raise Sam4irError(f"{dest}: the bytes read back differ from those written")
        if check is not None:
            check(back)


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` atomically, byte-identical for identical contents: through a file object, so the archive's
    inner folder is always ``archive`` rather than the random temp name (DVC hashes the bytes). Streamed, not
    buffered (SAM checkpoints are GBs); verified by size and by the zip CRCs of what was written. A failed write
    (full disk, I/O error), which torch reports as a RuntimeError, is one line naming ``path`` as for every writer."""
    dest = Path(path)
    with _staged(dest) as (fd, tmp), io.BufferedWriter(_FdWriter(fd)) as f:
        try:
            torch.save(obj, f)
        except RuntimeError as e:
            if (os_error := _torch_os_error(e)) is None:
                raise
            raise os_error from e
        f.flush()
        if (found := os.fstat(fd).st_size) != f.tell():
            raise Sam4irError(f"{dest}: wrote {found} bytes but torch.save produced {f.tell()}")
        _check_zip(tmp, dest)


class _FdWriter(io.RawIOBase):
    """The temp file as torch.save's file object, written through :func:`_write_all` like every other output
    (short writes resumed, failures raised); closing it leaves the descriptor to :func:`_staged`."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd, self.written = fd, 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        n = memoryview(data).nbytes
        _write_all(self.fd, data)
        self.written += n
        return n

    def tell(self) -> int:
        return self.written


def _torch_os_error(e: RuntimeError) -> OSError | None:
    """The OS error behind a failed ``torch.save``: its zip writer reports a failed write as "[enforce fail at
    inline_container.cc] unexpected pos", the OSError (ENOSPC, EIO) only as the exception's context. Other
    RuntimeErrors (not a write failure): None."""
    cause: BaseException | None = e
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, OSError):
        return OSError(cause.errno, cause.strerror or str(cause))
    if "inline_container" in str(e):
        return OSError(errno.EIO, f"torch.save failed: {_one_line(e)}")
    return None


def _check_zip(tmp: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(tmp) as archive:
            bad = archive.testzip()
    except zipfile.BadZipFile as e:
        raise Sam4irError(f"{dest}: written checkpoint is not a readable archive ({_one_line(e)})") from e
    if bad is not None:
        raise Sam4irError(f"{dest}: written checkpoint fails its CRC check at {bad}")


def files_sha256(files: Iterable[str | os.PathLike]) -> str:
    """sha256 over the names and contents of ``files``, in order: the identity of what a result was made from."""
    digest = hashlib.sha256()
    for path in map(Path, files):
        with open(path, "rb") as f:
            digest.update(f"{path.name}\0".encode() + hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def _read_encoded(path: Path, what: str) -> bytes:
    """The file's bytes, refused if truncated in a way OpenCV would let through."""
    if not path.is_file():
        raise Sam4irError(f"{path}: {what} file not found")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise Sam4irError(f"{path}: cannot read {what} ({_one_line(e.strerror or e)})") from e
    if problem := _truncation(data):
        raise Sam4irError(f"{path}: cannot decode {what} ({problem})")
    return data


def _truncation(data: bytes) -> str | None:
    """Why ``data`` is an incomplete JPEG, PNG or BMP, else None: a JPEG must end with its end-of-image marker,
    a PNG with its IEND chunk (trailing zero padding allowed), a BMP be as long as its header says. Other
    formats (TIFF) are left to the decoder."""
    end = data.rstrip(b"\0")
    if data.startswith(JPEG_SOI) and not end.endswith(JPEG_EOI):
        return "truncated JPEG: no end-of-image marker at the end of the file"
    if data.startswith(PNG_SIGNATURE) and not end.endswith(PNG_IEND):
        return "truncated PNG: no IEND chunk at the end of the file"
    if data.startswith(b"BM") and len(data) >= 6 and len(data) < int.from_bytes(data[2:6], "little"):
        return f"truncated BMP: {len(data)} bytes, its header says {int.from_bytes(data[2:6], 'little')}"
    return None


def header_size(path: str | os.PathLike, data: bytes | None = None) -> tuple[int, int]:
    """``(height, width)`` from the image's header, without decoding (PNG's IHDR directly, other formats through
    Pillow's lazy open), refused in one line above :data:`MAX_PIXELS`."""
    try:
        with (io.BytesIO(data) if data is not None else open(path, "rb")) as f:
            head = f.read(24)
            if head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR":
                width, height = struct.unpack(">II", head[16:24])
            else:
                f.seek(0)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    with Image.open(f) as img:
                        width, height = img.size
    except Image.DecompressionBombError as err:  # Pillow's own guard, above twice its warning size
        raise Sam4irError(f"{path}: refused before decoding: {_one_line(err)}") from None
    except (OSError, struct.error, Image.UnidentifiedImageError) as err:
        raise Sam4irError(f"{path}: cannot decode image (unreadable header: {_one_line(err)})") from None
    if width * height > MAX_PIXELS:
        raise Sam4irError(f"{path}: {width}x{height} pixels ({width * height / 1e6:g} MP) is above the "
                          f"{MAX_PIXELS / 1e6:g} MP decode limit (data.max_pixels): refused before decoding "
                          "(a decompression bomb, or a file far larger than any benchmark image)")
    return height, width


def _decode(data: bytes, path: str | os.PathLike, flags: int, what: str) -> np.ndarray:
    if data.startswith((PNG_SIGNATURE, JPEG_SOI, b"BM", b"II*\0", b"MM\0*")):
        header_size(path, data)  # formats OpenCV would decode in full first
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        img = None
    if img is None:
        raise Sam4irError(f"{path}: cannot decode {what} (corrupt or unsupported format)")
    return img


def _png_bit_depth(data: bytes) -> int | None:
    return data[24] if data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) > 24 else None


def _png_has_alpha(data: bytes) -> bool:
    return data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) > 25 and data[25] in (4, 6)


def _note_once(key: str, message: str) -> None:
    """A warning the first time only: a 16-bit data set would otherwise print one per image and epoch."""
    if key not in _reported:
        _reported.add(key)
        warnings.warn(message, stacklevel=3)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as RGB ``H x W x 3`` uint8, as :func:`decode_image`; one-line error if the file is missing,
    truncated or undecodable."""
    path = Path(path)
    return decode_image(_read_encoded(path, "image"), path, checked=True)


def decode_image(data: bytes, where: str | os.PathLike, checked: bool = False) -> np.ndarray:
    """RGB ``H x W x 3`` uint8 of an encoded image (e.g. an archive member), with ``cv2.IMREAD_COLOR``'s
    conversions (grey replicated, alpha dropped, EXIF orientation applied, 16 bits cut to their high byte -- a
    one-time warning names the first 16-bit and the first alpha file); truncated data is an error naming ``where``."""
    if not checked and (problem := _truncation(data)):
        raise Sam4irError(f"{where}: cannot decode image ({problem})")
    img = _decode(data, where, cv2.IMREAD_COLOR, "image")
    if _png_bit_depth(data) == 16:
        _note_once("16-bit", f"{where}: 16-bit image read as 8 bits (high byte kept); later ones are not reported")
    if _png_has_alpha(data):
        _note_once("alpha", f"{where}: alpha channel dropped (restoration works on RGB); later ones are not reported")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _stored_pixels(img: np.ndarray, dest: Path) -> np.ndarray:
    """The array OpenCV encodes: BGR for RGB images, contiguous; anything outside write_image's contract is an
    error rather than a silent conversion."""
    rgb = img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
    label_map = img.ndim == 2 and img.dtype in (np.uint8, np.uint16)
    if not (rgb or label_map):
        raise Sam4irError(f"{dest}: write_image takes H x W x 3 uint8 (RGB) or H x W uint8/uint16, "
                          f"got {img.dtype} {tuple(img.shape)}")
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR) if rgb else np.ascontiguousarray(img)


def _check_pixels(data: bytes, pixels: np.ndarray, dest: Path) -> None:
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.dtype != pixels.dtype or not np.array_equal(decoded, pixels):
        raise Sam4irError(f"{dest}: the written PNG does not decode to the image given")


def write_image(path: str | os.PathLike, img: np.ndarray) -> None:
    """Write RGB uint8 (``H x W x 3``) or a single-channel uint8/uint16 map (``H x W``) as PNG, atomically: encoded
    in memory, and the written bytes decoded and compared with ``img`` before the file gets its name."""
    dest = Path(path).with_suffix(".png")
    pixels = _stored_pixels(img, dest)
    try:
        ok, encoded = cv2.imencode(".png", pixels)
    except cv2.error:
        ok = False
    if not ok:
        raise Sam4irError(f"{dest}: OpenCV cannot encode the image as PNG")
    write_bytes(dest, encoded.tobytes(), check=lambda data: _check_pixels(data, pixels, dest))


def read_label_map(path: str | os.PathLike) -> np.ndarray:
    """Read a 16-bit label-map PNG (``H x W``, 0 = unlabelled) as int64; truncated files are errors."""
    path = Path(path)
    lab = _decode(_read_encoded(path, "label map"), path, cv2.IMREAD_UNCHANGED, "label map")
    if lab.ndim != 2:
        raise Sam4irError(f"{path}: cannot decode label map (expected a single-channel PNG)")
    return lab.astype(np.int64)

"""The one write path (atomic, checked, synced, verified, umask permissions) and strict image decoding."""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
import struct
import warnings
import zlib

import cv2
import numpy as np
import pytest
import skimage.data
import torch

import sam4ir.io
from sam4ir.errors import Sam4irError
from sam4ir.io import (atomic_path, decode_image, read_image, read_label_map, save_torch, write_bytes, write_image,
                       write_json)

PHOTO = np.ascontiguousarray(skimage.data.astronaut()[100:164, 140:220])  # RGB uint8, 64 x 80
LABELS = (np.arange(48 * 40).reshape(48, 40) * 37 % 65521).astype(np.uint16)  # uses both bytes


def one_line(e: pytest.ExceptionInfo) -> str:
    message = str(e.value)
    assert "\n" not in message
    return message


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def full_disk(monkeypatch: pytest.MonkeyPatch, room: int) -> None:
    """``os.write`` on a disk with ``room`` bytes free: a short write, then ENOSPC."""
    real, used = os.write, [0]

    def write(fd: int, data) -> int:
        if used[0] >= room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real(fd, bytes(memoryview(data)[:room - used[0]]))
        used[0] += n
        return n

    monkeypatch.setattr(os, "write", write)


# --- round trips -------------------------------------------------------------------------------------------------

def test_images_round_trip_bit_exactly(tmp_path):
    write_image(tmp_path / "rgb.png", PHOTO)
    write_image(tmp_path / "labels.png", LABELS)
    write_image(tmp_path / "grey.png", PHOTO[..., 1])
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), PHOTO)
    np.testing.assert_array_equal(read_label_map(tmp_path / "labels.png"), LABELS.astype(np.int64))
    np.testing.assert_array_equal(read_label_map(tmp_path / "grey.png"), PHOTO[..., 1])
    np.testing.assert_array_equal(read_image(tmp_path / "grey.png"), np.repeat(PHOTO[..., 1:2], 3, axis=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grey.png", "labels.png", "rgb.png"]


def test_written_bytes_are_those_cv2_imwrite_wrote(tmp_path):
    """Same encoder, same settings: DVC-tracked images keep their hashes."""
    write_image(tmp_path / "ours.png", PHOTO)
    cv2.imwrite(str(tmp_path / "cv2.png"), cv2.cvtColor(PHOTO, cv2.COLOR_RGB2BGR))
    assert (tmp_path / "ours.png").read_bytes() == (tmp_path / "cv2.png").read_bytes()


def test_non_contiguous_rgb_is_written(tmp_path):
    flipped = PHOTO[::-1, ::2]
    write_image(tmp_path / "f.png", flipped)
    np.testing.assert_array_equal(read_image(tmp_path / "f.png"), flipped)


def test_write_image_refuses_what_it_cannot_store_exactly(tmp_path):
    for bad in (PHOTO.astype(np.float32), PHOTO.astype(np.uint16), LABELS.astype(np.int32), PHOTO[..., :2]):
        with pytest.raises(Sam4irError, match=r"bad\.png: write_image takes") as e:
            write_image(tmp_path / "bad.png", bad)
        one_line(e)
    assert not list(tmp_path.iterdir())


def test_json_and_checkpoints_round_trip(tmp_path):
    write_json(tmp_path / "m.json", {"psnr": 31.5, "name": "a"})
    assert (tmp_path / "m.json").read_text() == '{\n  "psnr": 31.5,\n  "name": "a"\n}\n'
    state = {"w": torch.arange(10.0), "step": 3}
    save_torch(tmp_path / "a" / "model.pt", state)
    save_torch(tmp_path / "b" / "model.pt", state)  # another random temp name on the way
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "model.pt").read_bytes()
    loaded = torch.load(tmp_path / "a" / "model.pt")
    assert torch.equal(loaded["w"], state["w"]) and loaded["step"] == 3


# --- temp files --------------------------------------------------------------------------------------------------

def test_temp_names_match_no_readers_pattern(tmp_path, monkeypatch):
    seen = []
    real = sam4ir.io._write_all

    def spy(fd: int, data) -> None:
        seen.extend(p.name for p in tmp_path.iterdir())
        real(fd, data)

    monkeypatch.setattr(sam4ir.io, "_write_all", spy)
    write_image(tmp_path / "a.png", PHOTO)
    write_json(tmp_path / "m.json", {})
    with atomic_path(tmp_path / "t.csv") as tmp:
        seen.append(tmp.name)
        assert not list(tmp_path.glob("*.csv"))
        tmp.write_text("x\n")
    assert len(seen) == 4  # the temp image, the image beside the temp JSON, the temp JSON, the temp CSV
    temps = [name for name in seen if name not in ("a.png", "m.json", "t.csv")]
    assert len(temps) == 3
    for name in temps:
        assert name.startswith(".") and name.endswith(".partial"), name
        assert not any(fnmatch.fnmatch(name, pattern) for pattern in ("*.png", "*.json", "*.csv", "*.pt")), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "m.json", "t.csv"]


# --- permissions -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_get_the_permissions_the_umask_allows(tmp_path, umask, mask, mode):
    umask(mask)
    write_image(tmp_path / "a.png", PHOTO)
    write_json(tmp_path / "a.json", {})
    save_torch(tmp_path / "a.pt", {"x": 1})
    with atomic_path(tmp_path / "a.csv") as tmp:
        tmp.write_text("x\n")
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == mode, path.name


# --- failures ----------------------------------------------------------------------------------------------------

WRITERS = {"image": lambda p: write_image(p / "out.png", PHOTO),
           "json": lambda p: write_json(p / "out.png", {"a": list(range(100))}),
           "bytes": lambda p: write_bytes(p / "out.png", bytes(range(256)) * 40)}


@pytest.mark.parametrize("room", [0, 100])
@pytest.mark.parametrize("writer", WRITERS, ids=list(WRITERS))
def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, writer, room):
    full_disk(monkeypatch, room)
    with pytest.raises(Sam4irError) as e:
        WRITERS[writer](tmp_path)
    assert one_line(e) == f"{tmp_path / 'out.png'}: cannot write (No space left on device)"
    assert not list(tmp_path.iterdir())


def test_failed_rewrite_keeps_the_old_file(tmp_path, monkeypatch):
    write_image(tmp_path / "out.png", PHOTO)
    before = (tmp_path / "out.png").read_bytes()
    full_disk(monkeypatch, 1000)
    with pytest.raises(Sam4irError, match="No space left on device"):
        write_image(tmp_path / "out.png", PHOTO[::-1])
    assert (tmp_path / "out.png").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


@pytest.mark.parametrize("writer", ["image", "json", "torch", "path"])
def test_failed_sync_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, writer):
    """Delayed allocation and network file systems report a full disk or I/O error only at fsync."""
    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(Sam4irError) as e:
        if writer == "torch":
            save_torch(tmp_path / "out.png", {"x": 1})
        elif writer == "path":
            with atomic_path(tmp_path / "out.png") as tmp:
                tmp.write_text("x")
        else:
            WRITERS[writer](tmp_path)
    assert one_line(e) == f"{tmp_path / 'out.png'}: cannot write (Input/output error)"
    assert not list(tmp_path.iterdir())


def test_checkpoint_write_failure_leaves_nothing(tmp_path, monkeypatch):
    def save(obj, f) -> None:
        f.write(b"PK\x03\x04 half an archive")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(Sam4irError) as e:
        save_torch(tmp_path / "model.pt", {"x": 1})
    assert one_line(e) == f"{tmp_path / 'model.pt'}: cannot write (No space left on device)"
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("room", [0, 100, 20_000])
def test_torch_save_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, room):
    """torch's zip writer reports a failed write as a RuntimeError ("enforce fail at inline_container.cc ...
    unexpected pos"), the ENOSPC only as its context; the disk fills at the first write, in a record, mid-tensor."""
    full_disk(monkeypatch, room)
    with pytest.raises(Sam4irError) as e:
        save_torch(tmp_path / "model.pt", {"x": torch.zeros(10_000), "y": list(range(100))})
    assert one_line(e) == f"{tmp_path / 'model.pt'}: cannot write (No space left on device)"
    assert not list(tmp_path.iterdir())


def test_torch_writer_errors_without_an_os_error_name_the_file_and_others_pass(tmp_path, monkeypatch):
    def save(obj, f) -> None:
        f.write(b"PK\x03\x04 half an archive")
        raise RuntimeError(obj)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(Sam4irError) as e:
        save_torch(tmp_path / "model.pt", "[enforce fail at inline_container.cc:672] . unexpected pos 30 vs 0")
    assert one_line(e) == (f"{tmp_path / 'model.pt'}: cannot write (torch.save failed: [enforce fail at "
                           "inline_container.cc:672] . unexpected pos 30 vs 0)")
    with pytest.raises(RuntimeError, match="^not a write failure$"):
        save_torch(tmp_path / "model.pt", "not a write failure")
    assert not list(tmp_path.iterdir())


def test_a_path_writers_failure_leaves_nothing(tmp_path):
    with pytest.raises(Sam4irError) as e, atomic_path(tmp_path / "t.csv") as tmp:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
    assert one_line(e) == f"{tmp_path / 't.csv'}: cannot write (No space left on device)"
    assert not list(tmp_path.iterdir())


def test_a_path_writers_other_errors_pass_unchanged(tmp_path):
    with pytest.raises(ValueError, match="bad value"), atomic_path(tmp_path / "t.csv") as tmp:
        tmp.write_text("half")
        raise ValueError("bad value")
    assert not list(tmp_path.iterdir())


def test_read_only_folder_is_one_line(tmp_path, monkeypatch):
    """A read-only mount refuses the temp file (simulated: tests may run as root, who ignores modes)."""
    def mkstemp(prefix: str, suffix: str, dir) -> tuple[int, str]:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.path.join(dir, prefix + "x1" + suffix))

    monkeypatch.setattr(sam4ir.io.tempfile, "mkstemp", mkstemp)
    with pytest.raises(Sam4irError) as e:
        write_image(tmp_path / "out.png", PHOTO)
    assert one_line(e) == f"{tmp_path / 'out.png'}: cannot write (Read-only file system)"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_folder_is_one_line(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(Sam4irError, match=r"ro/out\.png: cannot write \(Permission denied"):
            write_image(folder / "out.png", PHOTO)
    finally:
        folder.chmod(0o755)


def test_bytes_that_read_back_wrong_are_never_renamed(tmp_path, monkeypatch):
    real = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, offset: bytes(b ^ 1 for b in real(fd, n, offset)))
    with pytest.raises(Sam4irError, match=r"out\.png: the bytes read back differ") as e:
        write_image(tmp_path / "out.png", PHOTO)
    one_line(e)
    assert not list(tmp_path.iterdir())


def test_an_image_that_decodes_wrong_is_never_renamed(tmp_path, monkeypatch):
    monkeypatch.setattr(sam4ir.io.cv2, "imdecode", lambda buf, flags: None)
    with pytest.raises(Sam4irError, match=r"out\.png: the written PNG does not decode to the image given"):
        write_image(tmp_path / "out.png", PHOTO)
    assert not list(tmp_path.iterdir())


# --- strict decoding ---------------------------------------------------------------------------------------------

def encoded(ext: str, img: np.ndarray = PHOTO) -> bytes:
    ok, buf = cv2.imencode(ext, cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("ext,kind", [(".png", "PNG"), (".jpg", "JPEG"), (".bmp", "BMP")])
@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_images_are_refused_naming_the_file(tmp_path, ext, kind, keep):
    data = encoded(ext)
    path = tmp_path / f"cut{ext}"
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(Sam4irError, match=rf"cut\{ext}: cannot decode image \(truncated {kind}") as e:
        read_image(path)
    one_line(e)


def test_truncated_archive_members_are_refused_naming_them():
    data = encoded(".jpg")
    np.testing.assert_array_equal(decode_image(data, "set.zip:a.jpg"), decode_image(data + b"\0", "x"))
    with pytest.raises(Sam4irError, match=r"^set\.zip:a\.jpg: cannot decode image \(truncated JPEG"):
        decode_image(data[:-100], "set.zip:a.jpg")
    with pytest.raises(Sam4irError, match=r"^set\.zip:b\.png: cannot decode image \(corrupt"):
        decode_image(b"not an image", "set.zip:b.png")


def test_truncated_label_map_is_refused_naming_the_file(tmp_path):
    data = encoded(".png", LABELS)
    (tmp_path / "m.png").write_bytes(data[:-20])
    with pytest.raises(Sam4irError, match=r"m\.png: cannot decode label map \(truncated PNG"):
        read_label_map(tmp_path / "m.png")


def test_jpeg_pixels_are_opencvs_and_zero_padding_is_accepted(tmp_path):
    data = encoded(".jpg")
    (tmp_path / "a.jpg").write_bytes(data)
    (tmp_path / "padded.jpg").write_bytes(data + b"\0" * 16)
    expected = cv2.cvtColor(cv2.imread(str(tmp_path / "a.jpg"), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(read_image(tmp_path / "a.jpg"), expected)
    np.testing.assert_array_equal(read_image(tmp_path / "padded.jpg"), expected)


def test_garbage_and_missing_files_are_one_line(tmp_path):
    (tmp_path / "g.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "e.png").write_bytes(b"")
    for name, message in (("g.png", "cannot decode image"), ("e.png", "cannot decode image"),
                          ("none.png", "image file not found")):
        with pytest.raises(Sam4irError, match=rf"{name}: {message}") as e:
            read_image(tmp_path / name)
        one_line(e)
    with pytest.raises(Sam4irError, match=r"none\.png: label map file not found"):
        read_label_map(tmp_path / "none.png")
    with pytest.raises(Sam4irError, match=r"rgb\.png: cannot decode label map \(expected a single-channel"):
        write_image(tmp_path / "rgb.png", PHOTO)
        read_label_map(tmp_path / "rgb.png")


def test_16_bit_images_keep_opencvs_8_bit_values_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(sam4ir.io, "_reported", set())
    deep = PHOTO.astype(np.uint16) * 256 + np.arange(80, dtype=np.uint16)[:, None]  # low bytes differ
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
    with pytest.warns(UserWarning, match=r"a\.png: 16-bit image read as 8 bits \(high byte kept\)"):
        img = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(img, PHOTO)  # as cv2.IMREAD_COLOR reads it: the high byte
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(tmp_path / "b.png")  # reported once per process, not once per image


def test_alpha_is_dropped_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(sam4ir.io, "_reported", set())
    rgba = np.dstack([cv2.cvtColor(PHOTO, cv2.COLOR_RGB2BGR), np.full(PHOTO.shape[:2], 7, np.uint8)])
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), rgba)
    with pytest.warns(UserWarning, match=r"a\.png: alpha channel dropped"):
        np.testing.assert_array_equal(read_image(tmp_path / "a.png"), PHOTO)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(tmp_path / "b.png")
        write_image(tmp_path / "c.png", PHOTO)
        read_image(tmp_path / "c.png")  # an RGB PNG is not reported


def _forged_png(width: int, height: int) -> bytes:
    """A small PNG whose IHDR claims ``width`` x ``height`` (CRC fixed up): what a decompression bomb looks like
    from its header."""
    data = bytearray(cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    """A 20000 x 20000 header is refused before OpenCV allocates 1.2 GB, naming the file and its size; a JPEG or
    BMP beyond the limit too (read through Pillow's header parser)."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_forged_png(20000, 20000))
    decoded = []
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append(a) or None)
    for reader in (read_image, read_label_map):
        with pytest.raises(Sam4irError, match=r"bomb\.png: 20000x20000 pixels \(400 MP\) is above the 180 MP "
                                               r"decode limit \(data.max_pixels\)"):
            reader(bomb)
    assert decoded == []  # never handed to the decoder
    monkeypatch.setattr("sam4ir.io.MAX_PIXELS", 10)
    for suffix in (".jpg", ".bmp"):
        path = tmp_path / f"small{suffix}"
        cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint8))
        with pytest.raises(Sam4irError, match=rf"small\{suffix}: 4x4 pixels .* above"):
            read_image(path)


def test_folder_data_with_a_bomb_fails_in_its_scan(tmp_path):
    from sam4ir.data import scan_pairs

    for kind in ("input", "target"):
        (tmp_path / "train" / kind).mkdir(parents=True)
        write_image(tmp_path / "train" / kind / "a.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "train" / "input" / "b.png").write_bytes(_forged_png(20000, 20000))
    write_image(tmp_path / "train" / "target" / "b.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(Sam4irError, match=r"input/b\.png: 20000x20000 pixels"):
        scan_pairs(tmp_path, "train")

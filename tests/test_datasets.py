"""sam4ir.datasets and prepare_data's ``download`` source against a local HTTP server (127.0.0.1 only).

The archives are tiny stand-ins built here with the official inner layouts; the registry's URLs are redirected to
the server through ``mirror`` (or, for the Google Drive flow, by pointing a registry entry at the server).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import re
import shutil
import socket
import sys
import tarfile
import tracemalloc
import urllib.parse
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from local_http import serve
import scipy.io
import yaml
from test_io import full_disk

import sam4ir.datasets.extract
import sam4ir.io
from sam4ir.data import TASKS
from sam4ir.datasets import ARCHIVES, DATASETS, Archive, Dataset, FolderPairs, MatBlocks, Source, prepare_download
from sam4ir.datasets.extract import check_archive
from sam4ir.datasets.subimages import SubimageSpec, read_windows
from sam4ir.download import UnreachableError, download
from sam4ir.errors import Sam4irError
from sam4ir.io import read_image
from sam4ir.stages import prepare_data, run_stage

RNG = np.random.default_rng(0)
UUID = "u-5f3a"


REPO = Path(__file__).resolve().parents[1]


def _png(h: int = 12, w: int = 16) -> bytes:
    return cv2.imencode(".png", RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))[1].tobytes()


def _jpg(h: int = 12, w: int = 16) -> bytes:
    return cv2.imencode(".jpg", RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))[1].tobytes()


def _rgb(data: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _mat(key: str, blocks: np.ndarray) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, {key: blocks})
    return buf.getvalue()


# Stand-ins with the official layouts (member name -> bytes).
RAIN_TRAIN = {f"train/Rain13K/{side}/{name}": _png() if name.endswith(".png") else _jpg()
              for name in ["1.png", "1.jpg", "2.png"] for side in ("input", "target")}
RAIN_TEST = {f"test/{s}/{side}/{i}.png": _png() for s in ["Rain100H", "Rain100L", "Test1200", "Test2800"]
             for i in (1, 2) for side in ("input", "target")}
RAIN_TEST |= {f"test/Test100/input/{i}.png": _png() for i in (1, 2)} | \
    {f"test/Test100/target/{i}.jpg": _jpg() for i in (1, 2)}  # pairs by name even across extensions
RAIN_TEST["__MACOSX/test/Rain100L/input/._1.png"] = b"resource fork"  # junk a Mac zip carries: skipped
GOPRO = {f"GOPRO_Large/{split}/{seq}/{kind}/{frame}.png": _png()
         for split, seq in [("train", "GOPR0372_07_00"), ("test", "GOPR0384_11_00")]
         for kind in ("blur", "blur_gamma", "sharp") for frame in ("000047", "000048")}
HIDE = {f"test/HIDE/{side}/{name}.png": _png() for side in ("input", "target") for name in ("1fromGOPR1090", "scene2")}
SIDD_MEDIUM = {f"SIDD_Medium_Srgb/Data/{scene}/{scene[:4]}_{kind}_SRGB_{shot}.PNG": _png()
               for scene in ["0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00020_3200_N"]
               for kind in ("NOISY", "GT") for shot in ("010", "011")}
SIDD_NOISY = RNG.integers(0, 256, (2, 3, 8, 8, 3), dtype=np.uint8)
SIDD_GT = RNG.integers(0, 256, (2, 3, 8, 8, 3), dtype=np.uint8)
FILES = {"rain13k_train.zip": _zip(RAIN_TRAIN), "rain13k_test.zip": _zip(RAIN_TEST), "GOPRO_Large.zip": _zip(GOPRO),
         "hide_test.zip": _zip(HIDE),
         "SIDD_Medium_Srgb.zip": _zip(SIDD_MEDIUM),
         "ValidationNoisyBlocksSrgb.mat": _mat("ValidationNoisyBlocksSrgb", SIDD_NOISY),
         "ValidationGtBlocksSrgb.mat": _mat("ValidationGtBlocksSrgb", SIDD_GT)}


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` at ``/<name>`` with ``Range: bytes=N-``, and Google Drive's flow for
    ``server.drive`` (id -> bytes): ``/uc?export=download&id=`` answers a confirmation page (or
    ``server.drive_pages[id]``) and sets a cookie; the file comes from the page's link (``/download`` with the
    hidden form fields, or ``/uc`` with ``confirm=``) and only with that cookie. ``server.cut_after[name or id]``
    drops that file's connection once after so many bytes."""

    def do_GET(self) -> None:
        srv = self.server
        srv.requests.append((self.path, dict(self.headers)))
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        if url.path == "/uc" and "confirm" not in query:
            page = srv.drive_pages.get(query.get("id"), _form_page(srv.url, query.get("id", "")))
            self._send(200, page.encode(), "text/html; charset=utf-8",
                       {"Set-Cookie": "download_warning_1=tok; Path=/"})
            return
        if url.path in ("/uc", "/download"):
            confirmed = query.get("confirm") == "t" and (url.path == "/uc" or query.get("uuid") == UUID)
            if not confirmed or "download_warning_1=tok" not in self.headers.get("Cookie", ""):
                self._send(403, b"<html>no</html>", "text/html")
                return
            key = query["id"]
            data = srv.drive[key]
        else:
            key = url.path.lstrip("/")
            data = srv.files.get(key)
            if data is None:
                self.send_error(404)
                return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        start = int(match.group(1)) if match else 0
        headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if start else {}
        body = data[start:]
        cut = srv.cut_after.pop(key, None)
        if cut is not None:  # drop the connection once, mid-way
            self._send(206 if start else 200, body[:cut], "application/zip", headers, len(body))
            return
        self._send(206 if start else 200, body, "application/zip", headers)

    def _send(self, code: int, body: bytes, ctype: str, headers: dict | None = None, length: int | None = None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _form_page(base: str, file_id: str) -> str:
    """Today's Drive large-file warning: a form whose hidden fields make the download link."""
    return (f'<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>'
            f'<p>Google Drive can\'t scan this file for viruses.</p>'
            f'<form id="download-form" action="{base}/download" method="get">'
            f'<input type="submit" id="uc-download-link" class="goog-inline-block jfk-button" value="Download anyway">'
            f'<input type="hidden" name="id" value="{file_id}"><input type="hidden" name="export" value="download">'
            f'<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{UUID}">'
            f'</form></body></html>')


@pytest.fixture(autouse=True)
def _local_only(monkeypatch):
    """Any attempt to resolve a host other than 127.0.0.1 fails the test: nothing here may leave the machine."""
    resolve = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host != "127.0.0.1":
            raise AssertionError(f"a test tried to reach {host}")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def server():
    # cut_after: file or Drive id -> bytes sent before the connection drops
    yield from serve(_Handler, files=dict(FILES), drive={}, drive_pages={}, requests=[], cut_after={})


@pytest.fixture
def closed_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _prepare(tmp_path: Path, task: str, train: list[str], test: list[str], **kw) -> dict:
    kw = {"cache": tmp_path / "downloads", "manifest": tmp_path / "datasets.lock.json", "progress": False,
          "timeout": 5, **kw}
    return prepare_download(task, train, test, tmp_path / "prepared" / task, **kw)


def _pins(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "datasets.lock.json").read_text())["archives"]


def _names(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.png"))


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_registry_is_consistent():
    for name, dataset in DATASETS.items():
        assert dataset.task in TASKS and "__" not in name
        assert set(dataset.layout.archives) <= ARCHIVES.keys()
        assert isinstance(dataset.layout, MatBlocks) == dataset.layout.archives[0].endswith(".mat")
        if isinstance(dataset.layout, FolderPairs):  # same named groups on both sides, so keys can be equal
            groups = [re.compile(rx).groupindex.keys() for rx in (dataset.layout.input, dataset.layout.target)]
            assert groups[0] == groups[1] and "ext" in groups[0]
    for file, archive in ARCHIVES.items():
        assert archive.file == file and archive.sources and archive.where
        assert all(s.url.startswith(("https://", "http://")) for s in archive.sources)
        assert all(s.google_drive == s.url.startswith("https://drive.google.com/") for s in archive.sources)
    assert {d.task for d in DATASETS.values()} == set(TASKS)


def test_derain_download_extract_and_pin(server, tmp_path):
    summary = _prepare(tmp_path, "derain", ["rain13k"], ["rain100h", "rain100l"], mirror=server.url)
    out = tmp_path / "prepared" / "derain"
    assert summary == {"train": 3, "test": 4, "sets": {"train": {"rain13k": 3}, "test": {"rain100h": 2, "rain100l": 2}}}
    # 1.png and 1.jpg differ only by extension: both kept, told apart by it
    assert _names(out / "train" / "input") == _names(out / "train" / "target") == \
        ["rain13k__1_jpg", "rain13k__1_png", "rain13k__2"]
    assert _names(out / "test" / "input") == ["rain100h__1", "rain100h__2", "rain100l__1", "rain100l__2"]
    assert np.array_equal(read_image(out / "test" / "input" / "rain100l__2.png"),
                          _rgb(RAIN_TEST["test/Rain100L/input/2.png"]))
    assert np.array_equal(read_image(out / "train" / "target" / "rain13k__1_jpg.png"),
                          _rgb(RAIN_TRAIN["train/Rain13K/target/1.jpg"]))  # decoded once, stored losslessly
    pins = _pins(tmp_path)
    assert set(pins) == {"rain13k_train.zip", "rain13k_test.zip"}
    data = FILES["rain13k_test.zip"]
    assert pins["rain13k_test.zip"] == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                                        "url": f"{server.url}/rain13k_test.zip"}
    assert (tmp_path / "downloads" / "rain13k_test.zip").read_bytes() == data


def test_second_run_verifies_cache_against_manifest(server, tmp_path):
    _prepare(tmp_path, "derain", ["rain13k"], ["test100"], mirror=server.url)
    assert _names(tmp_path / "prepared" / "derain" / "test" / "target") == ["test100__1", "test100__2"]
    pins, fetched = _pins(tmp_path), len(server.requests)
    _prepare(tmp_path, "derain", ["rain13k"], ["test100"], mirror=server.url)
    assert len(server.requests) == fetched and _pins(tmp_path) == pins  # cached archives, verified, not fetched
    cached = tmp_path / "downloads" / "rain13k_test.zip"
    cached.write_bytes(cached.read_bytes() + b"x")  # bit rot / a different file placed by hand
    with pytest.raises(Sam4irError) as err:
        _prepare(tmp_path, "derain", ["rain13k"], ["test100"], mirror=server.url)
    msg = _one_line(err)
    actual = hashlib.sha256(cached.read_bytes()).hexdigest()
    assert str(cached) in msg and pins["rain13k_test.zip"]["sha256"] in msg and actual in msg


def test_fresh_download_is_verified_against_pin(server, tmp_path):
    _prepare(tmp_path, "derain", ["rain13k"], ["test100"], mirror=server.url)
    expected = _pins(tmp_path)["rain13k_test.zip"]["sha256"]
    (tmp_path / "downloads" / "rain13k_test.zip").unlink()
    server.files["rain13k_test.zip"] = _zip({**RAIN_TEST, "extra.txt": b"the host changed the archive"})
    with pytest.raises(Sam4irError) as err:
        _prepare(tmp_path, "derain", ["rain13k"], ["test100"], mirror=server.url)
    msg = _one_line(err)
    assert "rain13k_test.zip" in msg and expected in msg
    assert hashlib.sha256(server.files["rain13k_test.zip"]).hexdigest() in msg
    assert not (tmp_path / "downloads" / "rain13k_test.zip").exists()


@pytest.mark.parametrize("corrupt", ["html page", "bad member crc"])
def test_corrupt_archive_is_refused_and_never_pinned(server, tmp_path, corrupt):
    data = bytearray(FILES["rain13k_test.zip"])
    if corrupt == "html page":
        data = bytearray(b"<html><body>Service unavailable</body></html>")
    else:  # flip one byte inside the first member's stored data: its CRC-32 no longer matches
        data[zipfile.ZipFile(io.BytesIO(data)).infolist()[0].header_offset + 60] ^= 0xFF
    server.files["rain13k_test.zip"] = bytes(data)
    with pytest.raises(Sam4irError) as err:
        _prepare(tmp_path, "derain", ["rain13k"], ["rain100l"], mirror=server.url)
    msg = _one_line(err)
    assert "rain13k_test.zip" in msg and "was deleted, run again" in msg
    assert "rain13k_test.zip" not in _pins(tmp_path)
    assert not (tmp_path / "downloads" / "rain13k_test.zip").exists()


def test_interrupted_download_resumes(server, tmp_path):
    data = FILES["rain13k_test.zip"]
    server.cut_after["rain13k_test.zip"] = len(data) // 3
    with pytest.raises(Sam4irError, match="run again to resume") as err:
        _prepare(tmp_path, "derain", ["rain13k"], ["rain100l"], mirror=server.url)
    _one_line(err)
    part = tmp_path / "downloads" / "rain13k_test.zip.part"
    assert part.stat().st_size == len(data) // 3
    _prepare(tmp_path, "derain", ["rain13k"], ["rain100l"], mirror=server.url)
    assert server.requests[-1][1]["Range"] == f"bytes={len(data) // 3}-"
    assert (tmp_path / "downloads" / "rain13k_test.zip").read_bytes() == data and not part.exists()
    assert _pins(tmp_path)["rain13k_test.zip"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_offline_error_names_file_urls_and_manual_place(tmp_path, closed_url, monkeypatch):
    """Every official source of the archive is tried (here: both refuse the connection) and named."""
    urls = [f"{closed_url}/official.zip", f"{closed_url}/uc?export=download&id=abc"]
    monkeypatch.setitem(ARCHIVES, "rain13k_test.zip", Archive("rain13k_test.zip", (
        Source(urls[0]), Source(urls[1], google_drive=True)), "the authors' page"))
    with pytest.raises(Sam4irError) as err:
        _prepare(tmp_path, "derain", ["rain100h"], ["rain100l"], mirror=None)
    msg = _one_line(err)
    dest = tmp_path / "downloads" / "rain13k_test.zip"
    assert msg.startswith("rain13k_test.zip could not be downloaded")
    assert all(url in msg for url in urls) and f"place it at {dest}" in msg and "the authors' page" in msg
    assert f"dvc pull {tmp_path / 'prepared' / 'derain'}" in msg


def test_google_drive_confirmation_page_and_resume(server, tmp_path, monkeypatch):
    server.drive["f1"] = FILES["rain13k_test.zip"]
    monkeypatch.setitem(ARCHIVES, "rain13k_test.zip", Archive("rain13k_test.zip", (
        Source(f"{server.url}/uc?export=download&id=f1", google_drive=True),), "Drive"))
    monkeypatch.setitem(DATASETS, "rain100l", Dataset("derain", DATASETS["rain100l"].layout))
    server.cut_after["f1"] = 1000
    with pytest.raises(Sam4irError, match="run again to resume"):
        _prepare(tmp_path, "derain", ["rain100h"], ["rain100l"])
    summary = _prepare(tmp_path, "derain", ["rain100h"], ["rain100l"])
    assert summary["test"] == 2
    paths = [p for p, _ in server.requests]
    assert paths[0] == "/uc?export=download&id=f1" and paths[1].startswith("/download?")
    assert server.requests[-1][0].startswith("/download?") and server.requests[-1][1]["Range"] == "bytes=1000-"
    assert (tmp_path / "downloads" / "rain13k_test.zip").read_bytes() == FILES["rain13k_test.zip"]


def test_google_drive_older_link_page_and_quota_page(server, tmp_path):
    server.drive["f2"] = b"payload" * 1000
    server.drive_pages["f2"] = ('<html><body><a id="uc-download-link" '
                                'href="/uc?export=download&amp;confirm=t&amp;id=f2">Download anyway</a></body></html>')
    dest = download(f"{server.url}/uc?export=download&id=f2", tmp_path / "f2.bin", progress=False, timeout=5,
                    google_drive=True)
    assert dest.read_bytes() == server.drive["f2"]
    server.drive_pages["f3"] = ('<html><body><p class="uc-error-caption">Sorry, you can\'t view or download this '
                                'file at this time.</p><p class="uc-error-subcaption">Too many users have viewed '
                                'or downloaded this file recently.</p></body></html>')
    with pytest.raises(UnreachableError) as err:
        download(f"{server.url}/uc?export=download&id=f3", tmp_path / "f3.bin", progress=False, timeout=5,
                 google_drive=True)
    assert "Google Drive: Too many users have viewed or downloaded this file recently." in _one_line(err)
    assert not (tmp_path / "f3.bin").exists()


def test_deblur_gopro_and_hide_from_a_folder_mirror(tmp_path):
    mirror = tmp_path / "lab-mirror"
    mirror.mkdir()
    (mirror / "GOPRO_Large.zip").write_bytes(FILES["GOPRO_Large.zip"])
    (mirror / "hide_test.zip").write_bytes(FILES["hide_test.zip"])
    summary = _prepare(tmp_path, "deblur", ["gopro_train"], ["gopro_test", "hide"], mirror=str(mirror))
    out = tmp_path / "prepared" / "deblur"
    assert summary["train"] == 2 and summary["sets"]["test"] == {"gopro_test": 2, "hide": 2}
    assert _names(out / "test" / "target") == ["gopro_test__GOPR0384_11_00_000047", "gopro_test__GOPR0384_11_00_000048",
                                               "hide__1fromGOPR1090", "hide__scene2"]
    assert np.array_equal(read_image(out / "test" / "input" / "hide__scene2.png"), _rgb(HIDE["test/HIDE/input/scene2.png"]))
    assert np.array_equal(read_image(out / "train" / "input" / "gopro_train__GOPR0372_07_00_000048.png"),
                          _rgb(GOPRO["GOPRO_Large/train/GOPR0372_07_00/blur/000048.png"]))  # blur, not blur_gamma
    assert np.array_equal(read_image(out / "train" / "target" / "gopro_train__GOPR0372_07_00_000048.png"),
                          _rgb(GOPRO["GOPRO_Large/train/GOPR0372_07_00/sharp/000048.png"]))
    assert _pins(tmp_path)["GOPRO_Large.zip"]["url"] == (mirror / "GOPRO_Large.zip").as_uri()


def test_denoise_sidd_medium_and_validation_blocks(server, tmp_path):
    summary = _prepare(tmp_path, "denoise", ["sidd_medium"], ["sidd_val"], mirror=server.url)
    out = tmp_path / "prepared" / "denoise"
    assert summary["train"] == 4 and summary["test"] == 6
    scene = "0002_001_S6_00100_00020_3200_N"
    assert np.array_equal(read_image(out / "train" / "input" / f"sidd_medium__{scene}_011.png"),
                          _rgb(SIDD_MEDIUM[f"SIDD_Medium_Srgb/Data/{scene}/0002_NOISY_SRGB_011.PNG"]))
    assert np.array_equal(read_image(out / "train" / "target" / f"sidd_medium__{scene}_011.png"),
                          _rgb(SIDD_MEDIUM[f"SIDD_Medium_Srgb/Data/{scene}/0002_GT_SRGB_011.PNG"]))
    assert _names(out / "test" / "input")[-1] == "sidd_val__0002_03"
    assert np.array_equal(read_image(out / "test" / "input" / "sidd_val__0002_03.png"), SIDD_NOISY[1, 2])
    assert np.array_equal(read_image(out / "test" / "target" / "sidd_val__0001_02.png"), SIDD_GT[0, 1])
    assert set(_pins(tmp_path)) == {"SIDD_Medium_Srgb.zip", "ValidationNoisyBlocksSrgb.mat",
                                    "ValidationGtBlocksSrgb.mat"}


def test_tar_archive_with_rain_norain_layout(server, tmp_path, monkeypatch):
    """Yang et al.'s original Rain100L: rain/rain-NNN.png with norain/norain-NNN.png, here as a .tar.gz."""
    members = {f"./Rain100L/{d}/{d}-{i:03d}.png": _png() for d in ("rain", "norain") for i in (1, 2, 3)}
    server.files["Rain100L.tar.gz"] = _tar_gz(members)
    monkeypatch.setitem(ARCHIVES, "Rain100L.tar.gz", Archive("Rain100L.tar.gz", (Source("https://x.invalid"),), "-"))
    monkeypatch.setitem(DATASETS, "rain100l_yang", Dataset("derain", FolderPairs(
        "Rain100L.tar.gz", r"rain/rain-(?P<id>\d+)\.(?P<ext>png)", r"norain/norain-(?P<id>\d+)\.(?P<ext>png)")))
    summary = _prepare(tmp_path, "derain", ["rain100l_yang"], ["rain100l"], mirror=server.url)
    out = tmp_path / "prepared" / "derain"
    assert summary["train"] == 3
    assert np.array_equal(read_image(out / "train" / "target" / "rain100l_yang__002.png"),
                          _rgb(members["./Rain100L/norain/norain-002.png"]))


def record_writes(monkeypatch, out: Path) -> list[str]:
    """The images extraction writes from now on, relative to ``out`` (they are still written)."""
    written = []

    def write_image(path, img):
        written.append(Path(path).relative_to(out).as_posix())
        sam4ir.io.write_image(path, img)

    monkeypatch.setattr("sam4ir.datasets.prepare.write_image", write_image)
    monkeypatch.setattr("sam4ir.datasets.subimages.write_image", write_image)
    return written


def test_sidd_medium_subimages_resume_and_settings(server, tmp_path, monkeypatch):
    """Training pairs cut into BasicSR's windows (12x16 images, crop 8, step 6: rows 0, 4 and columns 0, 6, 8),
    the test blocks whole; a resumed run redoes only a source whose sub-images are not all whole; other windows
    are other settings: nothing of the old cut survives."""
    spec = SubimageSpec(8, 6, 0)
    summary = _prepare(tmp_path, "denoise", ["sidd_medium"], ["sidd_val"], mirror=server.url,
                       subimages={"sidd_medium": spec, "sidd_val": spec})  # a test set's entry is never applied
    out = tmp_path / "prepared" / "denoise"
    assert summary["train"] == 4 * 6 and summary["test"] == 6 and summary["sources"] == {"sidd_medium": 4}
    scene = "0002_001_S6_00100_00020_3200_N"
    source = f"sidd_medium__{scene}_011"
    full = _rgb(SIDD_MEDIUM[f"SIDD_Medium_Srgb/Data/{scene}/0002_NOISY_SRGB_011.PNG"])
    windows_of = read_windows(out)
    mine = sorted(name for name, (src, _) in windows_of.items() if src == source)
    assert mine == [f"{source}_y{y:04d}_x{x:04d}" for y in (0, 4) for x in (0, 6, 8)]
    for name in mine:
        y, x, h, w = windows_of[name][1]
        assert np.array_equal(read_image(out / "train" / "input" / f"{name}.png"), full[y:y + h, x:x + w])
    assert _names(out / "test" / "input")[0] == "sidd_val__0001_01"  # whole blocks
    assert read_image(out / "test" / "input" / "sidd_val__0001_01.png").shape == (8, 8, 3)

    (out / "train" / "target" / f"{mine[3]}.png").write_bytes(b"")  # as if killed inside the source
    written = record_writes(monkeypatch, out)
    _prepare(tmp_path, "denoise", ["sidd_medium"], ["sidd_val"], mirror=server.url, subimages={"sidd_medium": spec})
    assert sorted(written) == sorted(f"train/{kind}/{name}.png" for name in mine for kind in ("input", "target"))
    assert read_windows(out) == windows_of

    written.clear()
    _prepare(tmp_path, "denoise", ["sidd_medium"], ["sidd_val"], mirror=server.url,
             subimages={"sidd_medium": SubimageSpec(8, 8, 0)})
    assert len(_names(out / "train" / "input")) == 4 * 4 and len(written) == 2 * (4 * 4 + 6)


def test_extraction_resumes_and_drops_pairs_of_other_settings(server, tmp_path, monkeypatch):
    _prepare(tmp_path, "derain", ["rain13k"], ["rain100h", "rain100l"], mirror=server.url)
    out = tmp_path / "prepared" / "derain"
    (out / "test" / "target" / "rain100l__2.png").unlink()  # as if killed between a pair's two writes
    written = record_writes(monkeypatch, out)
    _prepare(tmp_path, "derain", ["rain13k"], ["rain100h", "rain100l"], mirror=server.url)
    assert written == ["test/input/rain100l__2.png", "test/target/rain100l__2.png"]  # only the unfinished pair
    _prepare(tmp_path, "derain", ["rain13k"], ["rain100h"], mirror=server.url)
    assert _names(out / "test" / "input") == ["rain100h__1", "rain100h__2"]  # rain100l pairs did not survive


def test_extraction_repairs_damaged_images_and_removes_stale_temps(server, tmp_path, monkeypatch):
    """A file under its final name is not trusted because it exists: a cut, emptied or bit-flipped PNG is written
    again; the hidden temp file of a killed write is removed."""
    _prepare(tmp_path, "derain", ["rain13k"], ["rain100h", "rain100l"], mirror=server.url)
    out = tmp_path / "prepared" / "derain"
    (out / "test" / "target" / "rain100l__2.png").write_bytes(b"")
    flipped = bytearray((out / "train" / "input" / "rain13k__2.png").read_bytes())
    flipped[len(flipped) // 2] ^= 0x01  # inside the image data: only its chunk's CRC tells
    (out / "train" / "input" / "rain13k__2.png").write_bytes(flipped)
    cut = out / "test" / "input" / "rain100h__1.png"
    cut.write_bytes(cut.read_bytes()[:-12])  # IEND lost
    stale = out / "test" / "target" / ".rain100h__2.png.k3j9x_q1.partial"
    stale.write_bytes(b"half an image")
    written = record_writes(monkeypatch, out)
    _prepare(tmp_path, "derain", ["rain13k"], ["rain100h", "rain100l"], mirror=server.url)
    assert sorted(written) == ["test/input/rain100h__1.png", "test/input/rain100l__2.png",
                               "test/target/rain100h__1.png", "test/target/rain100l__2.png",
                               "train/input/rain13k__2.png", "train/target/rain13k__2.png"]
    assert not stale.exists()
    assert np.array_equal(read_image(out / "train" / "input" / "rain13k__2.png"),
                          _rgb(RAIN_TRAIN["train/Rain13K/input/2.png"]))
    assert np.array_equal(read_image(cut), _rgb(RAIN_TEST["test/Rain100H/input/1.png"]))


def test_full_disk_during_extraction_then_rerun(server, tmp_path, monkeypatch):
    _prepare(tmp_path, "derain", ["rain13k"], ["rain100h"], mirror=server.url)  # archives fetched and pinned
    out = tmp_path / "prepared" / "derain"
    shutil.rmtree(out / "test")
    room = (out / "settings.json").stat().st_size + len(_png()) * 2  # the settings and about two images fit
    with monkeypatch.context() as m:
        full_disk(m, room)
        with pytest.raises(Sam4irError) as err:
            _prepare(tmp_path, "derain", ["rain13k"], ["rain100h"], mirror=server.url)
    msg = _one_line(err)
    assert re.fullmatch(rf"{re.escape(str(out / 'test'))}/(input|target)/rain100h__\d\.png: cannot write "
                        r"\(No space left on device\)", msg)
    assert not list((out / "test").rglob("*.partial"))
    _prepare(tmp_path, "derain", ["rain13k"], ["rain100h"], mirror=server.url)
    for side in ("input", "target"):
        for i in (1, 2):
            assert np.array_equal(read_image(out / "test" / side / f"rain100h__{i}.png"),
                                  _rgb(RAIN_TEST[f"test/Rain100H/{side}/{i}.png"]))
    assert sorted(p.name for p in (out / "test" / "input").iterdir()) == ["rain100h__1.png", "rain100h__2.png"]


@pytest.mark.parametrize("bomb", ["ratio", "size"])
def test_decompression_bomb_is_refused_in_one_line(tmp_path, monkeypatch, bomb):
    """4 MiB of zeros deflate to about 4 KB; in a tar the member's size is the tell (its limit set low here)."""
    zeros = bytes(4 << 20)
    if bomb == "ratio":
        path = tmp_path / "bomb.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("test/Rain100L/input/1.png", zeros)
        assert path.stat().st_size < 10_000
    else:
        monkeypatch.setattr(sam4ir.datasets.extract, "MAX_MEMBER_BYTES", 1 << 20)
        path = tmp_path / "bomb.tar.gz"
        path.write_bytes(_tar_gz({"test/Rain100L/input/1.png": zeros}))
    with pytest.raises(Sam4irError) as err:
        check_archive(path)
    msg = _one_line(err)
    assert msg.startswith(f"{path}: member test/Rain100L/input/1.png unpacks") and msg.endswith("refused")
    assert ("over 100:1" if bomb == "ratio" else f"{4 << 20} bytes, over the limit of {1 << 20}") in msg


def test_archive_check_streams_members(tmp_path):
    """Memory stays flat: an 8 MiB member is read in chunks, not whole (it used to be read into one bytes)."""
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("big.bin", bytes(8 << 20))
    tracemalloc.start()
    try:
        check_archive(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 << 20


def test_layout_errors_are_one_line(server, tmp_path):
    server.files["rain13k_test.zip"] = _zip({k: v for k, v in RAIN_TEST.items() if k != "test/Rain100L/target/2.png"})
    with pytest.raises(Sam4irError) as err:
        _prepare(tmp_path, "derain", ["rain13k"], ["rain100l"], mirror=server.url)
    assert "test/Rain100L/input/2.png has no target" in _one_line(err)
    with pytest.raises(Sam4irError) as err:
        _prepare(tmp_path, "derain", ["rain13k"], ["sidd_val"], mirror=server.url)
    assert "unknown derain dataset 'sidd_val'" in _one_line(err) and "rain100h" in str(err.value)


def _run_stage(tmp_path: Path, monkeypatch, download: dict) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())  # the whole file: stages check all of it
    params["tasks"] = ["derain"]
    params["data"].update(source="download", val_pairs=1)
    params["train"]["crop"] = 8  # the archives' images are tiny; prepare_data checks the crop fits them
    params["data"]["download"].update(cache="data/downloads", manifest="data/datasets.lock.json", **download)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["prepare_data", "--task", "derain"])
    run_stage(prepare_data.main)


def test_stage_downloads_into_prepared_layout(server, tmp_path, monkeypatch):
    _run_stage(tmp_path, monkeypatch, {"mirror": server.url, "derain": {"train": "rain13k", "test": ["test2800"]}})
    summary = json.loads((tmp_path / "data" / "prepared" / "derain" / "summary.json").read_text())
    assert summary == {"source": "download", "train": 2, "test": 2, "val": 1, "val_sources": 1,  # 3 - 1 held out
                       "val_sources_asked": summary["val_sources_asked"],
                       "sets": {"train": {"rain13k": 3}, "test": {"test2800": 2}}}
    held_out = json.loads((tmp_path / "data" / "prepared" / "derain" / "val_pairs.json").read_text())
    assert len(held_out) == 1 and held_out[0].startswith("rain13k__")  # a training pair, never a test one
    assert set(_pins(tmp_path / "data")) == {"rain13k_train.zip", "rain13k_test.zip"}


def test_stage_offline_stops_with_one_line(tmp_path, monkeypatch, capsys, closed_url):
    with pytest.raises(SystemExit) as exit_:
        _run_stage(tmp_path, monkeypatch, {"mirror": closed_url, "derain": {"train": "rain13k", "test": "rain100l"}})
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("sam4ir: error: rain13k_train.zip could not be downloaded")
    assert f"{closed_url}/rain13k_train.zip" in err and "data/downloads/rain13k_train.zip" in err
    assert "dvc pull data/prepared/derain" in err

"""sam4ir.download against a local HTTP server (127.0.0.1 only) and file:// URLs, and the SAM checkpoint checks
built on it (small stand-in files under the official names; nothing is downloaded from outside)."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import socket
from pathlib import Path

import numpy as np
import pytest

from local_http import serve

import sam4ir.download
from sam4ir.download import cached_sha256, download, sha256_file
from sam4ir.errors import Sam4irError
from sam4ir.sam import SAM_CHECKPOINTS, ensure_checkpoint
from sam4ir.sam.checkpoints import SAM_SHA256

DATA = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
SHA256 = hashlib.sha256(DATA).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range: bytes=N-`` unless ``server.ignore_range``."""

    def do_GET(self) -> None:
        server = self.server
        server.requests.append(dict(self.headers))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        start = int(match.group(1)) if match and not server.ignore_range else 0
        if start >= len(data) > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if server.cut_after is not None:  # simulate a dropped connection once
            body, server.cut_after = body[:server.cut_after], None
        server.bytes_sent += len(body)  # counted before writing: the client may finish before write() returns
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    yield from serve(_Handler, files={"/f.bin": DATA}, requests=[], bytes_sent=0, ignore_range=False, cut_after=None)


def _get(url: str, dest: Path, **kw) -> Path:
    return download(url, dest, progress=False, timeout=5, chunk_size=64 * 1024, **kw)


def test_full_download_verified(server, tmp_path):
    dest = _get(f"{server.url}/f.bin", tmp_path / "sub" / "f.bin", sha256=SHA256)
    assert dest.read_bytes() == DATA
    assert sha256_file(dest) == SHA256
    assert not (tmp_path / "sub" / "f.bin.part").exists()
    assert "Range" not in server.requests[0]


def test_existing_dest_is_not_fetched_again(server, tmp_path):
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"kept")
    assert _get(f"{server.url}/f.bin", dest, sha256=SHA256).read_bytes() == b"kept"
    assert server.requests == []


def test_resume_from_truncated_part(server, tmp_path):
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(DATA[:100_000])
    _get(f"{server.url}/f.bin", dest, sha256_prefix=SHA256[:10])
    assert server.requests[0]["Range"] == "bytes=100000-"
    assert server.bytes_sent == len(DATA) - 100_000
    assert dest.read_bytes() == DATA


def test_dropped_connection_keeps_part_and_next_call_resumes(server, tmp_path):
    dest = tmp_path / "f.bin"
    server.cut_after = 70_000
    with pytest.raises(Sam4irError, match="run again to resume") as err:
        _get(f"{server.url}/f.bin", dest, sha256=SHA256)
    assert "\n" not in str(err.value)
    assert (tmp_path / "f.bin.part").stat().st_size == 70_000 and not dest.exists()
    _get(f"{server.url}/f.bin", dest, sha256=SHA256)
    assert server.requests[1]["Range"] == "bytes=70000-"
    assert dest.read_bytes() == DATA


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.ignore_range = True
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"x" * 5000)  # wrong bytes: must not survive
    _get(f"{server.url}/f.bin", dest, sha256=SHA256)
    assert server.requests[0]["Range"] == "bytes=5000-"
    assert dest.read_bytes() == DATA


def test_complete_part_answered_416_is_verified_in_place(server, tmp_path):
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(DATA)
    _get(f"{server.url}/f.bin", dest, sha256=SHA256)
    assert server.bytes_sent == 0
    assert dest.read_bytes() == DATA


def test_wrong_hash_deletes_download(server, tmp_path):
    dest = tmp_path / "f.bin"
    wrong = "0" * 64
    with pytest.raises(Sam4irError) as err:
        _get(f"{server.url}/f.bin", dest, sha256=wrong)
    msg = str(err.value)
    assert "\n" not in msg and "f.bin" in msg and wrong in msg and SHA256 in msg
    assert not dest.exists() and not (tmp_path / "f.bin.part").exists()


def test_md5_prefix_checked(server, tmp_path):
    md5 = hashlib.md5(DATA).hexdigest()
    assert _get(f"{server.url}/f.bin", tmp_path / "a.bin", md5_prefix=md5[:6]).read_bytes() == DATA
    with pytest.raises(Sam4irError, match="md5 prefix mismatch"):
        _get(f"{server.url}/f.bin", tmp_path / "b.bin", md5_prefix="ffffff" if md5[:6] != "ffffff" else "000000")


def test_http_404_names_url_and_dest(server, tmp_path):
    dest = tmp_path / "nope.bin"
    with pytest.raises(Sam4irError, match="HTTP 404") as err:
        _get(f"{server.url}/nope.bin", dest)
    assert f"{server.url}/nope.bin" in str(err.value) and str(dest) in str(err.value)


def test_connection_refused_is_one_line(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/sam.pth"
    dest = tmp_path / "sam.pth"
    with pytest.raises(Sam4irError) as err:
        _get(url, dest)
    msg = str(err.value)
    assert "\n" not in msg and url in msg and f"download it manually to {dest}" in msg
    assert not dest.exists()


def test_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(DATA)
    dest = _get(src.as_uri(), tmp_path / "out" / "copy.bin", sha256_prefix=SHA256[:8])
    assert dest.read_bytes() == DATA
    with pytest.raises(Sam4irError, match="download it manually"):
        _get((tmp_path / "absent.bin").as_uri(), tmp_path / "x.bin")


def test_bad_hash_argument_rejected(tmp_path):
    with pytest.raises(Sam4irError, match="invalid sha256 prefix"):
        _get("file:///dev/null", tmp_path / "x.bin", sha256_prefix="xyz")


# --- remembered digests and the SAM checkpoints ------------------------------------------------------------------

@pytest.fixture
def hashes(monkeypatch) -> list[str]:
    """Names of the files sam4ir.download reads through to hash, in order."""
    read, real = [], sam4ir.download.sha256_file

    def sha256_file(path):
        read.append(os.fspath(path).rsplit("/", 1)[-1])
        return real(path)

    monkeypatch.setattr(sam4ir.download, "sha256_file", sha256_file)
    return read


def test_cached_sha256_reads_a_file_once_per_version(tmp_path, hashes):
    path = tmp_path / "big.bin"
    path.write_bytes(DATA)
    assert cached_sha256(path) == cached_sha256(path) == SHA256 and hashes == ["big.bin"]
    record = json.loads((tmp_path / "big.bin.sha256").read_text())
    assert record == {"size": len(DATA), "mtime_ns": path.stat().st_mtime_ns, "sha256": SHA256}
    path.write_bytes(DATA[::-1])  # same size: the new mtime alone must void the record
    os.utime(path, ns=(record["mtime_ns"] + 10**9,) * 2)
    assert cached_sha256(path) == hashlib.sha256(DATA[::-1]).hexdigest() and len(hashes) == 2
    (tmp_path / "big.bin.sha256").write_text("{not json")
    assert cached_sha256(path) == hashlib.sha256(DATA[::-1]).hexdigest() and len(hashes) == 3


def test_verified_download_records_its_digest(tmp_path, hashes):
    src = tmp_path / "src.bin"
    src.write_bytes(DATA)
    dest = _get(src.as_uri(), tmp_path / "out" / "f.bin", sha256=SHA256)
    assert cached_sha256(dest) == SHA256 and hashes == []  # hashed while verified, not read again
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.bin", "f.bin.sha256"]


def test_official_checkpoint_table_matches_the_urls():
    assert set(SAM_SHA256) == {name for name, _ in SAM_CHECKPOINTS.values()}
    assert all(url.endswith("/" + name) for name, url in SAM_CHECKPOINTS.values())
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in SAM_SHA256.values())


@pytest.fixture
def official_b(monkeypatch) -> str:
    """Pretend DATA is Meta's sam_vit_b_01ec64.pth (whose MD5 does not start with 01ec64)."""
    monkeypatch.setitem(SAM_SHA256, "sam_vit_b_01ec64.pth", SHA256)
    return "sam_vit_b_01ec64.pth"


def test_present_official_checkpoint_is_verified_once(tmp_path, official_b, hashes):
    path = tmp_path / official_b
    path.write_bytes(DATA)
    for _ in range(2):
        assert ensure_checkpoint("vit_b", path, download=False) == path
    assert hashes == [official_b]
    damaged = bytearray(DATA)
    damaged[1000] ^= 1
    mtime = path.stat().st_mtime_ns
    path.write_bytes(damaged)  # same size; a clock this coarse could also keep the mtime, so move it on
    os.utime(path, ns=(mtime + 10**9,) * 2)
    found = hashlib.sha256(damaged).hexdigest()
    with pytest.raises(Sam4irError) as err:
        ensure_checkpoint("vit_b", path, download=False)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: not the official {official_b}")
    assert SHA256 in msg and found in msg and "delete it" in msg and SAM_CHECKPOINTS["vit_b"][1] in msg


def test_present_checkpoint_is_named_by_its_url(tmp_path, official_b):
    """A file kept under another name is still the official one when its URL says so; a custom one is trusted."""
    path = tmp_path / "mine.pth"
    path.write_bytes(b"not the official bytes")
    assert ensure_checkpoint("vit_b", path, download=False) == path  # a custom checkpoint, as before: not read
    assert not (tmp_path / "mine.pth.sha256").exists()
    with pytest.raises(Sam4irError, match="mine.pth: not the official sam_vit_b_01ec64.pth"):
        ensure_checkpoint("vit_b", path, download=False, url=f"https://example.invalid/{official_b}")


def test_official_checkpoint_download_checks_the_full_sha256(tmp_path, official_b, hashes):
    served = tmp_path / "served" / official_b
    served.parent.mkdir()
    served.write_bytes(DATA)
    dest = ensure_checkpoint("vit_b", tmp_path / "ckpt.pth", download=True, url=served.as_uri(), progress=False)
    assert dest.read_bytes() == DATA and json.loads((tmp_path / "ckpt.pth.sha256").read_text())["sha256"] == SHA256
    assert ensure_checkpoint("vit_b", dest, download=False, url=served.as_uri()) == dest and hashes == []
    served.write_bytes(DATA[:-1] + b"!")
    with pytest.raises(Sam4irError, match=f"sha256 mismatch \\(expected {SHA256}"):
        ensure_checkpoint("vit_b", tmp_path / "other.pth", download=True, url=served.as_uri(), progress=False)
    assert not (tmp_path / "other.pth").exists()

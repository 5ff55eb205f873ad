"""Resumable, verified downloads of large files (SAM checkpoints, datasets).

Bytes stream into ``<dest>.part``; a later call resumes it with an HTTP Range request,
and the file is renamed onto ``dest`` only once it is complete and its hash matches,
so ``dest`` existing means "whole and verified"; its sha256, once computed, is remembered beside it
(:func:`cached_sha256`), so later checks need not read it again. Transfers use the standard library only
(``urllib``, which also gives ``file://`` URLs for free). Google Drive links go through Drive's
"can't scan this file for viruses" confirmation page first (``google_drive=True``).
"""

from __future__ import annotations

import contextlib
import hashlib
import html.parser
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path


from sam4ir.errors import Sam4irError
from sam4ir.io import write_json
from sam4ir.progress import progress_bar

SIDECAR_SUFFIX = ".sha256"  # <file>.sha256: the file's digest, remembered with its size and mtime


class UnreachableError(Sam4irError):
    """The server could not be reached or refused the file (nothing was received): another source may work."""

    def __init__(self, message: str, url: str, reason: str) -> None:
        super().__init__(message)
        self.url, self.reason = url, reason


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, sha256_prefix: str | None = None,
             md5_prefix: str | None = None, progress: bool = True, timeout: float = 30,
             chunk_size: int = 1 << 20, google_drive: bool = False) -> Path:
    """Fetch ``url`` to ``dest`` unless it exists; resume a partial download; verify; return ``dest``.

    ``sha256`` is a full hex digest; ``sha256_prefix`` / ``md5_prefix`` are leading hex digits
    (the convention of file names such as torch.hub's ``name-<sha256 prefix>.pth`` or SAM's
    ``sam_vit_h_<md5 prefix>.pth``). A file failing a check is deleted and a one-line
    :class:`Sam4irError` names it with the expected and actual digests. An unreachable server
    raises :class:`UnreachableError`. A computed sha256 is recorded in ``<dest>.sha256`` (:func:`cached_sha256`).
    With ``google_drive`` the URL is a Drive download link
    (``https://drive.google.com/uc?export=download&id=<id>``) whose large-file confirmation page
    is answered before the file is streamed (and resumed) from the link that page gives.
    """
    dest = Path(dest)
    if dest.is_file():
        return dest
    checks = _checks(sha256, sha256_prefix, md5_prefix)
    part = dest.with_suffix(dest.suffix + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())  # Drive's confirm flow sets cookies
    file_url = _confirm_google_drive(url, dest, opener, timeout) if google_drive else url
    _fetch(url, dest, part, opener=opener, file_url=file_url, google_drive=google_drive, progress=progress,
           timeout=timeout, chunk_size=chunk_size)
    actual = _verify(part, dest, checks)
    os.replace(part, dest)
    if "sha256" in actual:
        _remember(dest, actual["sha256"])
    return dest


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks (checkpoints are gigabytes)."""
    return _digests(Path(path), ["sha256"])["sha256"]


def cached_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read once per version of it: the digest is kept in ``<file>.sha256`` with the file's
    size and mtime and reused while both are unchanged, so checking a multi-GB checkpoint or archive on every
    run costs a ``stat``, not a re-read. (A change keeping both, to the nanosecond, would go unseen; deleting the
    ``.sha256`` forces a re-read.)"""
    path = Path(path)
    stat = path.stat()
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        record = json.loads(_sidecar(path).read_text())
        if (record["size"], record["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns) \
                and re.fullmatch(r"[0-9a-f]{64}", record["sha256"]):
            return record["sha256"]
    digest = sha256_file(path)
    _remember(path, digest, stat)
    return digest


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _remember(path: Path, digest: str, stat: os.stat_result | None = None) -> None:
    """Record ``digest`` beside ``path`` (atomically). ``stat`` is the file's as it was before hashing, so a file
    changed meanwhile no longer matches its record. A folder we may not write to only costs the next run a re-read."""
    stat = stat or path.stat()
    with contextlib.suppress(Sam4irError):
        write_json(_sidecar(path), {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest})


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


def _fetch(url: str, dest: Path, part: Path, *, opener: urllib.request.OpenerDirector, file_url: str,
           google_drive: bool, progress: bool, timeout: float, chunk_size: int) -> None:
    """Stream ``file_url`` into ``part``, continuing from its current size when the server honours Range.

    ``url`` is the address the user knows (named in errors); ``file_url`` the one serving the bytes.
    """
    offset = part.stat().st_size if part.is_file() else 0
    try:
        resp = opener.open(_request(file_url, offset), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code != 416 or offset == 0:
            raise _unreachable(url, dest, f"HTTP {err.code} {err.reason}") from None
        # Range not satisfiable: the .part is already whole (then verify it) or longer than the file.
        if _content_range(err.headers.get("Content-Range", ""))[1] == offset:
            return
        part.unlink()
        return _fetch(url, dest, part, opener=opener, file_url=file_url, google_drive=google_drive,
                      progress=progress, timeout=timeout, chunk_size=chunk_size)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise _unreachable(url, dest, _reason(err)) from None
    with resp:
        if google_drive and _is_html(resp):  # a Drive page (quota exceeded, access denied) instead of the file
            raise _unreachable(url, dest, _drive_refusal(resp.read(1 << 20).decode("utf-8", "replace")))
        if getattr(resp, "status", None) == 206:
            start, total = _content_range(resp.headers.get("Content-Range", ""))
            if start != offset:
                raise _unreachable(url, dest, f"asked for bytes from {offset}, server sent from {start}")
        else:  # full body: no Range asked, or the server ignored it
            offset = 0
            length = resp.headers.get("Content-Length")
            total = int(length) if length is not None else None
        with open(part, "ab" if offset else "wb") as out, \
                progress_bar(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
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


def _unreachable(url: str, dest: Path, reason: str) -> UnreachableError:
    return UnreachableError(f"{dest.name} is missing and could not be downloaded from {url} ({reason}); "
                            f"download it manually to {dest}", url, reason)


def _is_html(resp: http.client.HTTPResponse) -> bool:
    return resp.headers.get("Content-Type", "").lower().startswith("text/html")


def _confirm_google_drive(url: str, dest: Path, opener: urllib.request.OpenerDirector, timeout: float) -> str:
    """The link that serves the Drive file behind ``url``: ``url``'s final address when Drive sends the file
    at once (small files), else the one its large-file confirmation page leads to. Reads the page, never the file.
    """
    try:
        with opener.open(url, timeout=timeout) as resp:
            if not _is_html(resp):
                return resp.geturl()
            page, base = resp.read(1 << 20).decode("utf-8", "replace"), resp.geturl()
    except urllib.error.HTTPError as err:
        raise _unreachable(url, dest, f"HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as err:
        raise _unreachable(url, dest, _reason(err)) from None
    parser = _DrivePage()
    parser.feed(page)
    if parser.form_action is not None:  # today's page: <form id="download-form"> with hidden id/export/confirm/uuid
        action = urllib.parse.urljoin(base, parser.form_action)
        return f"{action}{'&' if '?' in action else '?'}{urllib.parse.urlencode(parser.form_fields)}"
    if parser.confirm_href is not None:  # older page: a plain "Download anyway" link
        return urllib.parse.urljoin(base, parser.confirm_href)
    raise _unreachable(url, dest, _drive_refusal(page))


def _drive_refusal(page: str) -> str:
    """Drive's own explanation (e.g. its download quota) from an error page, as one line."""
    parser = _DrivePage()
    parser.feed(page)
    detail = " ".join(parser.error.split())
    return f"Google Drive: {detail}" if detail else "Google Drive sent a web page instead of the file"


class _DrivePage(html.parser.HTMLParser):
    """What a Drive confirmation or error page offers: the download form, a confirm link, an error text."""

    def __init__(self) -> None:
        super().__init__()
        self.form_action: str | None = None
        self.form_fields: dict[str, str] = {}
        self.confirm_href: str | None = None
        self.error = ""
        self._in_form = self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "download-form":
            self.form_action, self._in_form = a.get("action", ""), True
        elif tag == "input" and self._in_form and a.get("type") == "hidden" and a.get("name"):
            self.form_fields[a["name"]] = a.get("value", "")
        elif tag == "a" and self.confirm_href is None and "confirm=" in a.get("href", "") \
                and "export=download" in a.get("href", ""):
            self.confirm_href = a["href"]
        elif tag == "p" and "uc-error-subcaption" in a.get("class", "").split():
            self._in_error = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "p":
            self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.error += data


def _reason(err: BaseException) -> str:
    reason = getattr(err, "reason", None) or err
    return " ".join(str(reason).split()) or type(err).__name__


def _verify(part: Path, dest: Path, checks: list[tuple[str, str, str]]) -> dict[str, str]:
    """Delete ``part`` and raise if any digest does not start with the expected hex digits; return the digests."""
    if not checks:
        return {}
    actual = _digests(part, sorted({algo for algo, _, _ in checks}))
    for algo, expected, label in checks:
        if not actual[algo].startswith(expected):
            part.unlink()
            raise Sam4irError(f"{dest.name}: {label} mismatch (expected {expected}, got {actual[algo]}); "
                              f"the download was deleted")
    return actual


def _digests(path: Path, algorithms: list[str]) -> dict[str, str]:
    hashers = {algo: hashlib.new(algo) for algo in algorithms}
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            for h in hashers.values():
                h.update(chunk)
    return {algo: h.hexdigest() for algo, h in hashers.items()}

"""The checked-in manifest of dataset archives (``data/datasets.lock.json``).

Most official hosts publish no checksums, so the first download of an archive pins its sha256 and size here;
committed, the pin makes every later download, on any machine, verify against the same bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from sam4ir.errors import Sam4irError
from sam4ir.io import write_json

ABOUT = ("sha256 and size of every dataset archive, pinned by prepare_data (data.source: download) on its first "
         "download and verified on every later one; commit this file when it changes")


@dataclass(frozen=True)
class Pin:
    sha256: str
    size: int


def read_pins(path: Path) -> dict[str, Pin]:
    """Pinned archives by file name; an absent manifest pins nothing."""
    if not path.is_file():
        return {}
    try:
        archives = json.loads(path.read_text())["archives"]
        pins = {name: Pin(entry["sha256"], entry["size"]) for name, entry in archives.items()}
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise Sam4irError(f"{path}: not a dataset manifest ({type(err).__name__}: {err}); expected "
                          '{"archives": {"<file>": {"sha256": ..., "size": ...}}}') from None
    for name, pin in pins.items():
        if not (isinstance(pin.sha256, str) and re.fullmatch(r"[0-9a-f]{64}", pin.sha256)
                and isinstance(pin.size, int)):
            raise Sam4irError(f"{path}: entry '{name}' needs a lower-case hex sha256 (64 digits) and an integer size")
    return pins


def pin(path: Path, name: str, sha256: str, size: int, url: str | None) -> None:
    """Record an archive's digest (atomic rewrite; the other entries are re-read first, so they are kept)."""
    read_pins(path)  # refuse to rewrite a manifest that does not parse
    entries = json.loads(path.read_text())["archives"] if path.is_file() else {}
    entries[name] = {"sha256": sha256, "size": size, "url": url}
    write_json(path, {"about": ABOUT, "archives": dict(sorted(entries.items()))})

"""Which label maps on disk are the segmenter's output, by content.

A label map that merely decodes is not necessarily ours: one overwritten with zeros of the right size, or copied
from another run, would be kept by a check that only decodes, trained on and recorded in ``dvc.lock``. So each map
written is recorded with the sha256 of its bytes and of the prepared image it labels, and a map is kept only while
both still match. Records are appended, per process, to ``maps.<i>-of-<n>.jsonl`` beside the maps as they are
written (safe under torchrun, and a killed run resumes from them); a run that covers every image folds them into
``maps.json``, part of the DVC out.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from sam4ir.errors import Sam4irError
from sam4ir.io import write_json

LEDGER = "maps.json"
PARTS = "maps.*.jsonl"
_SHOWN = 3  # map names listed in a note


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class MapLedger:
    """The records of the label maps in ``folder``: map file name -> {map, map_sha256, image_sha256}."""

    def __init__(self, folder: Path, part: str = "0-of-1") -> None:
        self.folder, self.part = folder, folder / f"maps.{part}.jsonl"
        self.records = self._read()
        self.mismatched: list[str] = []

    def _read(self) -> dict[str, dict]:
        records: dict[str, dict] = {}
        ledger = self.folder / LEDGER
        if ledger.is_file():
            try:
                records.update(json.loads(ledger.read_text()))
            except (ValueError, UnicodeDecodeError) as err:  # truncated or garbled: rebuilt from what is verified
                print(f"sam4ir: note: {ledger}: unreadable ({type(err).__name__}); its label maps are recomputed",
                      file=sys.stderr)
        for part in sorted(self.folder.glob(PARTS)):
            for line in part.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                    records[record["map"]] = record
                except (ValueError, KeyError, TypeError):  # the last line of a killed run may be cut
                    continue
        return records

    def verified(self, map_path: Path, image: Path) -> bool:
        """Whether ``map_path`` exists and is, byte for byte, the map recorded for ``image`` as it is now."""
        if not map_path.is_file():
            return False
        record = self.records.get(map_path.name)
        ok = (record is not None and record["map_sha256"] == sha256_file(map_path)
              and record["image_sha256"] == sha256_file(image))
        if not ok:
            self.mismatched.append(map_path.name)
        return ok

    def report(self) -> None:
        """One note naming the maps that were on disk but did not match their records (they are recomputed)."""
        if self.mismatched:
            names = ", ".join(self.mismatched[:_SHOWN]) + (", ..." if len(self.mismatched) > _SHOWN else "")
            print(f"sam4ir: note: {len(self.mismatched)} label map(s) in {self.folder} do not match what was recorded "
                  f"when they were written ({names}); recomputing them", file=sys.stderr)

    def record(self, map_path: Path, image: Path) -> None:
        entry = {"map": map_path.name, "map_sha256": sha256_file(map_path), "image_sha256": sha256_file(image)}
        self.records[map_path.name] = entry
        try:
            with open(self.part, "a") as f:
                f.write(json.dumps(entry) + "\n")
        except OSError as err:
            raise Sam4irError(f"{self.part}: cannot write ({err.strerror or err})") from None

    def fold(self) -> None:
        """Write ``maps.json`` from every record whose map is still there (parts of other processes included)
        and remove the parts: called once every process has finished."""
        records = self._read()
        kept = {name: records[name] for name in sorted(records) if (self.folder / name).is_file()}
        write_json(self.folder / LEDGER, kept)
        for part in self.folder.glob(PARTS):
            part.unlink()

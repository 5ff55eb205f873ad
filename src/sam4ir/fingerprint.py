"""One small file that stands for a whole data folder, so later DVC stages depend on it instead of the folder.

DVC walks every folder it is given, each time a stage names it: a prepared paper-size set (tens of thousands of
sub-images and as many label maps) named by six downstream stages made a no-op ``dvc repro`` take ~18 s
(``benchmarks/bench_dvc_scale.py``). The stage that writes a folder (its DVC out) therefore finishes by writing
``fingerprint.json`` inside it: a sha256 over the relative path, size and content of every file, computed from
the files as they are on disk. Whatever changes the folder (a rerun, a repaired or replaced file) changes the
fingerprint, and the stages that read the folder re-run. A training run's fingerprint also covers its training logs
(``data/runs/<method>/fingerprint.json``: the checkpoints and ``data/live/<method>``), the two outs its stage writes
together: evaluate and report then depend on one file per run instead of walking both folders again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sam4ir.io import TEMP_SUFFIX, write_json

FINGERPRINT = "fingerprint.json"


def folder_files(folder: Path) -> list[Path]:
    """The folder's data files in a fixed order: not the fingerprint itself, not a writer's leftover temp file."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.name != FINGERPRINT and not p.name.endswith(TEMP_SUFFIX))


def digest_files(root: Path, files: list[Path]) -> dict:
    """{files, bytes, sha256}: one sha256 over each file's path relative to ``root``, its size and its content."""
    digest, size = hashlib.sha256(), 0
    for path in files:
        with open(path, "rb") as f:
            content = hashlib.file_digest(f, "sha256").digest()
        stat_size = path.stat().st_size
        size += stat_size
        digest.update(f"{path.relative_to(root).as_posix()}\0{stat_size}\0".encode() + content)
    return {"files": len(files), "bytes": size, "sha256": digest.hexdigest()}


def write_fingerprint(folder: Path, *others: Path) -> dict:
    """Write ``<folder>/fingerprint.json`` ({files, bytes, sha256}) from the files of the folder and of ``others``
    (folders the same stage writes beside it), paths relative to the folders' common parent; return it."""
    folders = (folder, *others)
    record = digest_files(Path(os.path.commonpath(folders)), [f for d in folders for f in folder_files(d)])
    write_json(folder / FINGERPRINT, record)
    return record

"""A task's benchmark sets, downloaded and written into the common paired layout
``<out>/{train,test}/{input,target}/<set>__<name>.png``; a training set with sub-image settings is written as
the sub-images of each pair instead (``<set>__<name>_y<y>_x<x>.png``, recorded in ``<out>/subimages.json``, see
:mod:`sam4ir.datasets.subimages`).

Several sets may share a split (deraining tests on five): their pairs sit side by side, each file name prefixed
with its set's name and ``__`` (set names never contain ``__``), so one split folder serves training and
evaluation while per-set scores can still be grouped by the prefix. Extraction is resumable: every image is
written atomically, and pairs already written under the same settings (``settings.json``) are skipped once their
files are checked whole; temp files a killed run left behind are removed.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Mapping, Sequence


from sam4ir.data import scan_pairs
from sam4ir.data.paired import SEPARATOR, VAL_PAIRS
from sam4ir.datasets.extract import open_pairs
from sam4ir.datasets.fetch import fetch_archive
from sam4ir.datasets.registry import ARCHIVES, DATASETS, Dataset
from sam4ir.datasets.subimages import MANIFEST, Manifest, SubimageSpec, write_subimages
from sam4ir.errors import Sam4irError
from sam4ir.io import PNG_SIGNATURE, TEMP_SUFFIX, write_image, write_json
from sam4ir.progress import progress_bar

SPLITS = ("train", "test")


def prepare_download(task: str, train: Sequence[str], test: Sequence[str], out: Path, *, cache: Path,
                     manifest: Path, mirror: str | None = None, subimages: Mapping[str, SubimageSpec] | None = None,
                     progress: bool = True, timeout: float = 30) -> dict:
    """Download (or reuse from ``cache``) the archives of the ``train`` and ``test`` sets of :data:`DATASETS`,
    verify or pin them in ``manifest``, and extract their pairs into ``out``; return the pair counts.

    A training set named in ``subimages`` is cut into its sub-images (test splits stay whole, to be scored as
    published). Every archive is fetched before any extraction, so a missing one stops the run early.
    """
    sets = {"train": list(train), "test": list(test)}
    for split, names in sets.items():
        _check_sets(task, split, names)
    needed = dict.fromkeys(a for names in sets.values() for n in names for a in DATASETS[n].layout.archives)
    hint = f", or `dvc pull {out}` from a DVC remote that holds it"
    files = {a: fetch_archive(ARCHIVES[a], cache, manifest, mirror=mirror, pull_hint=hint, progress=progress,
                              timeout=timeout) for a in needed}
    subimages = subimages or {}
    cut = {name: subimages[name] for name in sets["train"] if subimages.get(name) is not None}
    settings = {"source": "download", **sets}
    if cut:
        settings["subimages"] = {name: asdict(spec) for name, spec in cut.items()}
    if _recorded(out) != settings:
        clear(out)
    write_json(out / "settings.json", settings)
    windows = Manifest(out, settings["subimages"]) if cut else None
    counts = {split: {name: _extract(DATASETS[name], name, files, out / split, progress,
                                     cut.get(name) if split == "train" else None, windows) for name in names}
              for split, names in sets.items()}
    if windows is not None:
        windows.save()
    for split in SPLITS:
        found = len(scan_pairs(out, split, check_images=False))
        if found != sum(counts[split].values()):
            raise Sam4irError(f"{out / split}: {found} pairs on disk, {sum(counts[split].values())} extracted "
                              f"(files from elsewhere in the folder?)")
    summary = {split: sum(counts[split].values()) for split in SPLITS} | {"sets": counts}
    if windows is not None:
        summary["sources"] = {name: sum(1 for s in windows.sources if s.startswith(f"{name}{SEPARATOR}"))
                              for name in cut}
    return summary


def clear(out: Path) -> None:
    """Remove the prepared pairs, the validation hold-out and their settings (before a source that rebuilds
    everything)."""
    for split in (*SPLITS, "val"):
        shutil.rmtree(out / split, ignore_errors=True)
    for name in ("settings.json", VAL_PAIRS, MANIFEST):
        (out / name).unlink(missing_ok=True)


def _check_sets(task: str, split: str, names: list[str]) -> None:
    if not names:
        raise Sam4irError(f"data.download.{task}.{split}: no dataset named")
    choices = sorted(n for n, d in DATASETS.items() if d.task == task)
    for name in names:
        if name not in choices:
            raise Sam4irError(f"data.download.{task}.{split}: unknown {task} dataset '{name}' "
                              f"(choose from {', '.join(choices)})")
    if len(set(names)) != len(names):
        raise Sam4irError(f"data.download.{task}.{split}: a dataset is named twice in {names}")


def _recorded(out: Path) -> dict | None:
    try:
        return json.loads((out / "settings.json").read_text())
    except (OSError, ValueError):
        return None


def _extract(dataset: Dataset, name: str, files: dict[str, Path], split_dir: Path, progress: bool,
             spec: SubimageSpec | None = None, windows: Manifest | None = None) -> int:
    """Write the set's pairs (or, with ``spec``, their sub-images) not yet on disk whole; return how many
    prepared pairs it has."""
    for kind in ("input", "target"):  # left by a killed run (a finished write renames or removes its own)
        for stale in (split_dir / kind).glob(f".{name}{SEPARATOR}*{TEMP_SUFFIX}"):
            stale.unlink(missing_ok=True)
    if spec is not None:
        return _extract_subimages(dataset, name, files, split_dir, progress, spec, windows)
    with open_pairs(dataset.layout, files) as pairs:
        paths = {pair: (split_dir / "input" / f"{name}{SEPARATOR}{pair}.png",
                        split_dir / "target" / f"{name}{SEPARATOR}{pair}.png") for pair in pairs.names}
        todo = [pair for pair, (inp, tgt) in paths.items() if not (_whole_png(inp) and _whole_png(tgt))]
        for pair in progress_bar(todo, desc=f"extract {name}", disable=not progress):
            img, target = pairs.load(pair)
            write_image(paths[pair][0], img)
            write_image(paths[pair][1], target)
        return len(pairs.names)


def _extract_subimages(dataset: Dataset, name: str, files: dict[str, Path], split_dir: Path, progress: bool,
                       spec: SubimageSpec, windows: Manifest) -> int:
    """Cut every pair of the set into its sub-images; a pair the manifest lists with all its sub-images whole on
    disk is kept without being decoded."""
    with open_pairs(dataset.layout, files) as pairs:
        sources = {pair: f"{name}{SEPARATOR}{pair}" for pair in pairs.names}
        todo = [pair for pair, source in sources.items() if not _whole_source(split_dir, windows.sources.get(source))]
        for pair in progress_bar(todo, desc=f"extract {name} sub-images", disable=not progress):
            img, target = pairs.load(pair)
            cut = write_subimages(split_dir, sources[pair], {"input": img, "target": target}, spec)
            windows.add(sources[pair], img.shape[:2], cut)
        return sum(len(windows.sources[source]["subimages"]) for source in sources.values())


def _whole_source(split_dir: Path, entry: dict | None) -> bool:
    return entry is not None and all(_whole_png(split_dir / kind / f"{sub}.png") for sub in entry["subimages"]
                                     for kind in ("input", "target"))


def _whole_png(path: Path) -> bool:
    """Whether ``path`` is a PNG whose every chunk matches its CRC-32, IEND last, at the end of the file: an
    existing image is not trusted because it exists (a copy cut short, bit rot, a file placed by hand). Checking
    the CRCs reads the file once without decoding it, far cheaper than extracting the pair again."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if f.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
                return False
            while len(head := f.read(8)) == 8:
                length, kind = int.from_bytes(head[:4], "big"), head[4:]
                if length > size - f.tell() - 4:  # a chunk running past the end: cut short, or a garbled length
                    return False
                data, crc = f.read(length), f.read(4)
                if zlib.crc32(data, zlib.crc32(kind)) != int.from_bytes(crc, "big"):
                    return False
                if kind == b"IEND":
                    return f.tell() == size
            return False
    except OSError:
        return False

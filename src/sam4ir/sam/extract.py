"""Running a segmenter over a folder of images, resumably and shardable.

Each label map is written atomically as ``<out_dir>/<image stem>.png`` and recorded by content
(:mod:`sam4ir.sam.ledger`); an existing one is skipped only if it is byte for byte the map recorded for its image
as the image is now, so a killed run continues where it stopped and a damaged or altered map is redone, never
trusted because it exists. ``shard=(i, n)`` lets n processes (or GPUs) split the sorted image list without
coordination.

Sub-images (``sam4ir.datasets.subimages``) are segmented through their source: a :class:`SourceImage` is rebuilt
from its sub-images, segmented once, and each sub-image's label map is its window of the source's map (a segment
cut by a window keeps its id, so a crop's ids are unique but need not be contiguous). Shards split sources.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence, TypeVar

import numpy as np

from sam4ir.datasets.subimages import Window, assemble, group_by_source
from sam4ir.errors import Sam4irError
from sam4ir.io import read_image, read_label_map, write_image
from sam4ir.progress import progress_bar
from sam4ir.sam.controls import PathLabeler, Segmenter
from sam4ir.sam.ledger import MapLedger


@dataclass(frozen=True)
class SourceImage:
    """One image the segmenter sees once, and the prepared images whose label maps come from its map: the image
    itself (window ``None``), or the sub-images of a source, each with its window."""

    path: Path  # the image file; for sub-images <folder>/<source>.png, a name only (no such file)
    crops: tuple[tuple[Path, Window | None], ...]

    @classmethod
    def whole(cls, path: str | os.PathLike) -> "SourceImage":
        return cls(Path(path), ((Path(path), None),))

    def load(self) -> np.ndarray:
        if self.crops == ((self.path, None),):
            return read_image(self.path)
        return assemble(self.crops, read_image)

    def cut(self, labels: np.ndarray) -> list[tuple[Path, np.ndarray]]:
        """Each prepared image with its label map: its window of the source's map ``labels``."""
        return [(path, labels if win is None else np.ascontiguousarray(labels[win[0]:win[0] + win[2],
                                                                              win[1]:win[1] + win[3]]))
                for path, win in self.crops]


def source_images(image_paths: Iterable[Path], windows_of: Mapping[str, tuple[str, Window]]) -> list[SourceImage]:
    """The prepared images grouped into what the segmenter sees: sub-images (``windows_of``: name -> source and
    window, from ``subimages.json``) by their source, every other image alone; sorted by path."""
    by_name = {p.stem: p for p in image_paths}
    found = []
    for source, names in group_by_source(by_name, windows_of).items():
        if names == [source]:
            found.append(SourceImage.whole(by_name[source]))
        else:
            folder = by_name[names[0]].parent
            found.append(SourceImage(folder / f"{source}.png", tuple((by_name[n], windows_of[n][1]) for n in names)))
    return sorted(found, key=lambda s: s.path)


def extract_masks(images: Iterable[str | os.PathLike | SourceImage], out_dir: str | os.PathLike,
                  segmenter: Segmenter | PathLabeler, *,
                  batch_size: int = 1, shard: tuple[int, int] = (0, 1), progress: bool = True,
                  desc: str = "masks", fold: bool | None = None) -> dict:
    """Write the label maps of every source image of this shard that lacks a verified one (image paths are their
    own source); return counts (``segmented``: images the segmenter ran on) and seconds. ``fold``: write the
    folder's ``maps.json`` at the end (default: when this process covers every image, ``shard`` n = 1)."""
    out_dir = Path(out_dir)
    index, count = shard
    if not 0 <= index < count:
        raise Sam4irError(f"shard {index}/{count}: expected 0 <= i < n")
    if batch_size < 1:
        raise Sam4irError(f"batch size {batch_size}: expected >= 1")
    mine = select_shard([s if isinstance(s, SourceImage) else SourceImage.whole(s) for s in images], shard)
    ledger = MapLedger(out_dir, f"{index}-of-{count}")
    todo = [s for s in mine if not all([ledger.verified(label_map_path(out_dir, path), path) for path, _ in s.crops])]
    ledger.report()
    maps_of = lambda sources: sum(len(s.crops) for s in sources)  # noqa: E731
    start = time.perf_counter()
    with progress_bar(total=len(mine), initial=len(mine) - len(todo), unit="img", desc=desc, disable=not progress) as bar:
        for i in range(0, len(todo), batch_size):
            batch = todo[i:i + batch_size]
            pixels = [s.load() for s in batch]
            maps = (segmenter([s.path for s in batch], pixels) if isinstance(segmenter, PathLabeler)
                    else segmenter(pixels))
            for source, image, labels in zip(batch, pixels, maps):
                if labels.shape != image.shape[:2] or labels.dtype != np.uint16:
                    raise RuntimeError(f"{source.path}: segmenter returned {labels.dtype} {labels.shape}")
                for path, crop in source.cut(labels):  # all of them: a source's maps always come from one map
                    write_image(label_map_path(out_dir, path), crop)
                    ledger.record(label_map_path(out_dir, path), path)
            bar.update(len(batch))
    if count == 1 if fold is None else fold:
        ledger.fold()
    return {"images": maps_of(mine), "sources": len(mine), "segmented": len(todo), "written": maps_of(todo),
            "skipped": maps_of(mine) - maps_of(todo), "seconds": round(time.perf_counter() - start, 3)}


Item = TypeVar("Item", Path, SourceImage)


def select_shard(items: Iterable[Item], shard: tuple[int, int]) -> list[Item]:
    """Every n-th path (or source image) of the list sorted by path, starting at i: shards are disjoint and cover
    all items."""
    index, count = shard
    return sorted(items, key=lambda item: item.path if isinstance(item, SourceImage) else Path(item))[index::count]


def label_map_path(out_dir: Path, image_path: Path) -> Path:
    return out_dir / f"{image_path.stem}.png"


def segment_counts(label_map_paths: Sequence[Path]) -> list[int]:
    """Number of segments (non-zero ids) in each label map on disk."""
    return [int(np.count_nonzero(np.bincount(read_label_map(p).ravel())[1:])) for p in label_map_paths]

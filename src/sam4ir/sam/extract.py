"""Running a segmenter over a folder of images, resumably and shardable.

Each label map is written atomically as ``<out_dir>/<image stem>.png``; an existing one that decodes is
skipped, so a killed run continues where it stopped (a damaged one is redone, never trusted because it exists),
and ``shard=(i, n)`` lets n processes (or GPUs) split the sorted image list without coordination.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from sam4ir.errors import Sam4irError
from sam4ir.io import read_image, read_label_map, write_image
from sam4ir.sam.controls import PathLabeler, Segmenter
from sam4ir.progress import progress_bar


def extract_masks(image_paths: Iterable[str | os.PathLike], out_dir: str | os.PathLike,
                  segmenter: Segmenter | PathLabeler, *,
                  batch_size: int = 1, shard: tuple[int, int] = (0, 1), progress: bool = True,
                  desc: str = "masks") -> dict:
    """Write a label map for every image of this shard that has none yet; return counts and seconds."""
    out_dir = Path(out_dir)
    index, count = shard
    if not 0 <= index < count:
        raise Sam4irError(f"shard {index}/{count}: expected 0 <= i < n")
    if batch_size < 1:
        raise Sam4irError(f"batch size {batch_size}: expected >= 1")
    mine = select_shard(image_paths, shard)
    todo = [p for p in mine if not _intact(label_map_path(out_dir, p))]
    start = time.perf_counter()
    with progress_bar(total=len(mine), initial=len(mine) - len(todo), unit="img", desc=desc, disable=not progress) as bar:
        for i in range(0, len(todo), batch_size):
            batch = todo[i:i + batch_size]
            images = [read_image(p) for p in batch]
            maps = segmenter(batch, images) if isinstance(segmenter, PathLabeler) else segmenter(images)
            for path, image, labels in zip(batch, images, maps):
                if labels.shape != image.shape[:2] or labels.dtype != np.uint16:
                    raise RuntimeError(f"{path}: segmenter returned {labels.dtype} {labels.shape}")
                write_image(label_map_path(out_dir, path), labels)
            bar.update(len(batch))
    return {"images": len(mine), "written": len(todo), "skipped": len(mine) - len(todo),
            "seconds": round(time.perf_counter() - start, 3)}


def _intact(path: Path) -> bool:
    """A kept label map must decode; a 0-byte or truncated one (a full disk, a crashed copy) is redone."""
    if not path.is_file():
        return False
    try:
        read_label_map(path)
    except Sam4irError as err:
        print(f"sam4ir: note: {err}; recomputing it", file=sys.stderr)
        return False
    return True


def select_shard(image_paths: Iterable[str | os.PathLike], shard: tuple[int, int]) -> list[Path]:
    """Every n-th path of the sorted list, starting at i: shards are disjoint and cover all paths."""
    index, count = shard
    return sorted(Path(p) for p in image_paths)[index::count]


def label_map_path(out_dir: Path, image_path: Path) -> Path:
    return out_dir / f"{image_path.stem}.png"


def segment_counts(label_map_paths: Sequence[Path]) -> list[int]:
    """Number of segments (non-zero ids) in each label map on disk."""
    return [int(np.count_nonzero(np.bincount(read_label_map(p).ravel())[1:])) for p in label_map_paths]

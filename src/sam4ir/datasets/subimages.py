"""Training images cut into overlapping sub-images once, as the field prepares its large sets (BasicSR's
``scripts/data_preparation/extract_subimages.py``, used by NAFNet for SIDD and GoPro).

A training loader then decodes a 512x512 sub-image per sample instead of a whole 5256x3000 SIDD pair. Windows are
placed exactly as BasicSR places them: starts ``0, step, 2*step, ...`` while a window fits, plus one last window
flush with the border when more than ``thresh_size`` pixels would be left uncovered. An image side shorter than the
window gets one window of its whole length (BasicSR would fail on it), so a small image is kept whole.

Sub-image ``y``/``x`` of source ``<set>__<name>`` is named ``<set>__<name>_y<y>_x<x>``. The prepared folder's
``subimages.json`` records every source image with its shape and the window of each of its sub-images: SAM segments
the source once (rebuilt from its sub-images, see :func:`assemble`), the validation hold-out keeps a source's
windows together, and a report can find where any crop came from.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from sam4ir.errors import Sam4irError
from sam4ir.io import write_image, write_json

MANIFEST = "subimages.json"
ABOUT = ("the sub-images of the training split: each source image (<set>__<name>), its shape [h, w] and every "
         "sub-image cut from it with its window [y, x, h, w]; written by prepare_data")
WRITERS = min(8, os.cpu_count() or 1)  # threads writing one source's sub-images (BasicSR uses a process pool)
SAVE_EVERY_S = 10.0  # a killed extraction loses at most this much recorded progress (the manifest is rewritten)

Window = tuple[int, int, int, int]  # y, x, h, w


@dataclass(frozen=True)
class SubimageSpec:
    """BasicSR's ``crop_size``, ``step`` and ``thresh_size``."""

    crop: int
    step: int
    thresh_size: int = 0

    def __post_init__(self) -> None:
        if not (self.crop >= 1 and 1 <= self.step <= self.crop and self.thresh_size >= 0):
            raise Sam4irError(f"sub-images {asdict(self)}: need crop >= 1, 1 <= step <= crop (windows must cover "
                              f"the image) and thresh_size >= 0")


def starts(size: int, crop: int, step: int, thresh_size: int) -> list[int]:
    """Window starts along one side of ``size`` pixels (BasicSR's ``h_space``/``w_space``)."""
    if size <= crop:
        return [0]
    found = list(range(0, size - crop + 1, step))
    if size - (found[-1] + crop) > thresh_size:
        found.append(size - crop)
    return found


def windows(shape: tuple[int, int], spec: SubimageSpec) -> list[Window]:
    """Every window of an ``h x w`` image, rows first (BasicSR's ``_s001``, ``_s002`` ... order)."""
    h, w = shape
    ch, cw = min(spec.crop, h), min(spec.crop, w)
    return [(y, x, ch, cw) for y in starts(h, spec.crop, spec.step, spec.thresh_size)
            for x in starts(w, spec.crop, spec.step, spec.thresh_size)]


def subimage_name(source: str, window: Window) -> str:
    return f"{source}_y{window[0]:04d}_x{window[1]:04d}"


def write_subimages(split_dir: Path, source: str, images: Mapping[str, np.ndarray], spec: SubimageSpec
                    ) -> dict[str, Window]:
    """Write the sub-images of one source pair (``{"input": ..., "target": ...}``, equal shapes) under
    ``split_dir/<kind>/``; return their names and windows."""
    shape = next(iter(images.values())).shape[:2]
    cut = {subimage_name(source, win): win for win in windows(shape, spec)}
    jobs = [(split_dir / kind / f"{name}.png", image[y:y + h, x:x + w])
            for name, (y, x, h, w) in cut.items() for kind, image in images.items()]
    with ThreadPoolExecutor(WRITERS) as pool:  # PNG encoding and fsync release the GIL
        list(pool.map(lambda job: write_image(job[0], np.ascontiguousarray(job[1])), jobs))
    return cut


class Manifest:
    """``<root>/subimages.json``: source -> ``{"shape": [h, w], "subimages": {name: [y, x, h, w]}}``.

    Rewritten atomically at most every :data:`SAVE_EVERY_S` seconds while sources are added (and by
    :meth:`save`), so a resumed extraction trusts exactly the sources it lists.
    """

    def __init__(self, root: Path, settings: dict) -> None:
        self.path, self.settings = root / MANIFEST, json.loads(json.dumps(settings))
        recorded = _read(self.path)
        self.sources: dict[str, dict] = (recorded["sources"] if recorded and recorded.get("settings") == self.settings
                                         else {})
        self._saved = time.monotonic()

    def add(self, source: str, shape: tuple[int, int], cut: dict[str, Window]) -> None:
        self.sources[source] = {"shape": list(shape), "subimages": {n: list(w) for n, w in cut.items()}}
        if time.monotonic() - self._saved > SAVE_EVERY_S:
            self.save()

    def save(self) -> None:
        write_json(self.path, {"about": ABOUT, "settings": self.settings, "sources": dict(sorted(self.sources.items()))})
        self._saved = time.monotonic()


def _read(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
        for entry in manifest["sources"].values():
            if not (len(entry["shape"]) == 2 and all(len(w) == 4 for w in entry["subimages"].values())):
                raise ValueError("a source needs a shape [h, w] and windows [y, x, h, w]")
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise Sam4irError(f"{path}: not a sub-image manifest ({type(err).__name__}: {err}); delete it and run "
                          "prepare_data again") from None
    return manifest


def read_windows(root: Path) -> dict[str, tuple[str, Window]]:
    """Sub-image name -> (its source, its window), from ``<root>/subimages.json``; empty without one."""
    manifest = _read(Path(root) / MANIFEST)
    if manifest is None:
        return {}
    return {name: (source, tuple(win)) for source, entry in manifest["sources"].items()
            for name, win in entry["subimages"].items()}


def group_by_source(names: Iterable[str], windows_of: Mapping[str, tuple[str, Window]]) -> dict[str, list[str]]:
    """Names grouped by their source image (a name the manifest does not list is its own source), sorted."""
    groups: dict[str, list[str]] = {}
    for name in sorted(names):
        groups.setdefault(windows_of[name][0] if name in windows_of else name, []).append(name)
    return dict(sorted(groups.items()))


def assemble(crops: Iterable[tuple[Path, Window]], read: Callable[[Path], np.ndarray]) -> np.ndarray:
    """The source image rebuilt from its sub-images: every pixel any window covers (with ``thresh_size`` > 0 a
    border strip of at most that width is in no window, and so not in the result). Sub-images must have their
    window's size."""
    crops = list(crops)
    h = max(y + ch for _, (y, _, ch, _) in crops)
    w = max(x + cw for _, (_, x, _, cw) in crops)
    canvas = None
    for path, (y, x, ch, cw) in crops:
        pixels = read(path)
        if pixels.shape[:2] != (ch, cw):
            raise Sam4irError(f"{path}: sub-image is {pixels.shape[1]}x{pixels.shape[0]}, its window in "
                              f"{MANIFEST} is {cw}x{ch} (prepared data changed by hand? run prepare_data again)")
        if canvas is None:
            canvas = np.zeros((h, w, *pixels.shape[2:]), pixels.dtype)
        canvas[y:y + ch, x:x + cw] = pixels
    if canvas is None:
        raise Sam4irError("a source image with no sub-images")
    return canvas

"""Stage ``prepare_data``: the task's paired train/test data in the common layout under ``data/prepared/<task>``.

``data.source: scenes`` builds the offline dead-leaves scenes (with their exact segment maps in
``<split>/regions/``), ``demo`` the offline photo crops; ``folder`` validates an existing paired dataset
(``<dir>/{train,test}/{input,target}/``) and re-encodes it as PNG into the layout, so every later stage reads
one format and a corrupt or unmatched file is reported here, once. ``download`` fetches the real benchmarks named
in ``data.download.<task>`` (see :mod:`sam4ir.datasets`) into the cache ``data.download.cache``, verifies or pins
them in ``data.download.manifest`` and extracts them, resuming where a killed run stopped.

Large training images are cut into sub-images once, as the field does (``data.subimages``, keyed by the training
set's name for ``download`` and by the task for ``folder``; see :mod:`sam4ir.datasets.subimages`): the windows
of every source image are recorded in ``subimages.json``. Test splits stay whole.

The training monitor's validation pairs are held out from the training data: the scenes demo generates its own
``val`` split (``data.scenes.scenes_val`` scenes from the training photos); the other sources list the pairs of
``data.val_pairs`` training source images (all the sub-images of each), drawn from ``data.seed``, in
``val_pairs.json``, and training leaves them out.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sam4ir.data import build_demo, build_scenes, scan_pairs, scan_splits
from sam4ir.data.paired import VAL_PAIRS
from sam4ir.datasets import clear, prepare_download
from sam4ir.datasets.subimages import Manifest, SubimageSpec, group_by_source, read_windows, write_subimages
from sam4ir.errors import Sam4irError
from sam4ir.io import header_size, read_image, write_image, write_json
from sam4ir.progress import progress_bar
from sam4ir.params.schema import Data, Params, check_image_sizes
from sam4ir.stages import run_stage
from sam4ir.stages.shared.args import load_task_params, stage_args
from sam4ir.stages.shared.paths import TaskPaths
from sam4ir.stages.shared.tasks import run_tasks


def import_folder(src: Path, out: Path, subimages: SubimageSpec | None = None) -> dict:
    """Re-encode ``<src>/{train,test}`` into the layout; with ``subimages`` the training pairs as their
    sub-images (named ``<name>_y<y>_x<x>``, recorded in ``subimages.json``)."""
    counts = {}
    windows = Manifest(out, {"folder": asdict(subimages)}) if subimages else None
    scanned = scan_splits(src, ("train", "test"))  # every bad file of both splits in one error
    for split, pairs in scanned.items():
        written = 0
        for pair in progress_bar(pairs, desc=f"import {src.name}/{split}"):
            images = {"input": read_image(pair.input), "target": read_image(pair.target)}
            if windows is not None and split == "train":
                cut = write_subimages(out / split, pair.name, images, subimages)
                windows.add(pair.name, images["input"].shape[:2], cut)
                written += len(cut)
            else:
                for kind, image in images.items():
                    write_image(out / split / kind / f"{pair.name}.png", image)
                written += 1
        counts[split] = written
    if windows is not None:
        windows.save()
        counts["sources"] = {"folder": len(windows.sources)}
    return counts


def missing_folder(folder: Path) -> Sam4irError:
    """The one line for a task folder that is not there, and what to run: a ``dvc exp run --temp`` or ``--queue``
    experiment, and a clone, have only what git and DVC track, and data/real is git-ignored."""
    tracked = folder.with_name(folder.name + ".dvc")
    if tracked.is_file():
        return Sam4irError(f"{folder}: dataset folder not found, though {tracked} tracks it: run `dvc pull {tracked}`")
    return Sam4irError(f"{folder}: dataset folder not found (git ignores data/real, so experiments run with --temp or "
                       f"--queue and clones get a folder only through DVC): where the data is, run `dvc add {folder}`, "
                       f"commit {tracked} and `dvc push`")


def subimage_specs(data: Data) -> dict[str, SubimageSpec | None]:
    """``data.subimages``: set (or, for the folder source, task) -> its sub-image windows, or none."""
    return {name: None if spec is None else SubimageSpec(**spec.model_dump()) for name, spec in data.subimages.items()}


def download_args(data: Data, task: str) -> dict:
    """``prepare_download``'s arguments from ``data.download``; a split may name one set or a list."""
    download, sets = data.download, getattr(data.download, task)
    return {**{split: [names] if isinstance(names, str) else list(names)
               for split, names in (("train", sets.train), ("test", sets.test))},
            "cache": Path(download.cache), "manifest": Path(download.manifest), "mirror": download.mirror}


def run_task(args: argparse.Namespace) -> None:
    params = load_task_params(args)
    data = params.data
    out = TaskPaths(args.task).prepared
    if data.source != "download":  # download resumes (keeps what a killed run wrote); the others rebuild all,
        clear(out)                 # and no pair of an earlier source may survive in a persisted folder
    if data.source in ("scenes", "demo"):
        build = build_scenes if data.source == "scenes" else build_demo
        summary = build(args.task, out, seed=data.seed, **getattr(data, data.source).model_dump(),
                        **data.degradation.model_dump())
    elif data.source == "folder":
        if args.task not in data.folder:
            raise params.error(f"data.folder.{args.task}", "missing: no folder is named for this task")
        folder = Path(data.folder[args.task])
        if not folder.is_dir():
            raise missing_folder(folder)
        summary = import_folder(folder, out, subimage_specs(data).get(args.task))
    else:
        if getattr(data.download, args.task) is None:
            raise params.error(f"data.download.{args.task}", "missing: no training and test sets are named")
        summary = prepare_download(args.task, out=out, subimages=subimage_specs(data), **download_args(data, args.task))
    if data.source in ("folder", "download"):
        check_prepared_sizes(params, out)
    if data.source != "scenes":
        summary.update(hold_out(out, data.val_pairs, data.seed))
        summary["train"] -= summary["val"]  # the pairs training reads: the held-out ones are left out
    write_json(out / "summary.json", {"source": data.source, **summary})


def main() -> None:
    run_tasks(stage_args(__doc__), run_task)


def check_prepared_sizes(params: Params, out: Path) -> None:
    """One line when ``train.crop`` or ``eval.crop_border`` cannot fit the prepared images (read from their
    headers), here rather than after masks and training; the offline sources are checked with the params."""
    smallest = {split: min((min(header_size(p.input)) for p in scan_pairs(out, split, check_images=False)),
                           default=0) for split in ("train", "test")}
    try:
        check_image_sizes(params, train_side=smallest["train"], test_side=smallest["test"],
                          what=f"smallest side {smallest['train']} px in {out}/train, {smallest['test']} px in test")
    except ValueError as err:
        raise Sam4irError(f"{params.where}: {err}") from None


def hold_out(out: Path, n: int, seed: int) -> dict[str, int]:
    """Write ``val_pairs.json``: the training pairs of ``n`` source images drawn from ``seed``; return the counts
    for ``summary.json``. A source's sub-images are held out together: overlapping windows of one image on both
    sides would leak training pixels into validation. At most half the sources are held out; fewer than ``n`` is
    said on a line of its own and recorded (``val_sources`` beside ``val_sources_asked``), never silent."""
    sources = group_by_source((pair.name for pair in scan_pairs(out, "train", check_images=False)),
                              read_windows(out))
    names = list(sources)
    count = min(n, len(names) // 2)
    if count < n:
        print(f"sam4ir: note: {out}: data.val_pairs = {n}, but {len(names)} training source image(s) allow at most "
              f"{len(names) // 2} held out (half); holding out {count}", file=sys.stderr)
    chosen = np.random.default_rng([seed, 7]).choice(names, size=count, replace=False).tolist()
    held_out = sorted(pair for source in chosen for pair in sources[source])
    write_json(out / VAL_PAIRS, held_out)
    return {"val": len(held_out), "val_sources": count, "val_sources_asked": n}

if __name__ == "__main__":
    run_stage(main)

"""Stage ``prepare_data``: the task's paired train/test data in the common layout under ``data/prepared/<task>``.

``data.source: scenes`` builds the offline dead-leaves scenes (with their exact segment maps in
``<split>/regions/``), ``demo`` the offline photo crops; ``folder`` validates an existing paired dataset
(``<dir>/{train,test}/{input,target}/``) and re-encodes it as PNG into the layout, so every later stage reads
one format and a corrupt or unmatched file is reported here, once. ``download`` fetches the real benchmarks named
in ``data.download.<task>`` (see :mod:`sam4ir.datasets`) into the cache ``data.download.cache``, verifies or pins
them in ``data.download.manifest`` and extracts them, resuming where a killed run stopped.

The training monitor's validation pairs are held out from the training data: the scenes demo generates its own
``val`` split (``data.scenes.scenes_val`` scenes from the training photos); the other sources list
``data.val_pairs`` training pairs, drawn from ``data.seed``, in ``val_pairs.json``, and training leaves them out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sam4ir import config
from sam4ir.data import build_demo, build_scenes, scan_pairs
from sam4ir.data.paired import VAL_PAIRS
from sam4ir.datasets import clear, prepare_download
from sam4ir.io import read_image, write_image, write_json
from sam4ir.stages import run_stage
from sam4ir.stages.common import TaskPaths, load_task_params, stage_args
from sam4ir.progress import progress_bar

SOURCES = ("scenes", "demo", "folder", "download")


def import_folder(src: Path, out: Path) -> dict:
    counts = {}
    for split in ("train", "test"):
        pairs = scan_pairs(src, split)
        for pair in progress_bar(pairs, desc=f"import {src.name}/{split}"):
            write_image(out / split / "input" / f"{pair.name}.png", read_image(pair.input))
            write_image(out / split / "target" / f"{pair.name}.png", read_image(pair.target))
        counts[split] = len(pairs)
    return counts


def download_args(params: dict, task: str) -> dict:
    """``prepare_download``'s arguments from ``data.download``; a split may name one set or a list."""
    g = lambda key, *a, **kw: config.get(params, f"data.download.{key}", *a, **kw)  # noqa: E731
    sets = {split: g(f"{task}.{split}", kind=(str, list)) for split in ("train", "test")}
    return {**{split: [names] if isinstance(names, str) else names for split, names in sets.items()},
            "cache": Path(g("cache", kind=str)), "manifest": Path(g("manifest", kind=str)),
            "mirror": g("mirror", None, kind=(str, type(None)))}


def main() -> None:
    args = stage_args(__doc__)
    params = load_task_params(args)
    out = TaskPaths(args.task).prepared
    source = config.get(params, "data.source", choices=SOURCES)
    if source != "download":  # download resumes (keeps what a killed run wrote); the others rebuild everything,
        clear(out)             # and no pair of an earlier source may survive in a persisted folder
    if source in ("scenes", "demo"):
        build = build_scenes if source == "scenes" else build_demo
        summary = build(args.task, out, seed=config.get(params, "data.seed", kind=int),
                        **config.get(params, f"data.{source}", kind=dict),
                        **config.get(params, "data.degradation", kind=dict))
    elif source == "folder":
        summary = import_folder(Path(config.get(params, f"data.folder.{args.task}", kind=str)), out)
    else:
        summary = prepare_download(args.task, out=out, **download_args(params, args.task))
    if source != "scenes":
        summary["val"] = hold_out(out, config.get(params, "data.val_pairs", kind=int),
                                  config.get(params, "data.seed", kind=int))
    write_json(out / "summary.json", {"source": source, **summary})


def hold_out(out: Path, n: int, seed: int) -> int:
    """Write ``val_pairs.json``: ``n`` training pairs (at most half of them) drawn from ``seed``."""
    names = [pair.name for pair in scan_pairs(out, "train", check_images=False)]
    count = min(n, len(names) // 2)
    chosen = sorted(np.random.default_rng([seed, 7]).choice(names, size=count, replace=False).tolist())
    write_json(out / VAL_PAIRS, chosen)
    return count


if __name__ == "__main__":
    run_stage(main)

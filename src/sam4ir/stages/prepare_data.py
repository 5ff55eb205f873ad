"""Stage ``prepare_data``: the task's paired train/test data in the common layout under ``data/prepared/<task>``.

``data.source: demo`` builds the offline synthetic demo; ``folder`` validates an existing paired dataset
(``<dir>/{train,test}/{input,target}/``) and re-encodes it as PNG into the layout, so every later stage reads
one format and a corrupt or unmatched file is reported here, once.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from sam4ir import config
from sam4ir.data import build_demo, scan_pairs
from sam4ir.io import read_image, write_image, write_json
from sam4ir.stages import run_stage
from sam4ir.stages.common import TaskPaths, load_task_params, stage_args

SOURCES = ("demo", "folder")


def import_folder(src: Path, out: Path) -> dict:
    counts = {}
    for split in ("train", "test"):
        pairs = scan_pairs(src, split)
        for pair in tqdm(pairs, desc=f"import {src.name}/{split}"):
            write_image(out / split / "input" / f"{pair.name}.png", read_image(pair.input))
            write_image(out / split / "target" / f"{pair.name}.png", read_image(pair.target))
        counts[split] = len(pairs)
    return counts


def main() -> None:
    args = stage_args(__doc__)
    params = load_task_params(args)
    out = TaskPaths(args.task).prepared
    source = config.get(params, "data.source", choices=SOURCES)
    if source == "demo":
        demo = config.get(params, "data.demo", kind=dict)
        summary = build_demo(args.task, out, seed=config.get(params, "data.seed", kind=int), **demo)
    else:
        summary = import_folder(Path(config.get(params, f"data.folder.{args.task}", kind=str)), out)
    write_json(out / "summary.json", {"source": source, **summary})


if __name__ == "__main__":
    run_stage(main)

"""Stage sam_masks: one cached label map per prepared image (``data/masks/<task>/<split>/<name>.png``).

``python -m sam4ir.stages.sam_masks [--task derain] [--params params.yaml] [--shard i/n]`` (default: every task)
``torchrun --nproc_per_node N -m sam4ir.stages.sam_masks --task derain`` (one process and model per GPU)

``sam.backend``: ``sam`` (segment-anything), ``classical`` (the weight-free stand-in), or a prior-information
control (``sam4ir.sam.controls``): ``none`` (no regions), ``oracle`` (the scenes' exact segment maps),
``shuffled`` (the ``sam.shuffle_from`` backend's map of another image of the split, drawn from
``sam.shuffle_seed``). Every one is cached here like any other setting, so each runs as one ``dvc exp``.

Resumable: existing label maps are kept when ``settings.json`` (what produced them: the backend's params, the
bytes of every source image and of the segmentation code) matches, and deleted otherwise, so new data, a changed
param or changed code never mixes old and new masks.
Sub-images (``data/prepared/<task>/subimages.json``) are segmented through their source image, once: the source is
rebuilt from its sub-images and each sub-image's map is its window of the source's map (``sam4ir.sam.extract``).
The run log (``data/logs/sam_masks/<task>.json``) counts the images the segmenter ran on (``segmented``).

Under ``torchrun`` every process takes the sources of its rank (``RANK``/``WORLD_SIZE``) with its own model on
``cuda:LOCAL_RANK``; rank 0 drops stale maps first, waits for the others and writes the summary. Shards
(``--shard i/n``, for separate machines; under torchrun split further by rank) split every split's source
images; a last run without ``--shard`` finds them all done and writes the complete summary.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

import sam4ir.sam as sam_package
from sam4ir.datasets.subimages import MANIFEST, read_windows
from sam4ir.errors import Sam4irError
from sam4ir.io import TEMP_SUFFIX, files_sha256, write_json
from sam4ir.sam import SOURCE_DIRS, ClassicalSegmenter, extract_masks, label_map_path, segment_counts
from sam4ir.sam.controls import NoRegions, OracleRegions, PathLabeler, ShuffledRegions, regions_path
from sam4ir.sam.extract import Segmenter, SourceImage, source_images
from sam4ir.sam.ledger import MapLedger
from sam4ir.params.schema import Params
from sam4ir.stages import command_parser, run_stage
from sam4ir.stages.shared.args import load_task_params
from sam4ir.stages.shared.paths import TaskPaths
from sam4ir.stages.shared.tasks import run_tasks

SPLITS = ("train", "test")
SEGMENTATION_CODE = Path(sam_package.__file__).parent  # its modules decide what a label map is
RUN_LOGS = Path("data/logs/sam_masks")  # per-run timings: not a DVC out, so they never change the masks' hash


def main(argv: list[str] | None = None) -> None:
    parser = command_parser(__doc__)
    parser.add_argument("--task", help="one task of the params' tasks (default: every task; sam4ir.stages.shared.tasks)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--shard", default="0/1", help="i/n: process every n-th source image starting at the i-th")
    args = parser.parse_args(argv)
    run_tasks(args, run_task, forward=["--shard", args.shard])


def run_task(args: argparse.Namespace) -> None:
    rank, world = launcher_rank()
    index, count = _parse_shard(args.shard)
    shard = (index + count * rank, count * world)  # torchrun's ranks split this machine's shard
    params = load_task_params(args)
    paths = TaskPaths(args.task)
    source = params.sam.source
    # Test images are segmented as deployed: from the degraded input (with source: target, training priors come
    # from the clean images, but the IR2 reference row must not see the ground truth).
    images = {split: _images(paths.prepared / split / SOURCE_DIRS[source if split == "train" else "degraded"])
              for split in SPLITS}
    windows_of = read_windows(paths.prepared)
    sources = {split: source_images(images[split], windows_of) for split in SPLITS}
    manifest = [paths.prepared / MANIFEST] if windows_of else []

    backend = params.sam.backend
    # Only rank 0 writes settings and summary: the other ranks do not read every image to hash it.
    settings = {"backend": backend, "source": source,
                "images_sha256": files_sha256([*(p for split in SPLITS for p in images[split]), *manifest])
                if rank == 0 else None,
                "code_sha256": files_sha256(sorted(SEGMENTATION_CODE.glob("*.py")))}
    with process_group(world) as barrier:
        if rank == 0:  # first alone: it may download the checkpoint, and drops stale maps before anyone writes
            labeler, settings = build_labeler(params, settings, sources)
            _drop_stale(paths.masks, settings)
            write_json(paths.masks / "settings.json", settings)
        barrier()
        if rank != 0:
            labeler, settings = build_labeler(params, settings, sources)
        mine = {split: extract_masks(sources[split], paths.masks / split, labeler(split), batch_size=params.sam.batch_size,
                                     shard=shard, desc=f"{args.task}/{split}") for split in SPLITS}
        runs = barrier(mine)  # rank 0 waits for every rank and gets what each one did
    if rank == 0 and world > 1 and count == 1:  # every image of this machine's shard done: one record file
        for split in SPLITS:
            MapLedger(paths.masks / split).fold()
    if rank == 0:
        write_summary(args.task, paths, settings, images, sources, runs, args.shard if world == 1 else
                      f"{args.shard} x torchrun {world}")


def write_summary(task: str, paths: TaskPaths, settings: dict, images: dict[str, list[Path]],
                  sources: dict[str, list[SourceImage]], runs: list[dict[str, dict]], shard: str) -> None:
    """``summary.json`` (what the maps on disk are: a DVC out) and the run log (how this run went), printed."""
    summary = {**settings, "task": task, "splits": {}}
    counts_all = []
    for split in SPLITS:
        done = [label_map_path(paths.masks / split, p) for p in images[split]]
        counts = segment_counts([p for p in done if p.is_file()])
        counts_all += counts
        summary["splits"][split] = {"images": len(images[split]), "sources": len(sources[split]),
                                    "label_maps": len(counts), "mean_segments": _mean(counts)}
    summary.update(images=sum(len(v) for v in images.values()), label_maps=len(counts_all),
                   mean_segments=_mean(counts_all))
    summary["complete"] = summary["label_maps"] == summary["images"]
    # Only what the maps are goes into the DVC out (a forced or resumed run must hash the same); how this run
    # went (segmented, written, kept, seconds, masks/s) goes to a log beside it.
    write_json(paths.masks / "summary.json", summary)
    run_log = {"task": task, "shard": shard, "backend": settings["backend"], "processes": len(runs),
               **{key: sum(r[split][key] for r in runs for split in SPLITS)
                  for key in ("segmented", "written", "skipped")},
               "seconds": max(sum(r[split]["seconds"] for split in SPLITS) for r in runs)}
    run_log["masks_per_second"] = round(run_log["written"] / run_log["seconds"], 3) if run_log["seconds"] else None
    write_json(RUN_LOGS / f"{task}.json", run_log)
    print(f"sam_masks {task}: {summary['label_maps']}/{summary['images']} label maps ({settings['backend']}), "
          f"{summary['mean_segments']} segments per image on average; this run segmented {run_log['segmented']} "
          f"source images and wrote {run_log['written']} maps in {run_log['seconds']} s, kept {run_log['skipped']} "
          f"(log: {RUN_LOGS / task}.json)")


def launcher_rank() -> tuple[int, int]:
    """This process's rank and the number of processes, from torchrun's ``RANK``/``WORLD_SIZE`` (0 of 1 without)."""
    try:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise Sam4irError(f"RANK={os.environ.get('RANK')!r} WORLD_SIZE={os.environ.get('WORLD_SIZE')!r}: expected "
                          "integers (as torchrun sets them)") from None
    if not 0 <= rank < world:
        raise Sam4irError(f"RANK={rank} WORLD_SIZE={world}: expected 0 <= RANK < WORLD_SIZE")
    return rank, world


@contextlib.contextmanager
def process_group(world: int) -> Iterator[Callable[..., list]]:
    """``barrier(obj=None)``: wait for every process, return each one's ``obj`` (a gloo group under torchrun,
    whatever the device: only small objects travel). One process needs no group."""
    if world == 1:
        yield lambda obj=None: [obj]
        return
    import torch.distributed as dist

    # A rank's shard of ViT-H masks can take hours; the default 30-minute timeout would kill the waiting ranks.
    dist.init_process_group("gloo", timeout=datetime.timedelta(days=7))
    try:
        def barrier(obj: object = None) -> list:
            gathered = [None] * world
            dist.all_gather_object(gathered, obj)
            return gathered
        yield barrier
    finally:
        dist.destroy_process_group()


def build_labeler(params: Params, settings: dict, sources: dict[str, list[SourceImage]]
                  ) -> tuple[Callable[[str], Segmenter | PathLabeler], dict]:
    """split -> the configured backend's labeler, and the settings that determine its output."""
    backend = settings["backend"]
    if backend == "none":
        return lambda split: NoRegions(), settings
    if backend == "oracle":
        return lambda split: OracleRegions(), {**settings, "regions_sha256": _regions_sha256(sources)}
    if backend != "shuffled":
        segmenter, settings = build_segmenter(params, settings)
        return lambda split: segmenter, settings
    base_backend, seed = params.sam.shuffle_from, params.sam.shuffle_seed
    base, base_settings = build_labeler(params, {**settings, "backend": base_backend}, sources)
    base_settings.pop("backend")
    loaders = {s.path: s.load for split in SPLITS for s in sources[split]}
    return (lambda split: ShuffledRegions(base(split), [s.path for s in sources[split]], seed,
                                          load=lambda path: loaders[path]()),
            {**base_settings, "backend": backend, "shuffle_from": base_backend, "shuffle_seed": seed})


def _regions_sha256(sources: dict[str, list[SourceImage]]) -> str:
    truths = [regions_path(s.path) for split in SPLITS for s in sources[split]]
    missing = next((p for p in truths if not p.is_file()), None)
    if missing:
        raise Sam4irError(f"{missing}: no exact segment map (sam.backend: oracle needs data.source: scenes)")
    return files_sha256(truths)


def build_segmenter(params: Params, settings: dict) -> tuple[Segmenter, dict]:
    """The configured backend and the settings that determine its output (recorded next to the masks)."""
    sam = params.sam
    if settings["backend"] == "classical":
        classical = sam.classical.model_dump()
        return ClassicalSegmenter(**classical), {**settings, "classical": classical}
    # SAM's own code only here: segment_anything loads torchvision, seconds that the classical backend never needs
    from sam4ir.sam import SamSegmenter, ensure_checkpoint, generator_kwargs, load_sam, resolve_device

    generator = generator_kwargs(sam.generator.model_dump())
    device = resolve_device(sam.device)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))  # torchrun: one model per GPU
    checkpoint = ensure_checkpoint(sam.model_type, Path(sam.checkpoint), sam.download)
    model = load_sam(sam.model_type, checkpoint, device)
    settings = {**settings, "model_type": sam.model_type, "checkpoint": checkpoint.name,
                "checkpoint_bytes": checkpoint.stat().st_size, "amp": sam.amp, "generator": generator}
    return SamSegmenter(model, generator, amp=sam.amp), settings


def _drop_stale(root: Path, settings: dict) -> None:
    """Delete label maps made under other settings (or unknown ones), so that resuming never mixes the two; and
    any writer's leftover temp file, which DVC would otherwise hash into the persisted out."""
    for leftover in root.rglob(f"*{TEMP_SUFFIX}"):
        leftover.unlink()
    if _recorded_settings(root / "settings.json") == json.loads(json.dumps(settings)):
        return
    stale = [p for split in SPLITS for p in (root / split).glob("*.png")]
    if stale:
        print(f"sam4ir: note: {len(stale)} label maps in {root} were made with other settings; recomputing",
              file=sys.stderr)
    for path in stale:
        path.unlink()


def _recorded_settings(path: Path) -> dict | None:
    """What ``settings.json`` says, or None when it is missing or unreadable (one note: it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        print(f"sam4ir: note: {path}: unreadable ({type(err).__name__}: {str(err)[:60]}); rebuilding it and the "
              "label maps", file=sys.stderr)
        return None


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise Sam4irError(f"{folder}: folder not found (run the prepare_data stage first)")
    found = sorted(folder.glob("*.png"))
    if not found:
        raise Sam4irError(f"{folder}: no *.png images")
    return found


def _parse_shard(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not int(match.group(1)) < int(match.group(2)):
        raise Sam4irError(f"--shard {text!r}: expected i/n with 0 <= i < n")
    return int(match.group(1)), int(match.group(2))


def _mean(values: list[int]) -> float | None:
    return round(float(np.mean(values)), 3) if values else None


if __name__ == "__main__":
    run_stage(main)

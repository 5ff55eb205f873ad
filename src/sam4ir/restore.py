"""Restore images with a trained IR1: the distilled model is used exactly like the original, no SAM involved.

    sam4ir restore --checkpoint data/runs/spd_sgr/derain/model.pt --input photos/ --output restored/

``--checkpoint`` is a ``model.pt`` written by training (it names its network), or an official release
(BasicSR-style ``.pth``) together with ``--model NAME --model-args JSON`` (the original constructor's arguments).
A network of your own is named by its import path (``my_package.nets:DnCNN``) in both: run from the folder that
holds the package, or install it.
Each input image (one file, or every png/jpg/jpeg/bmp/tif(f) in a folder, sorted) becomes ``<output>/<stem>.png``.
Inputs are never overwritten.

Resuming: ``<output>/restore_manifest.json`` records what made the outputs in that folder (sha256 of the checkpoint
file, ``--model``/``--model-args``, ``--tile``/``--overlap``) and which outputs are done; it is rewritten (atomically)
after each output, so an interrupted run resumes. An existing output is kept only if the manifest lists it under the
same checkpoint and settings and it still decodes; every other one -- made by another checkpoint or other settings,
made before there was a manifest, or truncated by a crash -- is restored again rather than refused, since only
outputs are ever replaced. ``--overwrite`` redoes them all.

Failures: an input that cannot be read or decoded is reported on its own line and skipped; the others are restored,
then the run fails with a one-line summary (exit status 1), and a rerun retries the skipped inputs. An output that
cannot be written (full disk, read-only folder) stops the run at once with one line naming the file: the following
outputs would fail alike. Outputs are written atomically, so no half-written file is left under an output's name.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import nn

from sam4ir import models
from sam4ir.errors import Sam4irError
from sam4ir.inference import restore_image
from sam4ir.io import read_image, write_image, write_json
from sam4ir.stages import command_parser, run_stage
from sam4ir.training.fit import resolve_device
from sam4ir.progress import progress_bar

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_PROBE = 16  # side of the blank image that checks the network takes RGB before any real work
MANIFEST = "restore_manifest.json"  # in the output folder; not a .png, so never taken for an output


def list_inputs(path: Path) -> list[Path]:
    """``path`` itself if it is a file, else the images directly inside the folder, sorted by name."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise Sam4irError(f"{path}: input not found")
    images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise Sam4irError(f"{path}: no images ({'/'.join(s[1:] for s in IMAGE_SUFFIXES)}) in this folder")
    return images


def output_paths(inputs: list[Path], input_root: Path, output: Path) -> list[Path]:
    """``<output>/<stem>.png`` per input; refuses the input folder itself and stems that would collide."""
    input_dir = input_root if input_root.is_dir() else input_root.parent
    if output.resolve() == input_dir.resolve():
        raise Sam4irError(f"{output}: output folder is the input folder; choose another, inputs are never overwritten")
    if output.exists() and not output.is_dir():
        raise Sam4irError(f"{output}: exists and is not a folder")
    outs = [output / f"{p.stem}.png" for p in inputs]
    seen: dict[Path, Path] = {}
    for src, dest in zip(inputs, outs):
        if dest in seen:
            raise Sam4irError(f"{src}: same name stem as {seen[dest].name}, both would be written to {dest}")
        seen[dest] = src
    return outs


def load_network(checkpoint: Path, model: Optional[str], model_args: dict, device: torch.device) -> nn.Module:
    """IR1 in eval mode on ``device``: rebuilt from a sam4ir checkpoint, or built as ``model(**model_args)`` and
    loaded from an official one. Checked on a blank image so a wrong checkpoint fails before any output."""
    if model is None:
        if not checkpoint.is_file():
            raise Sam4irError(f"{checkpoint}: checkpoint file not found")
        try:
            net = models.load_model(checkpoint, device)
        except models.ForeignCheckpoint as err:  # a truncated or non-checkpoint file keeps its own message
            raise Sam4irError(f"{err} (an official checkpoint needs --model and --model-args)") from None
    else:
        net = models.build(model, **model_args)
        models.load_weights(net, checkpoint)
        net = net.to(device).eval()
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, _PROBE, _PROBE, device=device))
    except RuntimeError as err:
        raise Sam4irError(f"{checkpoint}: the network does not take an RGB image (an SPF 'ir2' checkpoint needs SAM "
                          f"priors; restore runs IR1): {str(err).splitlines()[0]}") from None
    return net


def made_by(args: argparse.Namespace) -> dict:
    """What decides the outputs' pixels: the checkpoint's bytes (a retrained model.pt keeps its name), the network
    built for an official checkpoint, and tiling (tiles see other statistics than the whole image)."""
    with open(args.checkpoint, "rb") as f:
        checkpoint_sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    return {"checkpoint_sha256": checkpoint_sha256, "model": args.model, "model_args": args.model_args,
            "tile": args.tile or None, "overlap": args.overlap if args.tile else None}


def done_outputs(output: Path, settings: dict) -> set[str]:
    """Names of the outputs the folder's manifest lists as made with ``settings``; none if other settings made
    them or the manifest is missing or unreadable (then they are all redone, which is safe)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        manifest = json.loads((output / MANIFEST).read_text())
        if manifest["made_by"] == settings:
            return set(manifest["outputs"])
    return set()


def save_manifest(output: Path, settings: dict, done: set[str]) -> None:
    write_json(output / MANIFEST, {"made_by": settings, "outputs": sorted(done)})


def decodes(path: Path) -> bool:
    """Whether an output is a whole image: a crash, a copy or a full disk outside sam4ir can leave a cut one."""
    try:
        read_image(path)
    except Sam4irError:
        return False
    return True


def failure_summary(failed: list[Path], total: int) -> str:
    """One line: how many inputs failed, the first few by name (each was reported on its own line)."""
    names = ", ".join(map(str, failed[:3])) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
    return f"{len(failed)} of {total} inputs failed: {names} (problems reported above); a rerun retries them"


def parse_device(name: str) -> torch.device:
    try:
        device = resolve_device(name)
    except RuntimeError:
        raise Sam4irError(f"--device: unknown device {name!r} (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise Sam4irError(f"--device: {name} requested but CUDA is not available")
    return device


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = command_parser(__doc__, prog="sam4ir restore")
    parser.add_argument("--checkpoint", type=Path, required=True, help="model.pt, or an official .pth with --model")
    parser.add_argument("--input", type=Path, required=True, help="an image, or a folder of images")
    parser.add_argument("--output", type=Path, required=True, help="folder for the restored PNGs")
    parser.add_argument("--tile", type=int, default=512, help="tile side for large images; 0: whole image at once")
    parser.add_argument("--overlap", type=int, default=32, help="pixels shared by neighbouring tiles")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--model", help=f"network of an official checkpoint: {' | '.join(models.MODELS)} | package.module:ClassName")
    parser.add_argument("--model-args", default="{}", help="its constructor arguments as JSON, e.g. '{\"width\": 32}'")
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    args = parser.parse_args(argv)
    if args.tile < 0 or args.overlap < 0 or (args.tile and args.overlap >= args.tile):
        raise Sam4irError(f"--tile {args.tile} / --overlap {args.overlap}: need tile >= 0 (0: no tiling) and "
                          "0 <= overlap < tile")
    if args.model is None and args.model_args != "{}":
        raise Sam4irError("--model-args: given without --model")
    try:
        kwargs = json.loads(args.model_args)
    except json.JSONDecodeError as err:
        raise Sam4irError(f"--model-args: not valid JSON ({err})") from None
    if not isinstance(kwargs, dict):
        raise Sam4irError(f"--model-args: expected a JSON object of constructor arguments, got {args.model_args}")
    args.model_args = kwargs
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    inputs = list_inputs(args.input)
    outs = output_paths(inputs, args.input, args.output)
    device = parse_device(args.device)
    net = load_network(args.checkpoint, args.model, args.model_args, device)
    settings = made_by(args)
    done = done_outputs(args.output, settings)
    todo = [(src, dest) for src, dest in zip(inputs, outs)
            if args.overwrite or dest.name not in done or not decodes(dest)]
    if todo:  # recorded first: a crash while replacing outputs of other settings must not leave them listed
        done -= {dest.name for _, dest in todo}
        save_manifest(args.output, settings, done)
    failed: list[Path] = []
    with progress_bar(todo, desc="restore", unit="img", dynamic_ncols=True) as bar:
        for src, dest in bar:
            try:
                img = read_image(src)
            except Sam4irError as err:  # a bad input spoils only itself; a failed write ends the run
                bar.write(f"sam4ir: error: {err}", file=sys.stderr)
                failed.append(src)
                continue
            write_image(dest, restore_image(net, img, device, args.tile or None, args.overlap))
            done.add(dest.name)
            save_manifest(args.output, settings, done)
    print(f"restored {len(todo) - len(failed)} image(s) into {args.output}; {len(inputs) - len(todo)} already "
          f"there, kept")
    if failed:
        raise Sam4irError(failure_summary(failed, len(inputs)))


if __name__ == "__main__":
    run_stage(main)

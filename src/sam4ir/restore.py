"""Restore images with a trained IR1: the distilled model is used exactly like the original, no SAM involved.

    python -m sam4ir.restore --checkpoint data/runs/derain/spd_sgr/model.pt --input photos/ --output restored/

``--checkpoint`` is a ``model.pt`` written by training (it names its network), or an official release
(BasicSR-style ``.pth``) together with ``--model NAME --model-args JSON`` (the original constructor's arguments).
Each input image (one file, or every png/jpg/jpeg/bmp/tif(f) in a folder, sorted) becomes ``<output>/<stem>.png``.
Inputs are never overwritten; existing outputs are kept unless ``--overwrite``, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import nn

from sam4ir import models
from sam4ir.errors import Sam4irError
from sam4ir.inference import restore_image
from sam4ir.io import read_image, write_image
from sam4ir.stages import run_stage
from sam4ir.train import resolve_device
from sam4ir.progress import progress_bar

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_PROBE = 16  # side of the blank image that checks the network takes RGB before any real work


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


def load_network(checkpoint: Path, model: Optional[str], model_args: str, device: torch.device) -> nn.Module:
    """IR1 in eval mode on ``device``: rebuilt from a sam4ir checkpoint, or built as ``model(**model_args)`` and
    loaded from an official one. Checked on a blank image so a wrong checkpoint fails before any output."""
    if model is None:
        if not checkpoint.is_file():
            raise Sam4irError(f"{checkpoint}: checkpoint file not found")
        try:
            net = models.load_model(checkpoint, device)
        except Sam4irError as err:
            raise Sam4irError(f"{err} (an official checkpoint needs --model and --model-args)") from None
    else:
        try:
            kwargs = json.loads(model_args)
        except json.JSONDecodeError as err:
            raise Sam4irError(f"--model-args: not valid JSON ({err})") from None
        if not isinstance(kwargs, dict):
            raise Sam4irError(f"--model-args: expected a JSON object of constructor arguments, got {model_args}")
        net = models.build(model, **kwargs)
        models.load_weights(net, checkpoint)
        net = net.to(device).eval()
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, _PROBE, _PROBE, device=device))
    except RuntimeError as err:
        raise Sam4irError(f"{checkpoint}: the network does not take an RGB image (an SPF 'ir2' checkpoint needs SAM "
                          f"priors; restore runs IR1): {str(err).splitlines()[0]}") from None
    return net


def parse_device(name: str) -> torch.device:
    try:
        device = resolve_device(name)
    except RuntimeError:
        raise Sam4irError(f"--device: unknown device {name!r} (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise Sam4irError(f"--device: {name} requested but CUDA is not available")
    return device


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sam4ir.restore", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="model.pt, or an official .pth with --model")
    parser.add_argument("--input", type=Path, required=True, help="an image, or a folder of images")
    parser.add_argument("--output", type=Path, required=True, help="folder for the restored PNGs")
    parser.add_argument("--tile", type=int, default=512, help="tile side for large images; 0: whole image at once")
    parser.add_argument("--overlap", type=int, default=32, help="pixels shared by neighbouring tiles")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--model", help=f"network of an official checkpoint: {' | '.join(models.MODELS)}")
    parser.add_argument("--model-args", default="{}", help="its constructor arguments as JSON, e.g. '{\"width\": 32}'")
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    args = parser.parse_args(argv)
    if args.tile < 0 or args.overlap < 0 or (args.tile and args.overlap >= args.tile):
        raise Sam4irError(f"--tile {args.tile} / --overlap {args.overlap}: need tile >= 0 (0: no tiling) and "
                          "0 <= overlap < tile")
    if args.model is None and args.model_args != "{}":
        raise Sam4irError("--model-args: given without --model")
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    inputs = list_inputs(args.input)
    outs = output_paths(inputs, args.input, args.output)
    todo = [(src, dest) for src, dest in zip(inputs, outs) if args.overwrite or not dest.exists()]
    device = parse_device(args.device)
    net = load_network(args.checkpoint, args.model, args.model_args, device)
    for src, dest in progress_bar(todo, desc="restore", unit="img", dynamic_ncols=True):
        write_image(dest, restore_image(net, read_image(src), device, args.tile or None, args.overlap))
    print(f"restored {len(todo)} image(s) into {args.output}; {len(inputs) - len(todo)} already there, kept")


if __name__ == "__main__":
    run_stage(main)

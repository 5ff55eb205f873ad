"""The one GPU check: SAM ViT-H mask generation against segment-anything's own, NAFNet step cost, loader wait.

    python benchmarks/gpu_check.py --out DIR [--tiny] [--device auto] [--images 4] [--steps 40] [--workers 4,8]

Writes ``DIR/gpu_check.json`` (rewritten after each section, so a run cut short keeps what it measured):

- ``sam``: automatic masks at 1024 x 1024 with a randomly initialised ViT-H (the encoder and decoder cost what
  the real weights cost) on ``--images`` photos, SAM's default settings (32 x 32 points), through
  ``sam4ir.sam.SamSegmenter`` in float32 (batched encoder, and one image per call) and with ``sam.amp: bf16``, and
  through segment-anything's own ``SamAutomaticMaskGenerator`` (float32) on the same images with the same
  settings in the same process. Per case: s/image, images/s, masks that survive the filters (random weights
  leave few past SAM's score filters: post-processing is then cheaper than with real weights), segments in the
  label map, peak memory; then our images/s over the reference's, and whether the partitions are the same
  (identical label maps and pixel agreement, for the batched encoder and for one image per call; bf16 against
  our float32 as an adjusted Rand index).
- ``sam_relaxed``: the same on 2 photos with the score filters off (16 x 16 points, NMS kept), so that many masks
  survive and the partitions compared are not empty.
- ``train``: ``bench_train.py --paper`` (NAFNet-GoPro-width32, 256 crops, batch 8, bf16): baseline and
  distillation step time and peak memory, each in its own process as that script runs them.
- ``loader``: a short distillation run of ``sam4ir.training.fit.fit`` (the real training loop and DataLoader) on
  generated SIDD-shaped 512 x 512 sub-images with label maps, per worker count: the fraction of the run spent
  outside forward/backward/update, i.e. waiting for the next batch (from the end of one optimiser step to the next
  forward), in the steady state (after the batches prefetched during the first step) and over the whole run,
  with the step time and first-batch latency.

The check runs on the torch it finds (a cluster's own CUDA build will do): any release in :data:`TORCH_ACCEPTED`,
named with the version found at the start of the run and in ``env``; ``--check-torch`` says only that.

``--tiny`` runs the same code on CPU in seconds (a small random SAM at 64 px, a narrow NAFNet, 64 px sub-images),
so the test suite keeps this script working. The ViT-H run is sized for one H200 in well under 8 minutes.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

import bench_train
from bench_sam import photos
from synthetic import SHAPES, write_pairs

from sam4ir.params import config
from sam4ir.data import PairedDataset
from sam4ir.io import write_json
from sam4ir.params.schema import Params
from sam4ir.training.fit import TrainConfig, fit, resolve_device

HERE = Path(__file__).resolve().parent
# The torch releases sam4ir runs on, [first, last): from 2.3, the first built against NumPy 2 (which the requirements
# pin; torch.utils.flop_counter and the optimiser step hooks are older), below the next major release. Ours is pinned
# in requirements.txt; a machine with its own torch installs requirements-notorch.txt (docs/teams.md).
TORCH_ACCEPTED = ((2, 3), (3, 0))
SECTIONS = ("train", "loader", "sam", "sam_relaxed")  # bounded ones first: a slow SAM cannot cost the others
# A small SAM built from segment_anything's own modules (as tests/test_sam.py's): the real code path in seconds.
TINY_SAM = dict(encoder_embed_dim=32, encoder_depth=2, encoder_num_heads=2, encoder_global_attn_indexes=[1],
                image_size=64, window_size=4, prompt_embed_dim=32, decoder_depth=1, decoder_mlp_dim=64,
                decoder_num_heads=2, iou_head_hidden_dim=32, mask_in_chans=4)
# Score filters off; box NMS kept at SAM's 0.7 (off with --tiny, whose masks all overlap: as tests/test_sam.py's).
RELAXED = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}


def sizes(tiny: bool) -> SimpleNamespace:
    """Everything that differs between the GPU run and ``--tiny``: image sides, grid, network, run length."""
    if tiny:
        return SimpleNamespace(sam_side=64, points=6, relaxed_points=6, relaxed_images=2, nms=1.0, sam_batch=2, width=8, batch=2, crop=32, sub_side=64, pairs=6,
                               bench_steps=2, bench_warmup=1)
    return SimpleNamespace(sam_side=1024, points=32, relaxed_points=16, relaxed_images=2, nms=0.7, sam_batch=4, width=None, batch=None, crop=None,
                           sub_side=SHAPES["sidd_sub"][0][0], pairs=64, bench_steps=10, bench_warmup=3)


def accepted_torch() -> str:
    """:data:`TORCH_ACCEPTED` as a version specifier, e.g. ``>=2.3,<3.0``."""
    (a, b), (c, d) = TORCH_ACCEPTED
    return f">={a}.{b},<{c}.{d}"


def torch_verdict(version: str, where: str) -> tuple[bool, str]:
    """Whether the torch ``version`` (``2.5.1``, ``2.6.0+cu124``, ``2.7.0a0+git1234``), imported from ``where``,
    is one sam4ir accepts, and the line that says so."""
    release = tuple(int(part) for part in version.split("+")[0].split(".")[:2] if part.isdigit())
    ok = len(release) == 2 and TORCH_ACCEPTED[0] <= release < TORCH_ACCEPTED[1]
    return ok, (f"gpu_check: torch {version} ({where}) {'accepted' if ok else 'refused'}: sam4ir runs on torch "
                f"{accepted_torch()} (requirements.txt pins one; with your own torch: requirements-notorch.txt)")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_mib(device: torch.device) -> float | None:
    """Peak CUDA memory since the last reset, MiB (None on CPU, where one process's RSS covers every case)."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def build_random_sam(tiny: bool, device: torch.device) -> torch.nn.Module:
    """Randomly initialised SAM (ViT-H, or the tiny one) on ``device``, frozen, in eval mode."""
    from segment_anything import sam_model_registry

    from sam4ir.sam import build_sam

    torch.manual_seed(0)
    sam = build_sam(**TINY_SAM) if tiny else sam_model_registry["vit_h"]()
    return sam.to(device).eval().requires_grad_(False)


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two label maps: 1 for the same partition whatever the ids, ~0 for unrelated ones."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    ai, bi = ai.ravel().astype(np.int64), bi.ravel().astype(np.int64)
    cont = np.bincount(ai * (bi.max() + 1) + bi).astype(np.float64)
    pairs = lambda x: float((x * (x - 1) / 2).sum())  # noqa: E731
    n_a = np.bincount(ai).astype(np.float64)
    n_b = np.bincount(bi).astype(np.float64)
    index, sa, sb, total = pairs(cont), pairs(n_a), pairs(n_b), pairs(np.array([ai.size], np.float64))
    expected, top = sa * sb / total, (sa + sb) / 2
    return 1.0 if top == expected else (index - expected) / (top - expected)


def time_segmenter(segment: Callable[[list[np.ndarray]], list[np.ndarray]], images: list[np.ndarray], batch: int,
                   count: Callable[[], int], device: torch.device) -> tuple[dict, list[np.ndarray]]:
    """Images/s of ``segment`` over ``images`` in batches (after a one-image warm-up), its label maps, surviving
    masks per image (``count()``: masks produced since the last call) and peak memory."""
    segment(images[:1])
    count()
    sync(device)
    reset_peak(device)
    start = time.perf_counter()
    maps = []
    for i in range(0, len(images), batch):
        maps += segment(images[i:i + batch])
    sync(device)
    seconds = time.perf_counter() - start
    return ({"s_per_image": seconds / len(images), "images_per_s": len(images) / seconds,
             "masks_per_image": count() / len(images), "segments_per_image": float(np.mean([m.max() for m in maps])),
             "peak_mib": peak_mib(device)}, maps)


def counting(generator) -> Callable[[], int]:
    """Wrap ``generator.generate`` to count the masks it returns (those past its filters); returns the reader."""
    seen = [0]
    generate = generator.generate

    def counted(image: np.ndarray) -> list[dict]:
        records = generate(image)
        seen[0] += len(records)
        return records

    def read() -> int:
        n, seen[0] = seen[0], 0
        return n

    generator.generate = counted
    return read


@functools.lru_cache(maxsize=1)
def random_sam(tiny: bool, device: torch.device) -> torch.nn.Module:
    """One SAM for both SAM sections (ViT-H's random initialisation alone takes seconds)."""
    return build_random_sam(tiny, device)


def sam_section(args: argparse.Namespace, size: SimpleNamespace, device: torch.device, relaxed: bool) -> dict:
    """Our SamSegmenter (fp32, one image per call, bf16) against segment-anything's SamAutomaticMaskGenerator on
    the same images with the same settings: SAM's defaults, or ``relaxed`` (no score filters, fewer points)."""
    from segment_anything import SamAutomaticMaskGenerator

    from sam4ir.sam import SamSegmenter, generator_kwargs, masks_to_label_map

    sam = random_sam(args.tiny, device)
    images = photos(size.relaxed_images if relaxed else args.images, size.sam_side)
    gen = ({"points_per_side": size.relaxed_points, **RELAXED, "box_nms_thresh": size.nms} if relaxed
           else {"points_per_side": size.points})
    cases, maps = {}, {}
    # ours_fp32_batch1 encodes one image per call, as the reference does: the same numbers, so any difference
    # in its partitions is the code's; ours_fp32 batches the encoder (other kernels, float rounding may differ)
    for name, amp, batch in (("ours_fp32", "none", size.sam_batch), ("ours_fp32_batch1", "none", 1),
                             ("ours_bf16", "bf16", size.sam_batch)):
        if amp != "none" and device.type != "cuda":
            continue  # SamSegmenter runs bf16 on CUDA only
        segmenter = SamSegmenter(sam, gen, amp=amp)
        cases[name], maps[name] = time_segmenter(segmenter, images, batch, counting(segmenter.generator), device)
        cases[name]["batch"] = batch
    reference = SamAutomaticMaskGenerator(sam, **generator_kwargs(gen))
    count = counting(reference)
    cases["reference_fp32"], maps["reference_fp32"] = time_segmenter(
        lambda batch: [masks_to_label_map(reference.generate(img), img.shape[:2]) for img in batch],
        images, 1, count, device)
    cases["reference_fp32"]["batch"] = 1
    ref = cases["reference_fp32"]["images_per_s"]
    out = {"model": "tiny" if args.tiny else "vit_h", "side": size.sam_side, "images": len(images),
           "generator": gen, "cases": cases, "speedup_fp32": cases["ours_fp32"]["images_per_s"] / ref}
    for name, key in (("ours_fp32", "fp32"), ("ours_fp32_batch1", "fp32_batch1")):
        pairs = list(zip(maps[name], maps["reference_fp32"]))
        out[f"same_partitions_{key}"] = all(np.array_equal(a, b) for a, b in pairs)
        out[f"pixel_agreement_{key}"] = float(np.mean([(a == b).mean() for a, b in pairs]))
    if "ours_bf16" in cases:
        out["speedup_bf16"] = cases["ours_bf16"]["images_per_s"] / ref
        out["ari_bf16_vs_fp32"] = float(np.mean([adjusted_rand(a, b)
                                                 for a, b in zip(maps["ours_bf16"], maps["ours_fp32"])]))
    return out


def bench_args(args: argparse.Namespace, size: SimpleNamespace) -> list[str]:
    """``bench_train.py`` arguments of the paper configuration (narrowed and shortened with ``--tiny``)."""
    extra = [f"--{k}={v}" for k, v in (("width", size.width), ("batch", size.batch), ("crop", size.crop)) if v]
    return ["--paper", "--params", args.params, "--device", args.device, "--steps", str(size.bench_steps),
            "--warmup", str(size.bench_warmup)] + extra


def train_section(args: argparse.Namespace, size: SimpleNamespace, device: torch.device) -> dict:
    """Baseline and distillation step of ``bench_train.py --paper``, each case in its own process as that
    script runs them (so each peak memory is its own)."""
    out = {}
    for case in bench_train.CASES:
        cmd = [sys.executable, str(HERE / "bench_train.py"), "--case", case] + bench_args(args, size)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"bench_train.py --case {case}: "
                               f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
        out[case] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["distill_over_baseline_step"] = out["distill"]["step_ms"] / out["baseline"]["step_ms"]
    return out


def paper_objective(params: Params, args: argparse.Namespace, size: SimpleNamespace, device: torch.device):
    """The full method's objective and configuration as ``bench_train.py --paper`` builds them: the one place
    this script reaches the distillation objective's API."""
    ns = argparse.Namespace(paper=True, **{k: getattr(size, k) for k in ("width", "batch", "crop")})
    cfg = bench_train.setup(params, ns, device)
    return bench_train.objective_for("distill", params, cfg), cfg


class StepClock(torch.nn.Module):
    """The objective, with the time each forward starts recorded; with :meth:`step_ended` hooked after every
    optimiser step, the gap between the two is the time the loop waited for its next batch."""

    def __init__(self, objective: torch.nn.Module, device: torch.device) -> None:
        super().__init__()
        self.objective, self.device = objective, device
        self.starts: list[float] = []
        self.ends: list[float] = []

    def forward(self, batch: dict) -> dict:
        self.starts.append(time.perf_counter())
        return self.objective(batch)

    def step_ended(self, *_: object) -> None:
        sync(self.device)
        self.ends.append(time.perf_counter())


def loader_section(args: argparse.Namespace, size: SimpleNamespace, device: torch.device, params: Params) -> dict:
    """Short distillation runs of the real training loop fed by the real loader, per worker count."""
    root = Path(tempfile.mkdtemp(prefix="gpu_check_sidd_", dir=args.tmp))
    shape = (size.sub_side, size.sub_side)
    write_pairs(root / "data", shape, size.pairs, SHAPES["sidd_sub"][1], masks_root=root / "masks")
    # cache=False: what cache_images: auto picks for the ~30k sub-images of SIDD (these few would be cached)
    dataset = PairedDataset(root / "data", "train", crop=size.crop or bench_train.PAPER_CROP, augment=False,
                            masks_root=root / "masks", cache=False)
    out: dict = {"pairs": len(dataset), "side": size.sub_side, "steps": args.steps, "runs": {}}
    objective, cfg = paper_objective(params, args, size, device)  # built once: VGG-19 alone takes seconds
    for workers in args.workers:
        clock = StepClock(objective, device)
        train_cfg = TrainConfig(iters=args.steps, batch_size=cfg["batch"], lr=params.train.lr,
                                num_workers=workers, amp=cfg["amp"], device=str(device))
        handle = register_optimizer_step_post_hook(clock.step_ended)
        start = time.perf_counter()
        try:
            fit(clock, dataset, train_cfg, desc=f"gpu_check loader, {workers} workers", device=device)
        finally:
            handle.remove()
        starts, ends = np.array(clock.starts), np.array(clock.ends)
        waits = starts[1:] - ends[:-1]  # from one step's end to the next forward: next(loader) and the copy
        # steady state: after the batches the workers prefetched during the first (slow) step
        skip = min(2 * workers + 1, len(waits) - 1)
        steady = waits[skip:].sum() / (ends[-1] - ends[skip])
        out["runs"][str(workers)] = {
            "workers": workers, "batch": cfg["batch"], "crop": cfg["crop"], "amp": cfg["amp"],
            "first_batch_s": float(starts[0] - start), "wait_fraction": float(steady),
            "wait_fraction_all": float(waits.sum() / (ends[-1] - ends[0])), "steady_steps": len(waits) - skip,
            "step_s": float(np.median(ends - starts)), "wait_s_median": float(np.median(waits[skip:])),
            "samples_per_s": float(cfg["batch"] * (len(waits) - skip) / (ends[-1] - ends[skip]))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="folder for gpu_check.json (required but with --check-torch)")
    parser.add_argument("--tiny", action="store_true", help="the same code on CPU in seconds (the tests run it)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--params", default=str(HERE.parent / "params.yaml"))
    parser.add_argument("--images", type=int, help="photos per SAM case (default 4; --tiny 2)")
    parser.add_argument("--steps", type=int, help="steps per loader run (default 40; --tiny 4)")
    parser.add_argument("--workers", help="comma-separated DataLoader workers (default 4,8; --tiny 0,1)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated, run in this order")
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="start no section after this many seconds (its figures are then missing)")
    parser.add_argument("--tmp", help="parent of the generated sub-images (default: the system's temp)")
    parser.add_argument("--check-torch", action="store_true",
                        help="only say whether the torch found is one sam4ir accepts (exit 1 if not)")
    args = parser.parse_args()
    ok, verdict = torch_verdict(torch.__version__, str(Path(torch.__file__).parent))
    print(verdict, file=sys.stderr)
    if not ok:
        sys.exit(1)
    if args.check_torch:
        return
    if args.out is None:
        parser.error("--out is required")
    args.images = args.images or (2 if args.tiny else 4)
    args.steps = args.steps or (4 if args.tiny else 40)
    args.workers = [int(w) for w in (args.workers or ("0,1" if args.tiny else "4,8")).split(",")]
    if args.tiny:
        args.device = "cpu"
        torch.set_num_threads(1)
    device = resolve_device(args.device)
    size = sizes(args.tiny)
    params = config.load_params(args.params)
    out_file = Path(args.out) / "gpu_check.json"
    report: dict = {"env": {"device": str(device), "gpu": torch.cuda.get_device_name(device)
                            if device.type == "cuda" else None, "torch": torch.__version__,
                            "torch_accepted": accepted_torch(), "cuda": torch.version.cuda,
                            "python": platform.python_version(), "tiny": args.tiny},
                    "seconds": {}, "errors": {}}
    sections = {"train": lambda: train_section(args, size, device),
                "loader": lambda: loader_section(args, size, device, params),
                "sam": lambda: sam_section(args, size, device, relaxed=False),
                "sam_relaxed": lambda: sam_section(args, size, device, relaxed=True)}
    begin = time.perf_counter()
    for name in args.sections.split(","):
        start = time.perf_counter()
        if start - begin > args.budget_s:
            report["errors"][name] = f"skipped: {start - begin:.0f} s spent, over --budget-s {args.budget_s:.0f}"
        else:
            try:
                report[name] = sections[name]()
            except Exception as err:  # one section's failure must not lose the others' figures  # noqa: BLE001
                report["errors"][name] = f"{type(err).__name__}: {err}"
                traceback.print_exc()
            report["seconds"][name] = time.perf_counter() - start
        report["seconds"]["total"] = time.perf_counter() - begin
        write_json(out_file, report)
        print(f"gpu_check: {name}: {report['errors'].get(name, 'done')} ({time.perf_counter() - start:.1f} s) "
              f"-> {out_file}", file=sys.stderr)
    if report["errors"]:
        sys.exit(f"gpu_check: failed sections: {', '.join(report['errors'])} (see {out_file})")


if __name__ == "__main__":
    main()

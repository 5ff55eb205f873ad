"""Training step time and peak memory: the baseline step against the distillation step (IR1 + IR2 + SPD + SGR).

    python benchmarks/bench_train.py [--device auto] [--steps 10] [--batch B] [--crop C] [--width W] [--paper]

Default: the demo configuration of params.yaml (model.name/model.args, train.batch_size, train.crop, train.loss,
train.amp, and the spf/distill params of the full method). ``--paper``: NAFNet width 32 as released for GoPro
(enc [1, 1, 1, 28]), 256 x 256 crops, batch 8, bf16 autocast on CUDA. Batches are synthetic (random images and a
random blocky label map with a few dozen segments), so no dataset is needed; weights are random (a VGG-19
analyzer too), which leaves the cost unchanged. One step = forward, backward and AdamW update, as in
``sam4ir.training.fit.fit``; the figure is the median over ``--steps`` after ``--warmup`` steps. Each case runs in a
fresh subprocess so its peak memory is its own: CPU, growth of the process's max RSS during the steps;
CUDA, ``torch.cuda.max_memory_allocated`` (weights and optimiser state included). Prints figures only.
On a CPU shared with other jobs, ``--threads 1`` gives steadier figures: a parallel op waits for its slowest
thread, and a descheduled thread costs milliseconds per op.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from sam4ir import models
from sam4ir.params import config
from sam4ir.method.objectives import BaselineObjective, DistillObjective
from sam4ir.method.spf import build_ir2
from sam4ir.params.schema import Params
from sam4ir.training.fit import resolve_device

CASES = ("baseline", "distill")
PAPER_MODEL = ("nafnet", {"width": 32, "middle_blk_num": 1, "enc_blk_nums": [1, 1, 1, 28],
                          "dec_blk_nums": [1, 1, 1, 1]})
PAPER_BATCH, PAPER_CROP = 8, 256
SEGMENT_CELL = 16  # side of the square cells of the synthetic label map
SEGMENT_IDS = 48  # label ids drawn per cell (0 = unlabelled included)


def setup(params: Params, args: argparse.Namespace, device: torch.device) -> dict:
    """Model, batch size, crop and precision of the benchmarked configuration."""
    if args.paper:
        name, kwargs = PAPER_MODEL[0], dict(PAPER_MODEL[1])
        batch, crop, amp = PAPER_BATCH, PAPER_CROP, "bf16" if device.type == "cuda" else "none"
    else:
        name, kwargs = params.model.name, params.model.kwargs
        batch, crop, amp = params.train.batch_size, params.train.crop, params.train.amp
    if args.width:
        kwargs["width"] = args.width
    return {"name": name, "kwargs": kwargs, "batch": args.batch or batch, "crop": args.crop or crop, "amp": amp}


def synthetic_batch(batch: int, crop: int, device: torch.device) -> dict:
    """Random input/target images (B x 3 x crop x crop) and a B x crop x crop label map of square segments."""
    g = torch.Generator().manual_seed(0)
    cells = max(crop // SEGMENT_CELL, 2)
    labels = torch.randint(0, SEGMENT_IDS, (batch, cells, cells), generator=g)
    scale = -(-crop // cells)
    mask = labels.repeat_interleave(scale, 1).repeat_interleave(scale, 2)[:, :crop, :crop]
    return {"input": torch.rand(batch, 3, crop, crop, generator=g).to(device),
            "target": torch.rand(batch, 3, crop, crop, generator=g).to(device), "mask": mask.to(device)}


def objective_for(case: str, params: Params, cfg: dict) -> torch.nn.Module:
    """The baseline objective, or the full method's (spd_sgr weights and spf/distill params of params.yaml)."""
    torch.manual_seed(0)
    ir1 = models.build(cfg["name"], **cfg["kwargs"])
    recon = params.train.loss
    if case == "baseline":
        return BaselineObjective(ir1, recon)
    teacher = build_ir2(ir1, cfg["name"], cfg["kwargs"], params.spf.prior, params.spf.ir2_init)
    return DistillObjective(ir1, teacher, params.distill, params.spf, recon=recon, method="spd_sgr",
                            analyzer_pretrained=False)


def run_case(case: str, params: Params, args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cfg = setup(params, args, device)
    objective = objective_for(case, params, cfg).to(device).train()
    trainable = [p for p in objective.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=params.train.lr, betas=tuple(params.train.betas))
    batch = synthetic_batch(cfg["batch"], cfg["crop"], device)

    def step() -> float:
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg["amp"] == "bf16"):
            loss = objective(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) * 1e3

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(args.warmup):
        step()
    times = [step() for _ in range(args.steps)]
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024)
    return {"case": case, "device": str(device), "threads": torch.get_num_threads(), "model": cfg["name"],
            "width": cfg["kwargs"].get("width"), "batch": cfg["batch"], "crop": cfg["crop"], "amp": cfg["amp"],
            "trainable_m": sum(p.numel() for p in trainable) / 1e6, "step_ms": statistics.median(times),
            "peak_mib": peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per case (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, help="override the batch size")
    parser.add_argument("--crop", type=int, help="override the crop side")
    parser.add_argument("--width", type=int, help="override the network's width")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--paper", action="store_true", help="NAFNet-GoPro-width32, 256 crops, batch 8, bf16 (CUDA)")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = parser.parse_args()
    params = config.load_params(args.params)
    if args.case:
        print(json.dumps(run_case(args.case, params, args)))
        return
    mem = "peak MiB" if resolve_device(args.device).type == "cuda" else "+RSS MiB"
    print(f"{'case':9} {'device':6} {'thr':>3} {'model':7} {'width':>5} {'batch':>5} {'crop':>4} {'amp':4} "
          f"{'train M':>7} {'step ms':>9} {'x base':>6} {mem:>9}")
    base_ms = None
    for case in CASES:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--case", case] + sys.argv[1:]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{case:9} failed: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        base_ms = r["step_ms"] if case == "baseline" else base_ms
        ratio = f"{r['step_ms'] / base_ms:6.2f}" if base_ms else f"{'-':>6}"
        print(f"{r['case']:9} {r['device']:6} {r['threads']:>3} {r['model']:7} {r['width'] or '-':>5} "
              f"{r['batch']:>5} {r['crop']:>4} {r['amp']:4} {r['trainable_m']:>7.3f} {r['step_ms']:>9.1f} {ratio} "
              f"{r['peak_mib']:>9.0f}")


if __name__ == "__main__":
    main()

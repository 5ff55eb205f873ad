"""Inference cost: parameters, multiply-accumulates and CPU latency — the paper's claim is that distillation
leaves all three of IR1 unchanged."""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@torch.no_grad()
def count_macs(net: nn.Module, x: torch.Tensor) -> int:
    """MACs of one ``net(x)`` call (PyTorch's FLOP counter counts a multiply-add as 2 FLOPs)."""
    with FlopCounterMode(display=False) as counter:
        net(x)
    return counter.get_total_flops() // 2


@torch.no_grad()
def latency_ms(nets: dict[str, nn.Module], x: torch.Tensor, runs: int, warmup: int = 2) -> dict[str, float]:
    """Median wall time (ms) of ``net(x)`` for each net; calls are interleaved so that machine noise hits all
    nets alike and their ratio is meaningful."""
    times: dict[str, list[float]] = {name: [] for name in nets}
    for i in range(warmup + runs):
        for name, net in nets.items():
            start = time.perf_counter()
            net(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux, else what :mod:`platform` says), to say which
    machine a latency was measured on."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # not Linux
        pass
    return platform.processor() or platform.machine()

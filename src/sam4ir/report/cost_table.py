"""The inference-cost table: IR1 before and after distillation (must be identical), and what SPF at test
time would cost instead (SAM's image encoder + IR1 + IR2)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from torch import nn

from sam4ir.cost import count_macs, latency_ms
from sam4ir.models import count_params


def sam_encoder_cost(model_type: str, size: int = 1024) -> tuple[int, int]:
    """(params of the whole SAM, MACs of its image encoder on one ``size``² image), built on the meta device:
    no weights are loaded and nothing is computed."""
    from segment_anything import sam_model_registry

    with torch.device("meta"):
        sam = sam_model_registry[model_type](checkpoint=None)
    x = torch.empty(1, 3, size, size, device="meta")
    return sum(p.numel() for p in sam.parameters()), count_macs(sam.image_encoder, x)


def cost_table(ir1_baseline: nn.Module, ir1_distilled: nn.Module, ir2: nn.Module, *, prior_channels: int,
               size: int, runs: int, sam_model_type: str, stand_in=None) -> pd.DataFrame:
    """Params, MACs at ``size``² and median CPU latency (ms, interleaved runs) of each deployable option.

    ``stand_in``: optional callable(image uint8) -> label map, timed as the mask source actually used offline.
    ``runs`` = 0 measures no latency (no latency columns): the table is then a pure function of the networks, so a
    forced re-run of the report reproduces it byte for byte.
    """
    torch.manual_seed(0)
    x = torch.rand(1, 3, size, size)
    x2 = torch.rand(1, 3 + prior_channels, size, size)
    nets = {"baseline": ir1_baseline.eval(), "distilled": ir1_distilled.eval(), "ir2": ir2.eval()}
    lat = {"baseline": float("nan"), "distilled": float("nan"), "ir2": float("nan")}
    if runs:
        lat = latency_ms({"baseline": nets["baseline"], "distilled": nets["distilled"]}, x, runs)
        lat["ir2"] = latency_ms({"ir2": nets["ir2"]}, x2, runs)["ir2"]
    macs = {"baseline": count_macs(nets["baseline"], x), "distilled": count_macs(nets["distilled"], x),
            "ir2": count_macs(nets["ir2"], x2)}
    params = {k: count_params(n) for k, n in nets.items()}
    sam_params, sam_macs = sam_encoder_cost(sam_model_type)
    rows = [
        {"option": "IR1 original (baseline)", "needs_sam": False, "params": params["baseline"],
         "gmacs": macs["baseline"] / 1e9, "latency_ms": lat["baseline"]},
        {"option": "IR1 distilled (ours)", "needs_sam": False, "params": params["distilled"],
         "gmacs": macs["distilled"] / 1e9, "latency_ms": lat["distilled"]},
        {"option": f"SAM {sam_model_type} encoder (1024²) + IR1 + IR2", "needs_sam": True,
         "params": sam_params + params["baseline"] + params["ir2"],
         "gmacs": (sam_macs + macs["baseline"] + macs["ir2"]) / 1e9, "latency_ms": float("nan")},
    ]
    if stand_in is not None and runs:
        img = (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)
        start = time.perf_counter()
        for _ in range(3):
            stand_in(img)
        seg_ms = (time.perf_counter() - start) * 1e3 / 3
        rows.append({"option": "classical stand-in masks + IR1 + IR2", "needs_sam": False,
                     "params": params["baseline"] + params["ir2"], "gmacs": float("nan"),
                     "latency_ms": seg_ms + lat["baseline"] + lat["ir2"]})
    df = pd.DataFrame(rows)
    if runs == 0:
        return df.drop(columns="latency_ms")
    df["latency_ratio"] = df["latency_ms"] / lat["baseline"]
    return df

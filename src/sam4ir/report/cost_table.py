"""The inference-cost table: IR1 before and after distillation (must be identical), and what SPF at test
time would cost instead (SAM's image encoder + IR1 + IR2); and, apart from it, their CPU latency on this machine."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from sam4ir.cost import count_macs, cpu_name, latency_ms
from sam4ir.models import count_params


def sam_encoder_cost(model_type: str, size: int = 1024) -> tuple[int, int]:
    """(params of the whole SAM, MACs of its image encoder on one ``size``² image), built on the meta device:
    no weights are loaded and nothing is computed."""
    from segment_anything import sam_model_registry

    with torch.device("meta"):
        sam = sam_model_registry[model_type](checkpoint=None)
    x = torch.empty(1, 3, size, size, device="meta")
    return sum(p.numel() for p in sam.parameters()), count_macs(sam.image_encoder, x)


def _options(ir1_baseline: nn.Module, ir1_distilled: nn.Module, ir2: nn.Module, prior_channels: int,
             size: int) -> tuple[dict[str, nn.Module], dict[str, torch.Tensor]]:
    """The networks in eval mode and the ``size``² input each is called on (IR2: the image and its priors)."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, size, size)
    nets = {"baseline": ir1_baseline.eval(), "distilled": ir1_distilled.eval(), "ir2": ir2.eval()}
    inputs = {"baseline": x, "distilled": x, "ir2": torch.rand(1, 3 + prior_channels, size, size)}
    return nets, inputs


OPTIONS = {"baseline": "IR1 original (baseline)", "distilled": "IR1 distilled (ours)"}


def cost_table(ir1_baseline: nn.Module, ir1_distilled: nn.Module, ir2: nn.Module, *, prior_channels: int,
               size: int, sam_model_type: str) -> pd.DataFrame:
    """Params and MACs at ``size``² of each deployable option: a pure function of the networks, so a re-run of
    the report reproduces it byte for byte (latency, a measurement of the machine, is :func:`latency_table`)."""
    nets, inputs = _options(ir1_baseline, ir1_distilled, ir2, prior_channels, size)
    macs = {name: count_macs(net, inputs[name]) for name, net in nets.items()}
    params = {name: count_params(net) for name, net in nets.items()}
    sam_params, sam_macs = sam_encoder_cost(sam_model_type)
    rows = [{"option": OPTIONS[name], "needs_sam": False, "params": params[name], "gmacs": macs[name] / 1e9}
            for name in OPTIONS]
    rows.append({"option": f"SAM {sam_model_type} encoder (1024²) + IR1 + IR2", "needs_sam": True,
                 "params": sam_params + params["baseline"] + params["ir2"],
                 "gmacs": (sam_macs + macs["baseline"] + macs["ir2"]) / 1e9})
    return pd.DataFrame(rows)


LATENCY_COLUMNS = ["option", "latency_ms", "latency_ratio", "size", "runs", "threads", "cpu"]


def latency_table(ir1_baseline: nn.Module, ir1_distilled: nn.Module, ir2: nn.Module, *, prior_channels: int,
                  size: int, runs: int) -> pd.DataFrame:
    """Median CPU latency (ms) of IR1 before and after distillation, and of IR2 alone, on one ``size``² image
    (interleaved runs, so machine noise hits both IR1s alike and their ratio is meaningful), with the machine it
    was measured on. Not a function of the inputs: it lives apart from the results. ``runs`` = 0: no rows."""
    if not runs:
        return pd.DataFrame(columns=LATENCY_COLUMNS)
    nets, inputs = _options(ir1_baseline, ir1_distilled, ir2, prior_channels, size)
    lat = latency_ms({name: nets[name] for name in OPTIONS}, inputs["baseline"], runs)
    lat["ir2"] = latency_ms({"ir2": nets["ir2"]}, inputs["ir2"], runs)["ir2"]
    names = {**OPTIONS, "ir2": "IR2 alone (SPF branch, without the segmenter)"}
    where = {"size": size, "runs": runs, "threads": torch.get_num_threads(), "cpu": cpu_name()}
    return pd.DataFrame([{"option": names[name], "latency_ms": ms, "latency_ratio": ms / lat["baseline"], **where}
                         for name, ms in lat.items()], columns=LATENCY_COLUMNS)

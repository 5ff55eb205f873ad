"""SPF — semantic priors fusion: IR2 restores again from IR1's output fused with SAM's semantic mask.

[ours] The mask (a label map) is encoded against the restored image ŷ1 (``spf.prior``):
- ``mean``: each segment filled with ŷ1's mean colour over it (3 channels, differentiable w.r.t. ŷ1); pixels
  no segment covers (label 0) keep their own colour, i.e. carry no region information;
- ``boundary``: 1 on pixels whose 4-neighbourhood crosses a segment border (1 channel);
- ``both``: the two stacked (4 channels);
- ``mean_std``: the segment's mean and standard deviation of ŷ1 (6 channels): also says *how* uniform each
  segment is, which a small IR2 cannot compute itself over a whole (non-local) segment.
IR2 is IR1's architecture with its input convolution(s) widened by these channels, initialised from IR1 with
zero weights on the new channels (a wrapped plain network: a zero 1 x 1 convolution of the prior added to its
input, :mod:`sam4ir.models.wrap`). ``spf.ir2_init``:
- ``identity`` (default): also its final projection zeroed, so the global residual passes ŷ1 through and
  IR2(spf_input(ŷ1, L)) == ŷ1 at the first step: the teacher starts exactly at its student's quality and can only
  gain what ŷ1 and the prior let it gain (a copy of IR1 applied to ŷ1 restores twice and starts below IR1);
- ``copy``: an exact copy of IR1 (IR2(spf_input(y, L)) == IR1(y)), kept for comparison.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sam4ir import models
from sam4ir.errors import Sam4irError

PRIOR_CHANNELS = {"mean": 3, "boundary": 1, "both": 4, "mean_std": 6}
IR2_INITS = ("identity", "copy")


def prior_channels(kind: str) -> int:
    if kind not in PRIOR_CHANNELS:
        raise Sam4irError(f"spf.prior: unknown prior '{kind}' (choose from {', '.join(PRIOR_CHANNELS)})")
    return PRIOR_CHANNELS[kind]


def region_mean(label_map: Tensor, image: Tensor) -> Tensor:
    """Each pixel replaced by the mean of ``image`` over its segment (label 0: the pixel itself).

    label_map: B x H x W non-negative integers; image: B x C x H x W. One scatter over (image, label) ids, no
    loop, so the result stays differentiable w.r.t. ``image``.
    """
    b, c, h, w = image.shape
    labels = label_map.reshape(b, -1).long()
    lowest, highest = (int(v) for v in labels.aminmax())
    if lowest < 0:
        raise Sam4irError(f"spf: label map has negative id {lowest}; ids are 0 (unlabelled) or positive")
    n = highest + 1
    ids = (labels + torch.arange(b, device=labels.device)[:, None] * n).reshape(-1)
    pixels = image.permute(0, 2, 3, 1).reshape(-1, c)
    sums = pixels.new_zeros(b * n, c).index_add(0, ids, pixels)
    counts = pixels.new_zeros(b * n).index_add(0, ids, pixels.new_ones(ids.numel()))
    means = (sums / counts.clamp_min(1)[:, None])[ids]
    means = torch.where((labels.reshape(-1) == 0)[:, None], pixels, means)
    return means.reshape(b, h, w, c).permute(0, 3, 1, 2)


def boundary(label_map: Tensor) -> Tensor:
    """B x 1 x H x W float map, 1 where a 4-neighbour has another label."""
    lab = label_map.long()
    edge = torch.zeros_like(lab, dtype=torch.bool)
    dy = lab[:, 1:, :] != lab[:, :-1, :]
    dx = lab[:, :, 1:] != lab[:, :, :-1]
    edge[:, 1:, :] |= dy
    edge[:, :-1, :] |= dy
    edge[:, :, 1:] |= dx
    edge[:, :, :-1] |= dx
    return edge.unsqueeze(1).float()


def encode_prior(label_map: Tensor, image: Tensor, kind: str) -> Tensor:
    """The SPF prior channels, B x prior_channels(kind) x H x W, of a B x H x W label map against a
    B x 3 x H x W image (the mask must be cropped and resized with the image)."""
    prior_channels(kind)
    if label_map.shape != (image.shape[0], *image.shape[2:]):
        raise Sam4irError(f"spf: label map {list(label_map.shape)} does not match image {list(image.shape)} "
                          "(expected B x H x W of the image)")
    parts = []
    if kind in ("mean", "both", "mean_std"):
        parts.append(region_mean(label_map, image))
    if kind == "mean_std":  # no gradient through the spread: sqrt is unbounded near uniform segments
        flat = image.detach()
        variance = region_mean(label_map, flat * flat) - region_mean(label_map, flat) ** 2
        parts.append(variance.clamp_min(0).sqrt())
    if kind in ("boundary", "both"):
        parts.append(boundary(label_map).to(image.dtype))
    return torch.cat(parts, dim=1)


def spf_input(y1: Tensor, label_map: Tensor, prior: str) -> Tensor:
    """IR2's input: concat(ŷ1, P(L, ŷ1)), B x (3 + prior_channels) x H x W."""
    return torch.cat([y1, encode_prior(label_map, y1, prior)], dim=1)


def build_ir2(ir1: nn.Module, name: str, model_kwargs: dict, prior: str, init: str = "identity") -> nn.Module:
    """IR1's architecture with ``prior_channels(prior)`` extra input channels, initialised from IR1's weights
    (new input channels zero): ``init='identity'`` gives ``IR2(spf_input(y, L, prior)) == y``, ``init='copy'``
    gives ``IR2(spf_input(y, L, prior)) == IR1(y)`` at initialisation."""
    if init not in IR2_INITS:
        raise Sam4irError(f"spf.ir2_init: unknown initialisation '{init}' (choose from {', '.join(IR2_INITS)})")
    extra = prior_channels(prior)
    feature_layer = ir1.feature_layer if isinstance(ir1, models.PlainNet) else None  # where IR1's features are
    ir2 = models.build(name, **model_kwargs, extra_in_channels=extra, feature_layer=feature_layer)
    state, source = ir2.state_dict(), ir1.state_dict()
    missing = [key for key in state if key not in source and key not in ir2.prior_keys]
    if missing:
        raise Sam4irError(f"spf: IR1 ({name}) has no '{missing[0]}' to initialise IR2 from")
    for key, value in source.items():
        target = state.get(key)
        if target is None:
            raise Sam4irError(f"spf: IR2 ({name}) has no parameter '{key}' of IR1")
        if target.shape == value.shape:
            state[key] = value.clone()
        elif (value.dim() >= 2 and target.shape[0] == value.shape[0] and target.shape[2:] == value.shape[2:]
              and target.shape[1] == value.shape[1] + extra):
            widened = torch.zeros_like(target)
            widened[:, :value.shape[1]] = value
            state[key] = widened
        else:
            raise Sam4irError(f"spf: cannot initialise IR2 '{key}' {list(target.shape)} from IR1 {list(value.shape)}")
    ir2.load_state_dict(state)
    if init == "identity":
        ir2.zero_final_projection_()
    return ir2

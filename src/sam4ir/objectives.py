"""What each run minimises: the baseline's reconstruction loss, and the paper's total loss

    L = L_recon(IR1) + recon2_weight * L_recon(IR2) + spd_weight * L_SPD + sgr_weight * L_SGR.

A weight of 0 removes its term *and its computation*: with all three at 0 (the control run) IR2 and the
analyzer are never run, so the control differs from the distilled run only by the semantic priors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from sam4ir.analyzer import build_analyzer
from sam4ir.losses import recon_loss
from sam4ir.sgr import sgr_loss
from sam4ir.spd import spd_loss
from sam4ir.spf import spf_input


class BaselineObjective(nn.Module):
    """IR1 alone with its reconstruction loss (the paper's "original" row)."""

    def __init__(self, ir1: nn.Module, recon: str) -> None:
        super().__init__()
        self.nets = nn.ModuleDict({"ir1": ir1})
        self.recon = recon

    def forward(self, batch: dict) -> dict[str, Tensor]:
        out = self.nets["ir1"].forward_train(batch["input"])
        loss = recon_loss(self.recon, out.images, batch["target"])
        return {"loss": loss, "recon1": loss.detach()}


@dataclass(frozen=True)
class DistillWeights:
    recon2: float = 1.0
    spd: float = 1.0
    sgr: float = 1.0

    @property
    def uses_ir2(self) -> bool:
        return any(w > 0 for w in (self.recon2, self.spd, self.sgr))


class DistillObjective(nn.Module):
    """IR1 and the SPF branch IR2 trained jointly; SPD and SGR pull IR1 toward IR2's semantically informed features.

    batch: 'input', 'target' (B x 3 x H x W), 'mask' (B x H x W SAM label map, cropped with the image).
    ``priors=False`` (the ``no_prior`` control) replaces every label map by zeros (every pixel unlabelled) and
    reads no 'mask': the same computation as all-zero masks, with no region information.
    """

    def __init__(self, ir1: nn.Module, ir2: Optional[nn.Module], *, recon: str, weights: DistillWeights,
                 prior: str, analyzer: str, spd_kind: str, sgr_min_pixels: int, sgr_max_regions: int,
                 detach_spf_input: bool, priors: bool = True, analyzer_pretrained: bool = True) -> None:
        super().__init__()
        nets = {"ir1": ir1}
        if weights.uses_ir2:
            nets["ir2"] = ir2
            if weights.recon2 == 0:  # only L_rec2 trains IR2; without it IR2 is a fixed teacher (and DDP-safe)
                ir2.requires_grad_(False)
        self.nets = nn.ModuleDict(nets)
        self.recon, self.weights, self.prior = recon, weights, prior
        self.spd_kind, self.min_pixels, self.max_regions = spd_kind, sgr_min_pixels, sgr_max_regions
        self.detach_spf_input, self.priors = detach_spf_input, priors
        needs_analyzer = weights.spd > 0 or weights.sgr > 0
        self.analyzer = build_analyzer(analyzer, pretrained=analyzer_pretrained) if needs_analyzer else None

    def label_map(self, batch: dict, y1: Tensor) -> Tensor:
        """The batch's label maps, or all zeros (every pixel unlabelled) without priors."""
        return batch["mask"] if self.priors else y1.new_zeros((y1.shape[0], *y1.shape[2:]), dtype=torch.long)

    def teacher(self) -> "TeacherObjective":
        """The warm-up objective of this run's teacher (same IR2, same priors)."""
        return TeacherObjective(self)

    def forward(self, batch: dict) -> dict[str, Tensor]:
        target, w = batch["target"], self.weights
        out1 = self.nets["ir1"].forward_train(batch["input"])
        recon1 = recon_loss(self.recon, out1.images, target)
        terms = {"recon1": recon1.detach()}
        loss = recon1
        if w.uses_ir2:
            y1 = out1.images[-1]
            mask = self.label_map(batch, y1)
            out2 = self.nets["ir2"].forward_train(
                spf_input(y1.detach() if self.detach_spf_input else y1, mask, self.prior))
            if w.recon2 > 0:
                recon2 = recon_loss(self.recon, out2.images, target)
                terms["recon2"] = recon2.detach()
                loss = loss + w.recon2 * recon2
            if self.analyzer is not None:
                f_s, f_t = self.analyzer(out1, out2)
                if w.spd > 0:
                    spd = spd_loss(f_s, f_t, self.spd_kind)
                    terms["spd"] = spd.detach()
                    loss = loss + w.spd * spd
                if w.sgr > 0:
                    sgr = sgr_loss(f_s, f_t, mask, min_pixels=self.min_pixels, max_regions=self.max_regions)
                    terms["sgr"] = sgr.detach()
                    loss = loss + w.sgr * sgr
        terms["loss"] = loss
        return terms


class TeacherObjective(nn.Module):
    """The teacher's warm-up: IR2 alone learns to restore IR1's output with the prior, IR1 fixed.

    Started as the identity on ŷ1, IR2 needs many more steps to learn to use a prior than joint distillation
    gives it (measured on the scenes demo: with exact segments, 200 joint steps gain ~0.1 dB over no regions,
    1200 teacher steps ~1 dB). Warming it up first means distillation starts from a teacher that is already
    better than its student and already informed by the prior. Only IR2 is in ``nets`` (trained, checkpointed).
    """

    def __init__(self, distill: DistillObjective) -> None:
        super().__init__()
        self.nets = nn.ModuleDict({"ir2": distill.nets["ir2"]})
        self._student = (distill.nets["ir1"],)  # a tuple: not a submodule, so never optimised here
        self._distill = (distill,)

    def forward(self, batch: dict) -> dict[str, Tensor]:
        distill = self._distill[0]
        with torch.no_grad():
            y1 = self._student[0](batch["input"])
        out2 = self.nets["ir2"].forward_train(spf_input(y1, distill.label_map(batch, y1), distill.prior))
        loss = recon_loss(distill.recon, out2.images, batch["target"])
        return {"loss": loss, "recon2": loss.detach()}

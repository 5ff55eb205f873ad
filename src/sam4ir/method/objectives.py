"""What each run minimises, one module per scheme of the paper:

- :class:`BaselineObjective`: IR1 alone, L_rec¹ (the paper's "original" row);
- :class:`SpfObjective` (SPF, semantic priors fusion): the teacher IR2 alone learns to restore the frozen
  baseline's output fused with SAM's masks, L_rec²;
- :class:`DistillObjective` (SPD): IR1 with the paper's total loss L = L_rec¹ + λ₁·L_SPD + λ₂·L_SGR against that
  teacher, frozen (``teacher='frozen'``, the formula's reading: no term trains IR2), or trained on
  (``teacher='joint'``, [ours]: + recon2_weight·L_rec²).

A weight of 0 removes its term *and its computation*: with all of them at 0 (the control run) IR2 and the analyzer
are never run, so the control differs from the distilled run only by what the teacher passes on.

At its first training step :class:`DistillObjective` compares how hard each weighted SPD/SGR term pulls IR1's
weights with L_rec¹'s pull (gradient norms: the PSNR loss's value, a logarithm near −30, says nothing of its
pull) and warns once, in one line, when one is :data:`SCALE_GAP` times stronger or weaker.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn

from sam4ir.errors import Sam4irError
from sam4ir.training.losses import recon_loss
from sam4ir.method.analyzer import build_analyzer
from sam4ir.method.sgr import sgr_loss
from sam4ir.method.spd import spd_loss
from sam4ir.method.spf import spf_input

if TYPE_CHECKING:
    from sam4ir.params.schema import Distill, Spf

TEACHERS = ("frozen", "joint")
TEACHER_INPUTS = ("student", "baseline")
INITS = ("baseline", "scratch")  # where the SPD student starts: the trained baseline, or new weights
# the SPD runs: the control (L_rec1 alone), SPD without SGR, the full method, and the full method against the
# no-region teacher with every pixel unlabelled (no region to relate: SGR is zero and not computed)
DISTILL_METHODS = ("control", "no_prior", "spd", "spd_sgr")
SCALE_GAP = 100  # a distillation term pulling this many times harder or weaker than L_rec1 gets a warning
_WEIGHT_PARAMS = {"spd": "distill.spd_weight", "sgr": "distill.sgr_weight"}


def frozen(net: nn.Module) -> nn.Module:
    """``net`` with no trainable parameter and in eval mode: a fixed function of its input (DDP-safe)."""
    net.requires_grad_(False)
    return net.eval()


def label_map(batch: dict, like: Tensor, priors: bool) -> Tensor:
    """The batch's label maps, or all zeros (every pixel unlabelled: no region information) without priors.

    Without priors no 'mask' is read at all, so a no-prior run computes exactly what all-zero masks give.
    """
    return batch["mask"] if priors else like.new_zeros((like.shape[0], *like.shape[2:]), dtype=torch.long)


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


class SpfObjective(nn.Module):
    """SPF: IR2 learns to restore IR1's output ŷ₁ fused with the prior; IR1 (the baseline) is frozen.

    Started as the identity on ŷ₁ (``spf.ir2_init: identity``), the teacher begins exactly at its student's quality
    and can only gain what ŷ₁ and the prior let it gain. ``priors=False`` trains the same teacher on no region
    information (the teacher of the ``no_prior`` control). Only IR2 is in ``nets`` (trained, checkpointed).
    """

    def __init__(self, ir1: nn.Module, ir2: nn.Module, *, recon: str, prior: str, priors: bool = True) -> None:
        super().__init__()
        self.nets = nn.ModuleDict({"ir2": ir2})
        self.student = frozen(ir1)
        self.recon, self.prior, self.priors = recon, prior, priors

    def train(self, mode: bool = True) -> "SpfObjective":
        super().train(mode)
        self.student.eval()
        return self

    def forward(self, batch: dict) -> dict[str, Tensor]:
        with torch.no_grad():
            y1 = self.student(batch["input"])
        out2 = self.nets["ir2"].forward_train(spf_input(y1, label_map(batch, y1, self.priors), self.prior))
        loss = recon_loss(self.recon, out2.images, batch["target"])
        return {"loss": loss, "recon2": loss.detach()}


@dataclass(frozen=True)
class DistillWeights:
    recon2: float = 1.0
    spd: float = 1.0
    sgr: float = 1.0

    @property
    def uses_ir2(self) -> bool:
        return any(w > 0 for w in (self.recon2, self.spd, self.sgr))


def method_weights(cfg: Distill, method: str) -> DistillWeights:
    """The loss weights of ``method`` from ``distill.*``: none for the control (it reads no weight), no SGR for
    ``spd`` and ``no_prior``, and no L_rec² with the frozen teacher (the paper's formula: no term trains IR2)."""
    if method not in DISTILL_METHODS:
        raise Sam4irError(f"unknown distillation method {method!r} (one of {', '.join(DISTILL_METHODS)})")
    if method == "control":
        return DistillWeights(recon2=0.0, spd=0.0, sgr=0.0)
    return DistillWeights(recon2=cfg.recon2_weight if cfg.teacher == "joint" else 0.0, spd=cfg.spd_weight,
                          sgr=cfg.sgr_weight if method == "spd_sgr" else 0.0)


def scale_warning(student: nn.Module, recon: Tensor, weighted: dict[str, Tensor]) -> Optional[str]:
    """One line naming the weighted terms (``spd``/``sgr`` -> weight·loss) whose gradient on the ``student``'s
    weights is :data:`SCALE_GAP` times larger or smaller than ``recon``'s, their values and the weights to change;
    None if all are within range (a term without gradient, e.g. SGR on no two segments, is not judged).
    The gradients are taken, not accumulated: training is unchanged."""
    weights = [p for p in student.parameters() if p.requires_grad]

    def pull(term: Tensor) -> float:
        if not term.requires_grad:
            return 0.0
        grads = torch.autograd.grad(term, weights, retain_graph=True, allow_unused=True)
        return sum(g.square().sum().item() for g in grads if g is not None) ** 0.5

    base = pull(recon)
    if base == 0:
        return None
    gaps = {}
    for name, term in weighted.items():
        ratio = pull(term) / base
        if ratio and (ratio >= SCALE_GAP or ratio <= 1 / SCALE_GAP):
            gaps[name] = (f"{_WEIGHT_PARAMS[name]} x L_{name.upper()} = {term.item():.3g} pulls IR1's weights "
                          f"{max(ratio, 1 / ratio):.0f}x {'harder' if ratio > 1 else 'weaker'}")
    if not gaps:
        return None
    return (f"sam4ir: warning: first distillation step: {'; '.join(gaps.values())} than L_rec1 = {recon.item():.3g} "
            f"(gradient norms); change {' / '.join(_WEIGHT_PARAMS[name] for name in gaps)}")


class DistillObjective(nn.Module):
    """SPD: SPD and SGR pull IR1 toward the SPF teacher IR2's semantically informed features.

    batch: 'input', 'target' (B x 3 x H x W), 'mask' (B x H x W SAM label map, cropped with the image).
    ``cfg`` (``params.distill``) and ``spf`` (``params.spf``: how the prior is fused) configure it; ``method``
    (:data:`DISTILL_METHODS`) picks the terms (:func:`method_weights`). ``distill.teacher``: ``frozen`` (IR2 fixed,
    L_rec² never computed) or ``joint`` (IR2 trained on with recon2_weight·L_rec², in ``nets``). ``baseline``: a
    frozen IR1 whose output feeds IR2 instead of the current student's (``distill.teacher_input: baseline``: fixed
    teacher targets). ``no_prior`` replaces every label map by zeros and reads no 'mask'. Only the keys a method
    uses are read.
    """

    def __init__(self, ir1: nn.Module, ir2: Optional[nn.Module], cfg: Distill, spf: Spf, *, recon: str,
                 method: str = "spd_sgr", baseline: Optional[nn.Module] = None,
                 analyzer_pretrained: bool = True) -> None:
        super().__init__()
        self.weights = weights = method_weights(cfg, method)
        self.recon, self.priors = recon, method != "no_prior"
        nets = {"ir1": ir1}
        self.teacher_net: Optional[nn.Module] = None
        self.baseline: Optional[nn.Module] = None
        self.detach_spf_input = True
        if weights.uses_ir2:
            self.prior = spf.prior
            if weights.recon2 > 0:
                nets["ir2"] = ir2  # trained and checkpointed with IR1 (the joint reading)
                self.detach_spf_input = spf.detach_input
            else:
                self.teacher_net = frozen(ir2)
            self.baseline = frozen(baseline) if baseline is not None else None
        self.nets = nn.ModuleDict(nets)
        self.analyzer = None
        if weights.spd > 0 or weights.sgr > 0:
            self.analyzer = build_analyzer(cfg.analyzer, pretrained=analyzer_pretrained)
        if weights.spd > 0:
            self.spd_kind = cfg.spd_loss
        if weights.sgr > 0:
            self.min_pixels, self.max_regions = cfg.sgr_min_pixels, cfg.sgr_max_regions
        self.scales_checked = False  # see scale_warning: once, at the first training step

    def train(self, mode: bool = True) -> "DistillObjective":
        super().train(mode)
        for net in (self.teacher_net, self.baseline):
            if net is not None:
                net.eval()
        return self

    def _teacher_input(self, batch: dict, y1: Tensor) -> Tensor:
        """What IR2 restores: the frozen baseline's output, or the student's (detached unless IR2 trains with it
        and ``spf.detach_input`` is off, the joint reading's path for L_rec² into IR1)."""
        if self.baseline is not None:
            with torch.no_grad():
                return self.baseline(batch["input"])
        trains_through = not self.detach_spf_input
        return y1 if trains_through else y1.detach()

    def forward(self, batch: dict) -> dict[str, Tensor]:
        target, w = batch["target"], self.weights
        out1 = self.nets["ir1"].forward_train(batch["input"])
        recon1 = recon_loss(self.recon, out1.images, target)
        terms = {"recon1": recon1.detach()}
        loss = recon1
        weighted: dict[str, Tensor] = {}
        if w.uses_ir2:
            y1 = out1.images[-1]
            mask = label_map(batch, y1, self.priors)
            x2 = spf_input(self._teacher_input(batch, y1), mask, self.prior)
            if "ir2" in self.nets:
                out2 = self.nets["ir2"].forward_train(x2)
                recon2 = recon_loss(self.recon, out2.images, target)
                terms["recon2"] = recon2.detach()
                loss = loss + w.recon2 * recon2
            else:
                with torch.no_grad():
                    out2 = self.teacher_net.forward_train(x2)
            if self.analyzer is not None:
                f_s, f_t = self.analyzer(out1, out2)
                if w.spd > 0:
                    spd = spd_loss(f_s, f_t, self.spd_kind)
                    terms["spd"] = spd.detach()
                    weighted["spd"] = w.spd * spd
                if w.sgr > 0:
                    sgr = sgr_loss(f_s, f_t, mask, min_pixels=self.min_pixels, max_regions=self.max_regions)
                    terms["sgr"] = sgr.detach()
                    weighted["sgr"] = w.sgr * sgr
        if weighted and self.training and not self.scales_checked and torch.is_grad_enabled():
            self.scales_checked = True
            warning = scale_warning(self.nets["ir1"], recon1, weighted)
            if warning and (not dist.is_initialized() or dist.get_rank() == 0):
                print(warning, file=sys.stderr)
        terms["loss"] = sum(weighted.values(), loss)
        return terms

"""The semantic analyzer A: what features SPD and SGR compare.

- ``ir_features`` [ours, the offline default]: no extra network; the decoder's last feature maps of IR1
  (student) and IR2 (teacher), as returned by ``forward_train``.
- ``images``: the restored images ŷ1 and ŷ2 themselves (SPD then distils the teacher's output, SGR the
  relations between the segments' mean colours);
- ``vgg19``: a frozen ImageNet VGG-19 up to relu3_4 (torchvision's weights, downloaded and hash-checked by
  torchvision itself into the torch hub cache) applied to the restored images ŷ1 and ŷ2 (RGB in [0, 1]).
Both are called as ``analyzer(student_out, teacher_out) -> (f_student, f_teacher)`` on the two networks'
``RestorationOutput``s; the teacher's features never carry a gradient from the analyzer's side.
"""

from __future__ import annotations

import os
import pickle
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from sam4ir.errors import Sam4irError
from sam4ir.models import RestorationOutput

ANALYZERS = ("ir_features", "images", "vgg19")
_RELU3_4 = 18  # torchvision vgg19().features: conv3_4 is layer 16, relu3_4 layer 17
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class IRFeatures(nn.Module):
    """Decoder features of the two IR networks themselves (same architecture, hence same shapes)."""

    def forward(self, student: RestorationOutput, teacher: RestorationOutput) -> tuple[Tensor, Tensor]:
        return student.features, teacher.features


class RestoredImages(nn.Module):
    """The two networks' final restored images, B x 3 x H x W."""

    def forward(self, student: RestorationOutput, teacher: RestorationOutput) -> tuple[Tensor, Tensor]:
        return student.images[-1], teacher.images[-1]


def _vgg19_state(weights) -> dict[str, Tensor]:
    """torchvision's VGG-19 state dict via its own download and hash check; failures are one line."""
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(weights.url).path))
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        if os.path.exists(cached):
            raise Sam4irError(f"{cached}: cannot read the VGG-19 ImageNet weights ({reason}); delete the file so "
                              "torchvision downloads it again") from None
        raise Sam4irError(f"{cached}: VGG-19 ImageNet weights for distill.analyzer: vgg19 are missing and could "
                          f"not be downloaded from {weights.url} ({reason}); put that file there (torch hub cache, "
                          "moved by TORCH_HOME) or set distill.analyzer: ir_features") from None


def vgg19_relu3_4(pretrained: bool = True) -> nn.Sequential:
    """torchvision's VGG-19 ``features`` up to relu3_4 (B x 3 x H x W -> B x 256 x H/4 x W/4).

    Built on the meta device and materialised for the kept layers only, so the 400 MB classifier is never
    allocated; ``pretrained=False`` gives PyTorch's default random init (tests, no download).
    """
    from torchvision.models import VGG19_Weights, vgg19

    with torch.device("meta"):
        body = vgg19().features[:_RELU3_4]
    if not pretrained:
        body.to_empty(device="cpu")
        for layer in body:
            if isinstance(layer, nn.Conv2d):
                layer.reset_parameters()
        return body
    state = _vgg19_state(VGG19_Weights.IMAGENET1K_V1)
    prefix = "features."
    kept = {key[len(prefix):]: value for key, value in state.items()
            if key.startswith(prefix) and int(key[len(prefix):].split(".")[0]) < _RELU3_4}
    body.load_state_dict(kept, strict=True, assign=True)
    return body


class VGGFeatures(nn.Module):
    """Frozen VGG-19 relu3_4 features of the restored images; never trained, always in eval mode."""

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        self.body = vgg19_relu3_4(pretrained)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "VGGFeatures":
        """Stays in eval mode whatever the parent asks: the analyzer is a fixed measuring instrument."""
        return super().train(False)

    def features(self, image: Tensor) -> Tensor:
        """B x 3 x H x W RGB in [0, 1] -> B x 256 x H/4 x W/4 (ImageNet normalisation applied here)."""
        return self.body((image - self.mean) / self.std)

    def forward(self, student: RestorationOutput, teacher: RestorationOutput) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            f_t = self.features(teacher.images[-1])
        return self.features(student.images[-1]), f_t


def build_analyzer(kind: str, *, pretrained: bool = True) -> nn.Module:
    """The analyzer named by ``distill.analyzer``; ``pretrained=False`` skips VGG's weights (tests only)."""
    if kind == "ir_features":
        return IRFeatures()
    if kind == "images":
        return RestoredImages()
    if kind == "vgg19":
        return VGGFeatures(pretrained=pretrained)
    raise Sam4irError(f"distill.analyzer: unknown analyzer '{kind}' (choose from {', '.join(ANALYZERS)})")

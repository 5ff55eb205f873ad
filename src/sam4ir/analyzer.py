"""The semantic analyzer A: what features SPD and SGR compare.

- ``ir_features`` [ours, the offline default]: no extra network; the decoder's last feature maps of IR1
  (student) and IR2 (teacher), as returned by ``forward_train``.
- ``vgg19``: a frozen ImageNet VGG-19 up to relu3_4 (torchvision's weights, downloaded and hash-checked by
  torchvision itself) applied to the restored images ŷ1 and ŷ2.
Both are called as ``analyzer(student_out, teacher_out) -> (f_student, f_teacher)``.
"""

from __future__ import annotations

import urllib.error

import torch
from torch import Tensor, nn

from sam4ir.errors import Sam4irError
from sam4ir.models import RestorationOutput

ANALYZERS = ("ir_features", "vgg19")
_RELU3_4 = 18  # torchvision vgg19().features[:18] ends with relu3_4
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class IRFeatures(nn.Module):
    """Decoder features of the two IR networks themselves (same architecture, hence same shapes)."""

    def forward(self, student: RestorationOutput, teacher: RestorationOutput) -> tuple[Tensor, Tensor]:
        return student.features, teacher.features


class VGGFeatures(nn.Module):
    """Frozen VGG-19 relu3_4 features of the restored images; never trained, always in eval mode."""

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        from torchvision.models import VGG19_Weights, vgg19

        weights = VGG19_Weights.IMAGENET1K_V1 if pretrained else None
        try:
            net = vgg19(weights=weights)
        except (urllib.error.URLError, OSError) as err:
            hub = torch.hub.get_dir()
            raise Sam4irError(
                f"{hub}/checkpoints/{weights.url.rsplit('/', 1)[-1]}: VGG-19 ImageNet weights are missing and could "
                f"not be downloaded from {weights.url} ({err}); put the file there, or set distill.analyzer: "
                "ir_features") from None
        self.body = net.features[:_RELU3_4]
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "VGGFeatures":
        """Stays in eval mode whatever the parent asks: the analyzer is a fixed measuring instrument."""
        return super().train(False)

    def features(self, image: Tensor) -> Tensor:
        return self.body((image - self.mean) / self.std)

    def forward(self, student: RestorationOutput, teacher: RestorationOutput) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            f_t = self.features(teacher.images[-1])
        return self.features(student.images[-1]), f_t


def build_analyzer(kind: str, *, pretrained: bool = True) -> nn.Module:
    if kind == "ir_features":
        return IRFeatures()
    if kind == "vgg19":
        return VGGFeatures(pretrained=pretrained)
    raise Sam4irError(f"distill.analyzer: unknown analyzer '{kind}' (choose from {', '.join(ANALYZERS)})")

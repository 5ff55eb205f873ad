"""Networks of a user's own, named in params by import path (``model.name: tests.own_nets:TinyDnCNN``)."""

from __future__ import annotations

from torch import Tensor, nn

from sam4ir.models import RestorationNet, RestorationOutput


class TinyDnCNN(nn.Module):
    """A plain network, DnCNN-like (Zhang et al., 2017) in miniature: conv + ReLU, ``depth - 2`` x (conv + ReLU),
    conv predicting the degradation, subtracted from the input. B x 3 x H x W -> B x 3 x H x W."""

    def __init__(self, width: int = 8, depth: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*layers, nn.Conv2d(width, 3, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return x - self.body(x)


class TinyResidual(RestorationNet):
    """The RestorationNet protocol: it takes the SPF prior channels itself, names the convolution the global
    residual adds (zeroed for IR2's identity start) and returns its features from ``_restore``."""

    final_projection = "tail"

    def __init__(self, width: int = 8, *, extra_in_channels: int = 0) -> None:
        super().__init__()
        self.head = nn.Conv2d(3 + extra_in_channels, width, 3, padding=1)
        self.act = nn.ReLU()
        self.tail = nn.Conv2d(width, 3, 3, padding=1)

    def _restore(self, x: Tensor) -> RestorationOutput:
        features = self.act(self.head(x))
        return RestorationOutput([x[:, :3] + self.tail(features)], features)

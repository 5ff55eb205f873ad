"""A plain ``nn.Module`` (B x 3 x H x W -> B x 3 x H x W) given the small interface the method needs.

- Features for SPD/SGR: the output of one named submodule (``model.feature_layer``) at its last call in a forward
  pass, caught by a forward hook. Default: the module registered just before the output layer (the last module
  holding parameters), e.g. a DnCNN's last activation.
- SPF's prior channels (IR2 only): a 1 x 1 convolution from the prior channels to RGB, zero-initialised, added to
  the image before the network, so at first IR2 computes exactly the wrapped network.
- The identity start (IR2 only): IR2 returns ŷ1 + g·(net(·) − ŷ1) with a gate g, 1 as built (``spf.ir2_init:
  copy``: IR2 == IR1's network on ŷ1) and zeroed by :meth:`PlainNet.zero_final_projection_` (``identity``: IR2
  returns ŷ1 exactly and learns from there, as the built-ins' zeroed output convolution does).
IR1 (no prior channels) has neither: it is the wrapped network exactly, same weights, same parameter count.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from sam4ir.models.base import NetworkError, RestorationNet, RestorationOutput

RGB = 3
_SHOWN = 6  # module names listed when model.feature_layer names none


def _leaves(net: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, module) for name, module in net.named_modules() if name and next(module.children(), None) is None]


def default_feature_layer(net: nn.Module, what: str) -> str:
    """The leaf module registered just before the last one holding parameters (the output layer)."""
    leaves = _leaves(net)
    weighted = [i for i, (_, module) in enumerate(leaves) if next(module.parameters(recurse=False), None) is not None]
    if not weighted or weighted[-1] == 0:
        raise NetworkError("model.feature_layer", f"{what} has no module before its output layer to take SPD/SGR "
                                                  "features from; name one")
    return leaves[weighted[-1] - 1][0]


def check_feature_layer(net: nn.Module, name: str, what: str) -> None:
    """One line listing some valid names (those nearest the output) if ``net`` has no submodule ``name``."""
    names = dict(net.named_modules())
    if not name or name not in names:
        nearest = [leaf for leaf, _ in _leaves(net)][-_SHOWN:]
        raise NetworkError("model.feature_layer", f"{what} has no module {name!r}; its modules include "
                                                  f"{', '.join(nearest)} (any name of named_modules())")


class PlainNet(RestorationNet):
    """``net`` (B x 3 x H x W -> B x 3 x H x W) as a RestorationNet; input B x (3 + extra_in_channels) x H x W.

    ``feature_layer``: the submodule whose output are the SPD/SGR features (None: :func:`default_feature_layer`).
    ``name``: how errors name the network (its import path).
    """

    prior_keys = ("prior.weight", "gate")

    def __init__(self, net: nn.Module, feature_layer: Optional[str] = None, extra_in_channels: int = 0,
                 name: str = "") -> None:
        super().__init__()
        self.name = name or type(net).__name__
        self.net = net
        self.feature_layer = default_feature_layer(net, self.name) if feature_layer is None else feature_layer
        check_feature_layer(net, self.feature_layer, self.name)
        self.extra_in_channels = extra_in_channels
        if extra_in_channels:
            self.prior = nn.Conv2d(extra_in_channels, RGB, kernel_size=1, bias=False)
            nn.init.zeros_(self.prior.weight)
            self.gate = nn.Parameter(torch.ones(()))

    def _restore(self, x: Tensor) -> RestorationOutput:
        if x.shape[1] != RGB + self.extra_in_channels:
            raise NetworkError("model.name", f"{self.name} wrapped for {RGB} + {self.extra_in_channels} input "
                                             f"channels got {x.shape[1]}")
        image = x[:, :RGB]
        caught: list[object] = []
        hook = self.net.get_submodule(self.feature_layer).register_forward_hook(
            lambda _module, _inputs, output: caught.append(output))
        try:
            out = self.net(image + self.prior(x[:, RGB:]) if self.extra_in_channels else image)
        finally:
            hook.remove()
        if not isinstance(out, Tensor) or out.shape != image.shape:
            shown = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise NetworkError("model.name", f"{self.name} returned {shown} for a {list(image.shape)} image; a plain "
                                             "network maps B x 3 x H x W to B x 3 x H x W")
        if self.extra_in_channels:
            out = image + self.gate * (out - image)
        return RestorationOutput([out], self._features(caught, len(image)))

    def _features(self, caught: list[object], batch: int) -> Tensor:
        where = f"{self.name}'s {self.feature_layer!r}"
        if not caught:
            raise NetworkError("model.feature_layer", f"{where} did not run in the forward pass; name another module")
        features = caught[-1]
        if not isinstance(features, Tensor) or features.dim() != 4 or len(features) != batch:
            shown = list(features.shape) if isinstance(features, Tensor) else f"a {type(features).__name__}"
            raise NetworkError("model.feature_layer", f"{where} gave {shown}, not a B x C x H x W tensor; name "
                                                      "another module")
        return features

    def zero_final_projection_(self) -> None:
        """Zero the gate: IR2 then returns its input image exactly (the SPF branch's identity start)."""
        if not self.extra_in_channels:
            raise NetworkError("model.name", f"{self.name}: only IR2 (built with prior channels) starts from the "
                                             "identity")
        with torch.no_grad():
            self.gate.zero_()

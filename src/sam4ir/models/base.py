"""What every IR network here shares: the training-time output and pad-to-a-multiple / crop-back.

The networks keep their original ``forward`` result (the final restored image); ``forward_train`` returns the
same computation's intermediate products that the distillation needs, so both cost the same.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sam4ir.errors import Sam4irError


class NetworkError(Sam4irError):
    """A bad ``model.*`` value: ``key`` names the param, ``problem`` says what is wrong (the schema re-keys it)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


class RestorationOutput(NamedTuple):
    """One pass of an IR network, cropped back to the input size.

    images: every supervised output, B x 3 x H x W each, the final restored image last (HINet: 2 stages).
    features: the decoder's last feature map before the output convolution, B x C x H x W.
    """

    images: list[Tensor]
    features: Tensor


class RestorationNet(nn.Module):
    """Base of the IR networks: pads the input to a multiple of the downsampling factor, crops the results back.

    Subclasses set ``pad_multiple`` and ``pad_mode`` (as the original test code pads), name in ``final_projection``
    the convolution whose output the global residual adds to the input image, and implement ``_restore``.
    ``prior_keys``: state keys that only a network built with ``extra_in_channels`` has and its constructor
    initialises (IR2 copies every other weight from IR1).
    """

    pad_multiple: int = 1
    pad_mode: str = "constant"
    final_projection: str = ""
    prior_keys: tuple[str, ...] = ()

    def forward(self, x: Tensor) -> Tensor:
        """x: B x C_in x H x W degraded image -> B x 3 x H x W restored image (any H, W)."""
        return self.forward_train(x).images[-1]

    def forward_train(self, x: Tensor) -> RestorationOutput:
        """Same math as ``forward``, also returning the earlier stages' images and the decoder features."""
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.pad_multiple, -w % self.pad_multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=self.pad_mode)
        out = self._restore(x)
        return RestorationOutput([y[..., :h, :w] for y in out.images], out.features[..., :h, :w])

    def _restore(self, x: Tensor) -> RestorationOutput:
        """The network proper on an input whose H and W are multiples of ``pad_multiple``."""
        raise NotImplementedError

    def zero_final_projection_(self) -> None:
        """Zero the last convolution, so that the network returns its input image exactly (the global residual
        alone): how the SPF branch starts as the identity on IR1's output."""
        conv = getattr(self, self.final_projection, None) if self.final_projection else None
        if not isinstance(conv, nn.Conv2d):
            raise Sam4irError(f"{type(self).__name__}: no global residual to start from the identity "
                              "(use spf.ir2_init: copy)")
        with torch.no_grad():
            conv.weight.zero_()
            if conv.bias is not None:
                conv.bias.zero_()

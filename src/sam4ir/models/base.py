"""What every IR network here shares: the training-time output and pad-to-a-multiple / crop-back.

The networks keep their original ``forward`` result (the final restored image); ``forward_train`` returns the
same computation's intermediate products that the distillation needs, so both cost the same.
"""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn


class RestorationOutput(NamedTuple):
    """One pass of an IR network, cropped back to the input size.

    images: every supervised output, B x 3 x H x W each, the final restored image last (HINet: 2 stages).
    features: the decoder's last feature map before the output convolution, B x C x H x W.
    """

    images: list[Tensor]
    features: Tensor


class RestorationNet(nn.Module):
    """Base of the IR networks: pads the input to a multiple of the downsampling factor, crops the results back.

    Subclasses set ``pad_multiple`` and ``pad_mode`` (as the original test code pads) and implement ``_restore``.
    """

    pad_multiple: int = 1
    pad_mode: str = "constant"

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

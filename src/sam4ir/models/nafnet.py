"""NAFNet (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022), state-dict compatible with
megvii-research/NAFNet, including its test-time local converter (TLC, Chu et al. 2021) as an option.

Reading order follows the paper's figure: layer norm, simple gate, the local pooling TLC puts into the
simplified channel attention, the NAF block, then the U-shaped network.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sam4ir.errors import Sam4irError
from sam4ir.models.base import RestorationNet, RestorationOutput


class LayerNorm2d(nn.Module):
    """Layer norm over the channels of each pixel (B x C x H x W), as NAFNet's ``LayerNormFunction`` computes it."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    """NAFNet's activation: split the channels in halves and multiply them (B x 2C x H x W -> B x C x H x W)."""

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return x1 * x2


class LocalAvgPool2d(nn.Module):
    """TLC's replacement for the global average pool: a box mean of the extent the network saw in training.

    Trained on small crops, the channel attention learnt statistics of a crop, not of a full test image; averaging
    over a ``kernel_size`` window (1.5x the train-time feature size) restores that. Inputs no larger than the kernel
    get the plain global mean, so behaviour changes only on images bigger than 1.5x the training crop.
    ``fast_imp`` is the original's faster, non-equivalent variant (subsampled by up to ``max_r`` before summing).
    Output: B x C x 1 x 1 (global) or B x C x H x W (local, edges replicate-padded).
    """

    def __init__(self, kernel_size: tuple[int, int], max_r: tuple[int, int], fast_imp: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.max_r = max_r
        self.fast_imp = fast_imp

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, fast_imp={self.fast_imp}"

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if self.kernel_size[0] >= h and self.kernel_size[1] >= w:
            return F.adaptive_avg_pool2d(x, 1)
        out = self._box_mean_fast(x) if self.fast_imp else self._box_mean(x)
        dh, dw = h - out.shape[-2], w - out.shape[-1]
        return F.pad(out, (dw // 2, (dw + 1) // 2, dh // 2, (dh + 1) // 2), mode="replicate")

    def _box_mean(self, x: Tensor) -> Tensor:
        """Exact stride-1 box mean via an integral image: B x C x (H-k1+1) x (W-k2+1)."""
        h, w = x.shape[-2:]
        s = F.pad(x.cumsum(dim=-1).cumsum(dim=-2), (1, 0, 1, 0))
        k1, k2 = min(h, self.kernel_size[0]), min(w, self.kernel_size[1])
        box = s[..., k1:, k2:] + s[..., :-k1, :-k2] - s[..., :-k1, k2:] - s[..., k1:, :-k2]
        return box / (k1 * k2)

    def _box_mean_fast(self, x: Tensor) -> Tensor:
        """Box mean on an (r1, r2)-subsampled grid, upsampled back by nearest neighbour."""
        h, w = x.shape[-2:]
        r1 = min(self.max_r[0], next(r for r in (5, 4, 3, 2, 1) if h % r == 0))
        r2 = min(self.max_r[1], next(r for r in (5, 4, 3, 2, 1) if w % r == 0))
        s = x[..., ::r1, ::r2].cumsum(dim=-1).cumsum(dim=-2)
        k1 = min(s.shape[-2] - 1, self.kernel_size[0] // r1)
        k2 = min(s.shape[-1] - 1, self.kernel_size[1] // r2)
        box = s[..., :-k1, :-k2] - s[..., :-k1, k2:] - s[..., k1:, :-k2] + s[..., k1:, k2:]
        return F.interpolate(box / (k1 * k2), scale_factor=(r1, r2))


class NAFBlock(nn.Module):
    """Nonlinear-activation-free block on B x c x H x W: a gated depthwise-conv branch with simplified channel
    attention, then a gated feed-forward branch, each added back with a learnt per-channel scale (beta, gamma).

    pool: the channel attention's pooling; the global mean unless TLC supplies a ``LocalAvgPool2d``.
    """

    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2, drop_out_rate: float = 0.0,
                 pool: nn.Module | None = None):
        super().__init__()
        dw_channel = c * dw_expand
        self.conv1 = nn.Conv2d(c, dw_channel, kernel_size=1)
        self.conv2 = nn.Conv2d(dw_channel, dw_channel, kernel_size=3, padding=1, groups=dw_channel)
        self.conv3 = nn.Conv2d(dw_channel // 2, c, kernel_size=1)
        self.sca = nn.Sequential(pool if pool is not None else nn.AdaptiveAvgPool2d(1),
                                 nn.Conv2d(dw_channel // 2, dw_channel // 2, kernel_size=1))
        self.sg = SimpleGate()

        ffn_channel = ffn_expand * c
        self.conv4 = nn.Conv2d(c, ffn_channel, kernel_size=1)
        self.conv5 = nn.Conv2d(ffn_channel // 2, c, kernel_size=1)

        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()

        self.beta = nn.Parameter(torch.zeros((1, c, 1, 1)))
        self.gamma = nn.Parameter(torch.zeros((1, c, 1, 1)))

    def forward(self, inp: Tensor) -> Tensor:
        x = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        x = self.dropout1(self.conv3(x * self.sca(x)))
        y = inp + x * self.beta

        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return y + self.dropout2(x) * self.gamma


class NAFNet(RestorationNet):
    """U-shaped NAFNet: intro conv, encoder levels (NAF blocks, then a strided 2x2 conv halving H and W and
    doubling the channels), middle blocks, decoder levels (1x1 conv + pixel shuffle, add the skip, NAF blocks),
    ending conv plus the global residual.

    Arguments as in megvii-research/NAFNet (``NAFNet`` / ``NAFNetLocal``):
      img_channel: channels of the restored image (and of the degraded input).
      width: channels at full resolution; doubled at each encoder level.
      middle_blk_num, enc_blk_nums, dec_blk_nums: NAF blocks in the middle and per encoder / decoder level
        (enc and dec lists have the same length = number of downsamplings).
      tlc, train_size, fast_imp: ``tlc=True`` builds NAFNetLocal: channel-attention pooling becomes a local box
        mean sized from ``train_size`` (N, C, H, W of a training crop); parameters are unchanged.
      extra_in_channels: prior channels appended to the input (SPF); only the intro conv reads them and the global
        residual adds the first ``img_channel`` input channels. 0 gives the original network.
    Input B x (img_channel + extra_in_channels) x H x W, output B x img_channel x H x W.
    """

    def __init__(self, img_channel: int = 3, width: int = 16, middle_blk_num: int = 1,
                 enc_blk_nums: Sequence[int] = (), dec_blk_nums: Sequence[int] = (), *,
                 tlc: bool = False, train_size: Sequence[int] = (1, 3, 256, 256), fast_imp: bool = False,
                 extra_in_channels: int = 0):
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise Sam4irError(f"enc_blk_nums {list(enc_blk_nums)} and dec_blk_nums {list(dec_blk_nums)} "
                              "must have the same length")
        self.img_channel = img_channel
        self.final_projection = "ending"
        self.pad_multiple = 2 ** len(enc_blk_nums)
        pool_at = _tlc_pools(train_size, self.pad_multiple, fast_imp) if tlc else (lambda level: None)

        self.intro = nn.Conv2d(img_channel + extra_in_channels, width, kernel_size=3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, kernel_size=3, padding=1)

        encoders, downs, ups, decoders = [], [], [], []
        chan = width
        for level, num in enumerate(enc_blk_nums):
            encoders.append(nn.Sequential(*[NAFBlock(chan, pool=pool_at(level)) for _ in range(num)]))
            downs.append(nn.Conv2d(chan, 2 * chan, kernel_size=2, stride=2))
            chan *= 2
        depth = len(enc_blk_nums)
        middle_blks = nn.Sequential(*[NAFBlock(chan, pool=pool_at(depth)) for _ in range(middle_blk_num)])
        for level, num in zip(reversed(range(depth)), dec_blk_nums):
            ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, kernel_size=1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            decoders.append(nn.Sequential(*[NAFBlock(chan, pool=pool_at(level)) for _ in range(num)]))
        # registered in the original's order, so parameter order (and optimizer state) matches too
        self.encoders = nn.ModuleList(encoders)
        self.decoders = nn.ModuleList(decoders)
        self.middle_blks = middle_blks
        self.ups = nn.ModuleList(ups)
        self.downs = nn.ModuleList(downs)

    def _restore(self, inp: Tensor) -> RestorationOutput:
        x = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            x = decoder(up(x) + skip)
        return RestorationOutput([self.ending(x) + inp[:, :self.img_channel]], x)


def _tlc_pools(train_size: Sequence[int], pad_multiple: int, fast_imp: bool):
    """level -> LocalAvgPool2d, sized exactly as NAFNetLocal's conversion pass on a ``train_size`` input sizes it.

    The original runs one forward pass of a (padded) training-size image and fixes each pool's kernel to
    feature size x 1.5; at level l the feature map is the padded size / 2**l.
    """
    train_h, train_w = train_size[-2:]
    base_h, base_w = int(train_h * 1.5), int(train_w * 1.5)
    padded_h, padded_w = train_h + -train_h % pad_multiple, train_w + -train_w % pad_multiple

    def pool_at(level: int) -> LocalAvgPool2d:
        feat_h, feat_w = padded_h >> level, padded_w >> level
        return LocalAvgPool2d(kernel_size=(feat_h * base_h // train_h, feat_w * base_w // train_w),
                              max_r=(max(1, 5 * feat_h // train_h), max(1, 5 * feat_w // train_w)),
                              fast_imp=fast_imp)

    return pool_at

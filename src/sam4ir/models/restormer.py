"""Restormer (Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image Restoration", CVPR 2022),
state-dict compatible with swz30/Restormer.

Blocks first (layer norm, gated-dconv feed-forward, transposed multi-head attention, transformer block, resizing),
then the 4-level encoder-decoder with its refinement stage.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sam4ir.errors import Sam4irError
from sam4ir.models.base import RestorationNet, RestorationOutput


class BiasFreeLayerNorm(nn.Module):
    """Per-pixel layer norm over channels (B x C x H x W) that scales without centring."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        sigma = x.var(1, keepdim=True, unbiased=False)
        return x / torch.sqrt(sigma + 1e-5) * self.weight.view(1, -1, 1, 1)


class WithBiasLayerNorm(nn.Module):
    """Per-pixel layer norm over channels (B x C x H x W) with centring and a bias."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        mu = x.mean(1, keepdim=True)
        sigma = x.var(1, keepdim=True, unbiased=False)
        return (x - mu) / torch.sqrt(sigma + 1e-5) * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class LayerNorm(nn.Module):
    """Holds the chosen norm as ``body``, which is where the original's parameter names put it."""

    def __init__(self, dim: int, layer_norm_type: str):
        super().__init__()
        self.body = BiasFreeLayerNorm(dim) if layer_norm_type == "BiasFree" else WithBiasLayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class FeedForward(nn.Module):
    """Gated-Dconv feed-forward network (GDFN): 1x1 expand, depthwise 3x3, GELU gate, 1x1 project back."""

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class Attention(nn.Module):
    """Multi-Dconv head transposed attention (MDTA): attention across channels (a C/heads x C/heads map per head),
    so the cost is linear in the number of pixels."""

    def __init__(self, dim: int, num_heads: int, bias: bool):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = (t.reshape(b, self.num_heads, c // self.num_heads, h * w)
                   for t in self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1))
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class TransformerBlock(nn.Module):
    """Pre-norm residual MDTA then pre-norm residual GDFN, on B x dim x H x W."""

    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool, layer_norm_type: str):
        super().__init__()
        self.norm1 = LayerNorm(dim, layer_norm_type)
        self.attn = Attention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, layer_norm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """3x3 conv embedding of the input image: B x in_c x H x W -> B x embed_dim x H x W."""

    def __init__(self, in_c: int, embed_dim: int, bias: bool = False):
        super().__init__()
        self.proj = nn.Conv2d(in_c, embed_dim, kernel_size=3, padding=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """B x n x H x W -> B x 2n x H/2 x W/2 (3x3 conv halving channels, then pixel unshuffle)."""

    def __init__(self, n_feat: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat // 2, kernel_size=3, padding=1, bias=False),
                                  nn.PixelUnshuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """B x n x H x W -> B x n/2 x 2H x 2W (3x3 conv doubling channels, then pixel shuffle)."""

    def __init__(self, n_feat: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat * 2, kernel_size=3, padding=1, bias=False),
                                  nn.PixelShuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Restormer(RestorationNet):
    """Restormer: 4-level transformer U-Net (channels dim, 2dim, 4dim, 8dim), refinement blocks at full resolution.

    Arguments as in swz30/Restormer:
      inp_channels, out_channels: image channels in and out; dim: channels at level 1.
      num_blocks: transformer blocks per level (4 entries, the last is the latent level);
      num_refinement_blocks: blocks after the decoder; heads: attention heads per level (4 entries).
      ffn_expansion_factor, bias: GDFN width factor, biases in convs; LayerNorm_type: 'WithBias' | 'BiasFree'.
      dual_pixel_task: dual-pixel defocus deblurring (inp_channels=6): a skip conv replaces the global residual.
      extra_in_channels: prior channels appended to the input (SPF); only the patch embedding reads them and the
        residual adds the first ``inp_channels`` input channels. 0 gives the original network.
    Input B x (inp_channels + extra_in_channels) x H x W -> B x out_channels x H x W. Inputs are reflect-padded to
    a multiple of 8, as the original test scripts do.
    """

    pad_mode = "reflect"

    def __init__(self, inp_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), num_refinement_blocks: int = 4,
                 heads: Sequence[int] = (1, 2, 4, 8), ffn_expansion_factor: float = 2.66, bias: bool = False,
                 LayerNorm_type: str = "WithBias", dual_pixel_task: bool = False,  # noqa: N803 (original name)
                 *, extra_in_channels: int = 0):
        super().__init__()
        for name, value in (("num_blocks", num_blocks), ("heads", heads)):
            if len(value) != 4:
                raise Sam4irError(f"{name} must have 4 entries (one per level), got {list(value)}")
        if LayerNorm_type not in ("WithBias", "BiasFree"):
            raise Sam4irError(f"LayerNorm_type must be 'WithBias' or 'BiasFree', got {LayerNorm_type!r}")
        self.inp_channels = inp_channels
        self.dual_pixel_task = dual_pixel_task
        self.final_projection = "" if dual_pixel_task else "output"
        self.pad_multiple = 8

        def stage(n: int, level_dim: int, n_heads: int) -> nn.Sequential:
            return nn.Sequential(*[TransformerBlock(level_dim, n_heads, ffn_expansion_factor, bias, LayerNorm_type)
                                   for _ in range(n)])

        self.patch_embed = OverlapPatchEmbed(inp_channels + extra_in_channels, dim)
        self.encoder_level1 = stage(num_blocks[0], dim, heads[0])
        self.down1_2 = Downsample(dim)
        self.encoder_level2 = stage(num_blocks[1], dim * 2, heads[1])
        self.down2_3 = Downsample(dim * 2)
        self.encoder_level3 = stage(num_blocks[2], dim * 4, heads[2])
        self.down3_4 = Downsample(dim * 4)
        self.latent = stage(num_blocks[3], dim * 8, heads[3])

        self.up4_3 = Upsample(dim * 8)
        self.reduce_chan_level3 = nn.Conv2d(dim * 8, dim * 4, kernel_size=1, bias=bias)
        self.decoder_level3 = stage(num_blocks[2], dim * 4, heads[2])
        self.up3_2 = Upsample(dim * 4)
        self.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, kernel_size=1, bias=bias)
        self.decoder_level2 = stage(num_blocks[1], dim * 2, heads[1])
        self.up2_1 = Upsample(dim * 2)  # level 1 keeps 2*dim channels: no channel reduction
        self.decoder_level1 = stage(num_blocks[0], dim * 2, heads[0])
        self.refinement = stage(num_refinement_blocks, dim * 2, heads[0])

        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(dim, dim * 2, kernel_size=1, bias=bias)
        self.output = nn.Conv2d(dim * 2, out_channels, kernel_size=3, padding=1, bias=bias)

    def _restore(self, inp: Tensor) -> RestorationOutput:
        emb = self.patch_embed(inp)
        enc1 = self.encoder_level1(emb)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))

        dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], dim=1)))
        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], dim=1)))
        dec1 = self.refinement(self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], dim=1)))

        if self.dual_pixel_task:
            dec1 = dec1 + self.skip_conv(emb)
            return RestorationOutput([self.output(dec1)], dec1)
        return RestorationOutput([self.output(dec1) + inp[:, :self.inp_channels]], dec1)

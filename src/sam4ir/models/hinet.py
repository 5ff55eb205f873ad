"""HINet (Chen et al., "HINet: Half Instance Normalization Network for Image Restoration", CVPRW 2021),
state-dict compatible with megvii-model/HINet.

Two U-Nets in cascade: stage 1 restores a first image, a supervised attention module hands its features to
stage 2, whose encoder also receives stage 1's encoder and decoder features (cross-stage feature fusion, CSFF).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sam4ir.models.base import RestorationNet, RestorationOutput


class UNetConvBlock(nn.Module):
    """Two 3x3 conv + leaky ReLU with a 1x1 identity shortcut; optionally instance-normalises half the channels
    after the first conv (HIN), adds stage-1 features (CSFF) and returns a 4x4 stride-2 downsampled copy.

    forward(x, enc, dec): x B x in_size x H x W -> B x out_size x H x W, or (downsampled, full) if ``downsample``.
    """

    def __init__(self, in_size: int, out_size: int, downsample: bool, relu_slope: float,
                 use_csff: bool = False, use_hin: bool = False):
        super().__init__()
        self.identity = nn.Conv2d(in_size, out_size, kernel_size=1)
        self.conv_1 = nn.Conv2d(in_size, out_size, kernel_size=3, padding=1)
        self.relu_1 = nn.LeakyReLU(relu_slope)
        self.conv_2 = nn.Conv2d(out_size, out_size, kernel_size=3, padding=1)
        self.relu_2 = nn.LeakyReLU(relu_slope)
        if downsample and use_csff:
            self.csff_enc = nn.Conv2d(out_size, out_size, kernel_size=3, padding=1)
            self.csff_dec = nn.Conv2d(out_size, out_size, kernel_size=3, padding=1)
        self.norm = nn.InstanceNorm2d(out_size // 2, affine=True) if use_hin else None
        self.downsample = nn.Conv2d(out_size, out_size, kernel_size=4, stride=2, padding=1, bias=False) \
            if downsample else None

    def forward(self, x: Tensor, enc: Tensor | None = None,
                dec: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        out = self.conv_1(x)
        if self.norm is not None:
            out_1, out_2 = torch.chunk(out, 2, dim=1)
            out = torch.cat([self.norm(out_1), out_2], dim=1)
        out = self.relu_2(self.conv_2(self.relu_1(out)))
        out = out + self.identity(x)
        if enc is not None and dec is not None:
            out = out + self.csff_enc(enc) + self.csff_dec(dec)
        if self.downsample is None:
            return out
        return self.downsample(out), out


class UNetUpBlock(nn.Module):
    """2x transposed-conv upsampling, concatenation with the skip, then a conv block: -> B x out_size x 2H x 2W."""

    def __init__(self, in_size: int, out_size: int, relu_slope: float):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_size, out_size, kernel_size=2, stride=2)
        self.conv_block = UNetConvBlock(in_size, out_size, False, relu_slope)

    def forward(self, x: Tensor, bridge: Tensor) -> Tensor:
        return self.conv_block(torch.cat([self.up(x), bridge], dim=1))


class SupervisedAttention(nn.Module):
    """Supervised attention module (MPRNet's SAM, no relation to Segment Anything): predicts stage 1's image from
    its features and re-weights the features with a sigmoid map computed from that image.

    forward(x B x n_feat x H x W, x_img B x 3 x H x W) -> (features B x n_feat x H x W, image B x 3 x H x W).
    """

    def __init__(self, n_feat: int, kernel_size: int = 3, bias: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(n_feat, n_feat, kernel_size, padding=kernel_size // 2, bias=bias)
        self.conv2 = nn.Conv2d(n_feat, 3, kernel_size, padding=kernel_size // 2, bias=bias)
        self.conv3 = nn.Conv2d(3, n_feat, kernel_size, padding=kernel_size // 2, bias=bias)

    def forward(self, x: Tensor, x_img: Tensor) -> tuple[Tensor, Tensor]:
        img = self.conv2(x) + x_img
        return self.conv1(x) * torch.sigmoid(self.conv3(img)) + x, img


class HINet(RestorationNet):
    """Two-stage HINet.

    Arguments as in megvii-model/HINet:
      in_chn: channels of the image (input and output).
      wf: channels at full resolution, doubled per level; depth: levels (``depth - 1`` downsamplings).
      relu_slope: leaky ReLU slope. hin_position_left/right: encoder levels (inclusive range) that use half
        instance normalisation (GoPro 3..4, SIDD and Rain13k 0..4).
      extra_in_channels: prior channels appended to the input (SPF); conv_01 and conv_02 read them, the
        residuals add the first ``in_chn`` input channels. 0 gives the original network.
    Input B x (in_chn + extra_in_channels) x H x W; forward returns stage 2's image B x in_chn x H x W.
    """

    def __init__(self, in_chn: int = 3, wf: int = 64, depth: int = 5, relu_slope: float = 0.2,
                 hin_position_left: int = 0, hin_position_right: int = 4, *, extra_in_channels: int = 0):
        super().__init__()
        self.in_chn = in_chn
        self.depth = depth
        self.pad_multiple = 2 ** (depth - 1)
        self.final_projection = "last"  # stage 2's image; stage 1's (sam12) is supervised only
        self.down_path_1 = nn.ModuleList()  # registered before conv_01 as in the original: same parameter order
        self.down_path_2 = nn.ModuleList()
        self.conv_01 = nn.Conv2d(in_chn + extra_in_channels, wf, kernel_size=3, padding=1)
        self.conv_02 = nn.Conv2d(in_chn + extra_in_channels, wf, kernel_size=3, padding=1)
        prev = wf
        for i in range(depth):
            use_hin = hin_position_left <= i <= hin_position_right
            downsample = i + 1 < depth
            self.down_path_1.append(UNetConvBlock(prev, 2**i * wf, downsample, relu_slope, use_hin=use_hin))
            self.down_path_2.append(UNetConvBlock(prev, 2**i * wf, downsample, relu_slope,
                                                  use_csff=downsample, use_hin=use_hin))
            prev = 2**i * wf

        self.up_path_1 = nn.ModuleList()
        self.up_path_2 = nn.ModuleList()
        self.skip_conv_1 = nn.ModuleList()
        self.skip_conv_2 = nn.ModuleList()
        for i in reversed(range(depth - 1)):
            self.up_path_1.append(UNetUpBlock(prev, 2**i * wf, relu_slope))
            self.up_path_2.append(UNetUpBlock(prev, 2**i * wf, relu_slope))
            self.skip_conv_1.append(nn.Conv2d(2**i * wf, 2**i * wf, kernel_size=3, padding=1))
            self.skip_conv_2.append(nn.Conv2d(2**i * wf, 2**i * wf, kernel_size=3, padding=1))
            prev = 2**i * wf
        self.sam12 = SupervisedAttention(prev)
        self.cat12 = nn.Conv2d(prev * 2, prev, kernel_size=1)
        self.last = nn.Conv2d(prev, in_chn, kernel_size=3, padding=1)

    def _restore(self, x: Tensor) -> RestorationOutput:
        image = x[:, :self.in_chn]
        # stage 1
        x1 = self.conv_01(x)
        encs, decs = [], []
        for down in self.down_path_1[:-1]:
            x1, x1_full = down(x1)
            encs.append(x1_full)
        x1 = self.down_path_1[-1](x1)
        for up, skip_conv, enc in zip(self.up_path_1, self.skip_conv_1, reversed(encs)):
            x1 = up(x1, skip_conv(enc))
            decs.append(x1)
        sam_feature, out_1 = self.sam12(x1, image)

        # stage 2
        x2 = self.cat12(torch.cat([self.conv_02(x), sam_feature], dim=1))
        blocks = []
        for down, enc, dec in zip(self.down_path_2[:-1], encs, reversed(decs)):
            x2, x2_full = down(x2, enc, dec)
            blocks.append(x2_full)
        x2 = self.down_path_2[-1](x2)
        for up, skip_conv, block in zip(self.up_path_2, self.skip_conv_2, reversed(blocks)):
            x2 = up(x2, skip_conv(block))
        return RestorationOutput([out_1, self.last(x2) + image], x2)

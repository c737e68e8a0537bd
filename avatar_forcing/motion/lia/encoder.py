"""LIA encoder: appearance encoder (image -> latent s + multi-scale feature maps) and the motion MLP
(latent -> coefficients on the learned motion directions)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from avatar_forcing.motion.lia.layers import BLUR_KERNEL, ConvLayer, EqualConv2d, EqualLinear, ResBlock

FC_HIDDEN_LAYERS = 4  # style_dim -> style_dim linear layers before the projection to motion_dim


class AppearanceEncoder(nn.Module):
    """1x1 stem, one downsampling ResBlock per octave down to 4x4, then a 4x4 conv to a 1x1 latent.

    Returns the latent (B, style_dim) and the feature maps from 8x8 up to full size (coarse to fine),
    which the decoder warps.
    """

    def __init__(
        self, size: int, style_dim: int, channels: dict[int, int], taps: Sequence[float] = BLUR_KERNEL
    ):
        super().__init__()
        log_size = int(math.log2(size))
        convs: list[nn.Module] = [ConvLayer(3, channels[size], 1)]
        in_ch = channels[size]
        for i in range(log_size, 2, -1):
            out_ch = channels[2 ** (i - 1)]
            convs.append(ResBlock(in_ch, out_ch, taps))
            in_ch = out_ch
        convs.append(EqualConv2d(in_ch, style_dim, 4, padding=0, bias=False))
        self.convs = nn.ModuleList(convs)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        maps = []
        h = image
        for conv in self.convs:
            h = conv(h)
            maps.append(h)
        # maps: full, 1/2, ..., 4x4, 1x1; the decoder wants 8x8 .. full
        return h.flatten(1), maps[::-1][2:]


class Encoder(nn.Module):
    def __init__(
        self,
        size: int,
        style_dim: int,
        motion_dim: int,
        channels: dict[int, int],
        taps: Sequence[float] = BLUR_KERNEL,
    ):
        super().__init__()
        self.net_app = AppearanceEncoder(size, style_dim, channels, taps)
        fc = [EqualLinear(style_dim, style_dim) for _ in range(FC_HIDDEN_LAYERS)]
        fc.append(EqualLinear(style_dim, motion_dim))
        self.fc = nn.Sequential(*fc)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.net_app(image)

    def motion_coeffs(self, latent: torch.Tensor) -> torch.Tensor:
        return self.fc(latent)

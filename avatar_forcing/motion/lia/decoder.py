"""LIA decoder: an orthonormal motion basis (Direction) and a StyleGAN2-style synthesis network that, at
every scale from 8x8 up, predicts a flow field and an occlusion mask, warps the encoder's feature map of
that scale with it, and blends the warped features into its own activations before the rgb head."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from avatar_forcing.motion.lia.layers import (
    BLUR_KERNEL,
    ConstantInput,
    ConvLayer,
    ModulatedConv2d,
    StyledConv,
    Upsample,
)

QR_EPS = 1e-8  # added to the basis weights before QR (kept for numerical parity with the release)
FLOW_CHANNELS = 3  # 2 for the sampling offsets, 1 for the occlusion mask


class Direction(nn.Module):
    """Learned directions (style_dim, motion_dim), orthonormalized on every call by a reduced QR."""

    def __init__(self, style_dim: int, motion_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(style_dim, motion_dim))

    def basis(self) -> torch.Tensor:
        q, _ = torch.linalg.qr(self.weight + QR_EPS)
        return q

    def forward(self, coeffs: torch.Tensor) -> torch.Tensor:
        """(B, motion_dim) coefficients -> (B, style_dim) motion vector sum_i c_i q_i."""
        return coeffs @ self.basis().T


class ToRGB(nn.Module):
    def __init__(self, in_channels: int, upsample: bool = True, taps: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            self.upsample = Upsample(taps)
        self.conv = ConvLayer(in_channels, 3, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x) + self.bias
        return out if skip is None else out + self.upsample(skip)


def identity_grid(batch: int, size: int, device, dtype) -> torch.Tensor:
    """(B, H, W, 2) grid_sample coordinates (x, y) spanning [-1, 1] edge pixel centre to edge pixel centre."""
    xs = torch.linspace(-1.0, 1.0, size, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(xs, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1).expand(batch, -1, -1, -1)


class ToFlow(nn.Module):
    """Style-modulated 1x1 conv -> (offsets, mask logit), accumulated across scales like the rgb skips."""

    def __init__(self, in_channels: int, style_dim: int, taps: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, FLOW_CHANNELS, 1, 1))
        self.upsample = Upsample(taps)
        self.conv = ModulatedConv2d(in_channels, FLOW_CHANNELS, 1, style_dim, demodulate=False)

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, feat: torch.Tensor, skip: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (warped features, blended activations, raw flow logits for the next scale, grid)."""
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        grid = torch.tanh(out[:, :2]).permute(0, 2, 3, 1) + identity_grid(
            x.shape[0], x.shape[2], x.device, x.dtype
        )
        mask = torch.sigmoid(out[:, 2:3])
        warped = F.grid_sample(feat, grid, mode="bilinear", padding_mode="zeros", align_corners=False) * mask
        return warped, warped + x * (1.0 - mask), out, grid


class Synthesis(nn.Module):
    def __init__(
        self,
        size: int,
        style_dim: int,
        motion_dim: int,
        channels: dict[int, int],
        taps: Sequence[float] = BLUR_KERNEL,
    ):
        super().__init__()
        self.direction = Direction(style_dim, motion_dim)
        self.input = ConstantInput(channels[4])
        self.conv1 = StyledConv(channels[4], channels[4], 3, style_dim, taps=taps)
        self.to_rgb1 = ToRGB(channels[4], upsample=False)  # part of the layout; its output is never used
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.to_flows = nn.ModuleList()
        in_ch = channels[4]
        for i in range(3, int(math.log2(size)) + 1):
            out_ch = channels[2**i]
            self.convs.append(StyledConv(in_ch, out_ch, 3, style_dim, upsample=True, taps=taps))
            self.convs.append(StyledConv(out_ch, out_ch, 3, style_dim, taps=taps))
            self.to_rgbs.append(ToRGB(out_ch, taps=taps))
            self.to_flows.append(ToFlow(out_ch, style_dim, taps=taps))
            in_ch = out_ch

    def forward(
        self, latent: torch.Tensor, feats: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """latent (B, style_dim) = appearance s + motion r; feats coarse to fine (8x8 .. size).

        Returns the image (B, 3, size, size), roughly in [-1, 1], and the finest sampling grid
        (B, size, size, 2).
        """
        out = self.conv1(self.input(latent.shape[0]), latent)
        rgb = flow = grid = None
        for level, (to_rgb, to_flow, feat) in enumerate(zip(self.to_rgbs, self.to_flows, feats, strict=True)):
            out = self.convs[2 * level](out, latent)
            out = self.convs[2 * level + 1](out, latent)
            warped, out, flow, grid = to_flow(out, latent, feat, flow)
            rgb = to_rgb(warped, rgb)
        return rgb, grid

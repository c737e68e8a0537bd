"""1-D rotary position embedding, computed on the fly for any position (no table, no maximum length).

Channels are rotated in adjacent pairs (0,1), (2,3), ..., the layout of the authors' complex-number RoPE.
Angles are computed in float64, so a position of a million rotates as accurately as position 10; the
streaming cache also rebases positions so they stay small forever.

The angles are expanded to full head width once per window, so that a rotation is three elementwise ops:
  rotate(x) = x * cos + swap_pairs(x) * sin,   cos = (c0, c0, c1, c1, ...),  sin = (-s0, s0, -s1, s1, ...)
which is exactly (even * c - odd * s, even * s + odd * c) per pair.
"""

from __future__ import annotations

import torch

Rope = tuple[torch.Tensor, torch.Tensor]  # (cos, signed sin), each (N, head_dim), float32


def rope_angles(positions: torch.Tensor, head_dim: int, theta: float) -> Rope:
    """Rotation tables for `positions` (N,): (cos, signed sin), each (N, head_dim), in float32."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    cos, sin = angles.cos().float(), angles.sin().float()
    return cos.repeat_interleave(2, dim=-1), torch.stack((-sin, sin), dim=-1).flatten(-2)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (..., N, head_dim) by the tables of `rope_angles` (N, head_dim), in float32."""
    x32 = x.float()
    swapped = x32.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)
    return (x32 * cos + swapped * sin).type_as(x)

"""1-D rotary position embedding, computed on the fly for any position (no table, no maximum length).

Channels are rotated in adjacent pairs (0,1), (2,3), ..., the layout of the authors' complex-number RoPE.
Angles are computed in float64, so a position of a million rotates as accurately as position 10; the
streaming cache also rebases positions so they stay small forever.

Rotations are complex numbers e^(i angle), so rotating a tensor is one complex product (the authors'
formulation too), for queries and keys at once.
"""

from __future__ import annotations

import torch


def rope_angles(positions: torch.Tensor, head_dim: int, theta: float) -> torch.Tensor:
    """Rotations for `positions` (N,): complex64 (N, head_dim // 2), cos + i sin."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    return torch.complex(angles.cos().float(), angles.sin().float())


def apply_rope(x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Rotate x (..., N, head_dim) by `rope_angles` rotations (N, head_dim // 2), in float32."""
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * rotation).flatten(-2).type_as(x)

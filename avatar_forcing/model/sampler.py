"""Euler sampling over per-frame flow times with 3-way classifier-free guidance.

The three guidance branches run as one batch, branch-major: rows [uncond x R, avatar audio x R, user x R]
(the authors' order). Combined velocity: v = v_u + w_a (v_a - v_u) + w_u (v_user - v_u), with the head
pose's weights scaled towards 1 by SamplerConfig.pose_guidance, and every weight 1 on the Euler steps outside
SamplerConfig.guidance_interval. SamplerConfig.guidance_form "joint" runs the rows [avatar audio, user,
both] and guides around the velocity given both instead.
"""

from __future__ import annotations

import torch

from avatar_forcing.errors import ConfigError
from avatar_forcing.model.config import SamplerConfig
from avatar_forcing.motion.vector import MOTION_DIM, POSE_SLICE

BRANCHES = 3  # guidance branches: which conditions each sees is BRANCH_DROPS[guidance_form]
SIGMA_TOLERANCE = 1e-9  # the schedule's flow times are float sums: 0.3 may be 0.30000000000000004


# (drop the avatar's audio, drop the user) per guidance branch, in row order (SamplerConfig.guidance_form)
BRANCH_DROPS = {
    "paper": ((True, True), (False, True), (True, False)),    # neither, avatar audio only, user only
    "joint": ((False, True), (True, False), (False, False)),  # avatar audio only, user only, both
}


def guidance_drops(
    rows: int, has_avatar_audio: bool = True, has_user: bool = True, form: str = "paper"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row drop flags (3R,) for the avatar-audio and user conditions, branch-major. A missing input is
    dropped in every branch (its guidance term then vanishes)."""
    drops = BRANCH_DROPS[form]
    drop_avatar = torch.tensor([a for a, _ in drops for _ in range(rows)])
    drop_user = torch.tensor([u for _, u in drops for _ in range(rows)])
    return drop_avatar | (not has_avatar_audio), drop_user | (not has_user)


Weight = float | torch.Tensor


def guidance_weights(cfg: SamplerConfig, like: torch.Tensor) -> tuple[Weight, Weight]:
    """(w_a, w_u): the configured floats, or per channel (D,) like `like` when the head pose gets less."""
    if cfg.pose_guidance == 1.0:
        return cfg.w_audio, cfg.w_user
    dim = like.shape[-1]
    if dim != MOTION_DIM:
        raise ConfigError(f"pose_guidance needs the {MOTION_DIM}-d motion, got {dim}")
    weights = torch.tensor([[cfg.w_audio], [cfg.w_user]], dtype=like.dtype, device=like.device)
    per_channel = weights.repeat(1, dim)
    per_channel[:, POSE_SLICE] = 1.0 + cfg.pose_guidance * (per_channel[:, POSE_SLICE] - 1.0)
    return per_channel[0], per_channel[1]


def combine_guidance(v_raw: torch.Tensor, cfg: SamplerConfig, sigma: float | None = None) -> torch.Tensor:
    """The guided velocity of a step that starts at flow time `sigma` (None: inside the interval)."""
    lo, hi = cfg.guidance_interval
    guided = sigma is None or lo - SIGMA_TOLERANCE <= sigma <= hi + SIGMA_TOLERANCE
    w_a, w_u = guidance_weights(cfg, v_raw) if guided else (1.0, 1.0)
    if cfg.guidance_form == "joint":  # around the velocity given both conditions
        v_a, v_user, v_both = v_raw.chunk(BRANCHES, dim=0)
        return v_both + (w_a - 1) * (v_both - v_user) + (w_u - 1) * (v_both - v_a)
    v_u, v_a, v_user = v_raw.chunk(BRANCHES, dim=0)
    return v_u + w_a * (v_a - v_u) + w_u * (v_user - v_u)


def euler_step(x: torch.Tensor, v: torch.Tensor, d_sigma: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
    """x <- x + d_sigma * v per frame, in float64; frames not `moving` (clean context) are copied exactly.
    x, v (R, N, D); d_sigma (N,) float64; moving (N,) bool."""
    stepped = (x.double() + d_sigma[None, :, None] * v.double()).to(x.dtype)
    return torch.where(moving[None, :, None], stepped, x)


def pull_pose_to_rest(x: torch.Tensor, reference: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The head pose of new frames x (R, N, D) drawn towards the rest `reference` (R, D): frame j keeps
    keep[0] * ... * keep[j] of its offset, a leak of one step per frame on top of the model's own motion
    (stream/settle.py). keep (N,) in (0, 1]; all ones leave x as it is."""
    if x.shape[-1] != MOTION_DIM:
        raise ConfigError(f"pulling the head to the rest needs the {MOTION_DIM}-d motion, got {x.shape[-1]}")
    factor = torch.cumprod(keep.to(torch.float64), 0).to(x.device, x.dtype)[None, :, None]
    rest = reference[:, None, POSE_SLICE].to(x.dtype)
    pulled = x.clone()
    pose = x[..., POSE_SLICE]
    pulled[..., POSE_SLICE] = torch.where(factor < 1, rest + (pose - rest) * factor, pose)  # exact where kept
    return pulled

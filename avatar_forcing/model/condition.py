"""Condition encoders: the audio projection head and the dual motion encoder (paper, sec. 3).

Dual motion encoder, in the paper's order (attention over the window, or frame-local: `cond_window`):
  1. user motion -> 2 x (Linear, LayerNorm, SiLU)
  2. attention, query = user motion, key/value = user audio; residual + LN + SiLU
  3. attention, query = avatar audio, key/value = step 2; residual + LN + SiLU
  4. Linear to the transformer width.
Dropped conditions (for classifier-free guidance) are zeroed at the encoder input, after the audio head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from avatar_forcing.model.attention import ConditionAttention
from avatar_forcing.model.config import ModelConfig
from avatar_forcing.model.masks import condition_attention_mask


class AudioProjection(nn.Sequential):
    """Raw audio features (log-mel or wav2vec2 layers) -> cond_dim: Linear + LayerNorm + SiLU."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(
            nn.Linear(cfg.audio_dim, cfg.cond_dim),
            nn.LayerNorm(cfg.cond_dim, eps=cfg.cond_norm_eps),
            nn.SiLU(),
        )


class DualMotionEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, eps = cfg.cond_dim, cfg.cond_norm_eps
        self.cfg = cfg
        self.motion_embedder = nn.Sequential(
            nn.Linear(cfg.user_motion_dim, d), nn.LayerNorm(d, eps=eps), nn.SiLU(),
            nn.Linear(d, d), nn.LayerNorm(d, eps=eps), nn.SiLU(),
        )  # fmt: skip
        self.dual_modal_attn = ConditionAttention(d, cfg.cond_heads)
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.user_agent_attn = ConditionAttention(d, cfg.cond_heads)
        self.ln2 = nn.LayerNorm(d, eps=eps)
        self.to_cond_user = nn.Linear(d, cfg.width)

    def forward(
        self, avatar_audio: torch.Tensor, user_audio: torch.Tensor, user_motion: torch.Tensor
    ) -> torch.Tensor:
        """Projected avatar audio, projected user audio (R, N, cond_dim), user motion (R, N, user_motion_dim)
        -> condition tokens (R, N, width)."""
        mask = condition_attention_mask(user_motion.shape[1], self.cfg)
        if mask is not None:
            mask = mask.to(user_motion.device)
        user = self.motion_embedder(user_motion)
        user = F.silu(self.ln1(user + self.dual_modal_attn(user, user_audio, mask)))
        both = F.silu(self.ln2(avatar_audio + self.user_agent_attn(avatar_audio, user, mask)))
        return self.to_cond_user(both)


def apply_drop(x: torch.Tensor, drop: torch.Tensor | None) -> torch.Tensor:
    """Zero the rows of x (R, N, C) where drop (R,) is True."""
    if drop is None:
        return x
    return x * (~drop).to(x.dtype)[:, None, None]

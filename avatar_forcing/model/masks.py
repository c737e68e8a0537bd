"""Attention masks over absolute (or consistently rebased) frame indices. True = may attend.

Self-attention (``ModelConfig.mask``):
- ``"frame_lookahead"`` (default): frame i sees frame j iff j <= i + l. This is what the authors' released
  mask reduces to, so the `paper` preset needs it to reproduce their checkpoints, and it gives every frame
  the same l-frame look-ahead wherever it sits in a block (uniform latency of l frames of audio).
- ``"block_causal"``: the paper's eq. 5 in spirit: full attention inside a B-frame block and to all earlier
  blocks, plus the first l frames of the next block: j < B * (floor(i / B) + 1) + l. Read literally
  (floor(j/B) <= floor(i/B) + l), eq. 5 would give l *blocks* (0.8 s) of look-ahead, which contradicts the
  paper's stated 0.4 s block latency, so l is taken in frames. Block indices need frame indices whose
  origin is a multiple of B; the streaming cache keeps its origin on a block boundary for that reason.
In streaming both rules are truncated at the end of the window (the look-ahead frames of the last frames
of a block do not exist yet), exactly as in the authors' sampler.
- ``"lookahead_in_block"``: ``frame_lookahead`` that never crosses the end of the frame's own block, in
  self- and in cross-attention: training sees what streaming has (with the authors' rules a block's last
  frames look into the next block in training and into nothing when streaming). Trained with it, the tiny
  model answers a smile at once far more often, and its mouth follows real speech worse, since the last
  frames of a block hear no sound ahead (model v27, docs/EVALUATION.md, round 12).
- ``"motion_lookahead_in_block"``: the same in self-attention only; the sound keeps the authors' reach.

Cross-attention to the condition tokens: |i - j| <= w (and j before the end of i's block for
``"lookahead_in_block"``).
Attention inside the dual motion encoder (``cond_window`` = k): all frames of the window for k = -1,
otherwise i - k <= j <= i.
"""

from __future__ import annotations

import torch

from avatar_forcing.model.config import ModelConfig


def self_attention_mask(
    query_frames: torch.Tensor, key_frames: torch.Tensor, cfg: ModelConfig
) -> torch.Tensor:
    q, k = query_frames[:, None], key_frames[None, :]
    if cfg.mask == "frame_lookahead":
        return k <= q + cfg.lookahead
    if cfg.mask in ("lookahead_in_block", "motion_lookahead_in_block"):
        return (k <= q + cfg.lookahead) & (k < block_end(q, cfg))
    return k < block_end(q, cfg) + cfg.lookahead


def cross_attention_mask(
    query_frames: torch.Tensor, key_frames: torch.Tensor, cfg: ModelConfig
) -> torch.Tensor:
    q, k = query_frames[:, None], key_frames[None, :]
    near = (k - q).abs() <= cfg.cross_window
    return near & (k < block_end(q, cfg)) if cfg.mask == "lookahead_in_block" else near


def block_end(frames: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """The first frame after each frame's B-frame block (frame indices with an origin on a block boundary)."""
    return (torch.div(frames, cfg.block_size, rounding_mode="floor") + 1) * cfg.block_size


def condition_attention_mask(frames: int, cfg: ModelConfig) -> torch.Tensor | None:
    """Mask of the dual motion encoder's attention over a window of `frames`; None = no mask."""
    if cfg.cond_window < 0:
        return None
    offset = torch.arange(frames)[None, :] - torch.arange(frames)[:, None]
    return (offset <= 0) & (offset >= -cfg.cond_window)


def attention_bias(mask: torch.Tensor) -> torch.Tensor:
    """Boolean mask -> additive float32 bias (0 where allowed, -inf elsewhere), the form attention uses
    internally; converting once per streaming window saves the conversion in every attention call."""
    return torch.zeros(mask.shape).masked_fill_(~mask, float("-inf"))

"""Self-attention with RoPE and an external key/value prefix (the streaming cache), and cross-attention to
the condition tokens. Parameter names follow the authors' layout (qkv/proj, q/kv/proj)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from avatar_forcing.model.linear import Linear
from avatar_forcing.model.rope import apply_rope


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(R, N, C) -> (R, heads, N, C // heads)"""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2).flatten(-2)


class KVBuffer(NamedTuple):
    """Preallocated self-attention keys (already rotated) and values (R, H, L, d) of a whole streaming window:
    the prefix holds the cache, the last N slots receive each pass's own keys and values in place, which
    saves concatenating the prefix again on every pass."""

    keys: torch.Tensor
    values: torch.Tensor


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = Linear(width, 3 * width)
        self.proj = Linear(width, width)

    def forward(
        self,
        x: torch.Tensor,
        rope: torch.Tensor,
        mask: torch.Tensor,
        past: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (R, N, C); past = (keys already rotated, values), each (R, H, P, d), or a `KVBuffer`
        (R, H, P + N, d); mask (N, P + N), boolean or an additive float bias (`masks.attention_bias`,
        converted once per window rather than in every call).

        Returns the output and this window's *unrotated* keys and values, so a cache can re-rotate them
        at rebased positions later."""
        qkv = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)  # (3, R, H, N, d)
        k, v = qkv[1], qkv[2]
        q_rot, k_rot = apply_rope(qkv[:2], rope)  # q and k rotated together
        keys, values = k_rot, v
        if isinstance(past, KVBuffer):
            keys, values = past
            keys[:, :, -k.shape[2] :], values[:, :, -k.shape[2] :] = k_rot, v
        elif past is not None:
            keys, values = torch.cat((past[0], k_rot), dim=2), torch.cat((past[1], v), dim=2)
        out = F.scaled_dot_product_attention(q_rot, keys, values, attn_mask=mask)
        return self.proj(merge_heads(out)), k, v


class CrossAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = Linear(width, width)
        self.kv = Linear(width, 2 * width)
        self.proj = Linear(width, width)

    def project_kv(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Condition tokens (R, M, C) -> keys, values (R, H, M, d); computed once per window, not per step."""
        k, v = self.kv(cond).chunk(2, dim=-1)
        return split_heads(k, self.heads), split_heads(v, self.heads)

    def forward(
        self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        q = split_heads(self.q(x), self.heads)
        return self.proj(merge_heads(F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)))


class ConditionAttention(nn.Module):
    """Multi-head attention with packed input projections (the `nn.MultiheadAttention` parameter layout),
    used by the dual motion encoder inside a window (optionally masked: `masks.condition_attention_mask`)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(
        self, query: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        q = split_heads(F.linear(query, w_q, b_q), self.heads)
        k = split_heads(F.linear(context, w_k, b_k), self.heads)
        v = split_heads(F.linear(context, w_v, b_v), self.heads)
        return self.out_proj(merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask)))

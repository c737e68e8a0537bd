"""The causal DFoT (diffusion forcing transformer) motion denoiser.

Per frame, the input token is [noisy motion || reference motion], projected to the width, plus (with
`user_motion_input`) a projection of the user's motion at that frame. Each block:
  x += gate1 * SelfAttn(modulate(LN(x)))          RoPE, block-causal / look-ahead mask, optional cache prefix
  x += CrossAttn(LN(x), condition tokens)         +-w frame window
  x += gate2 * MLP(modulate(LN(x)))               fc1 -> tanh-GELU -> fc2
The adaLN modulation is computed once from the per-frame flow-time embedding and shared by all blocks, as in
the authors' layout; the final layer has its own. Module and parameter names follow the authors' keys
(`flow_transformer.*`), so the `paper` preset loads their checkpoint without renaming inside the tree.

`forward` is the plain, cache-free path over one window (training, tests). `denoise` is the same computation
with externally supplied positions, masks, condition keys/values, a self-attention key/value prefix and
optionally the time conditioning (`condition_on_time`); the streaming sampler drives it and prepares all of
these once per block, since an Euler step only changes x and t, and t takes a handful of known values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avatar_forcing.model.attention import CrossAttention, SelfAttention
from avatar_forcing.model.condition import AudioProjection, DualMotionEncoder, apply_drop
from avatar_forcing.model.config import ModelConfig
from avatar_forcing.model.linear import Linear
from avatar_forcing.model.masks import cross_attention_mask, self_attention_mask
from avatar_forcing.model.rope import rope_angles
from avatar_forcing.motion.vector import idx

KV = tuple[torch.Tensor, torch.Tensor]


GELU_CUBIC = 0.044715  # tanh-GELU: u = sqrt(2 / pi) (x + GELU_CUBIC x^3)
GELU_2C = 2 * math.sqrt(2 / math.pi)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale_1p: torch.Tensor) -> torch.Tensor:
    """adaLN: x * (1 + scale) + shift, with 1 + scale precomputed once per flow time."""
    return torch.addcmul(shift, x, scale_1p)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh-approximated GELU. Without autograd on the CPU it is evaluated as x * sigmoid(2u), the same
    function (0.5 (1 + tanh u) = sigmoid(2u)) in a few in-place vectorized ops, several times faster than
    PyTorch's tanh-GELU CPU kernel at streaming sizes."""
    if torch.is_grad_enabled() or x.device.type != "cpu":
        return F.gelu(x, approximate="tanh")
    two_u = torch.mul(x, x).mul_(GELU_2C * GELU_CUBIC).add_(GELU_2C).mul_(x)
    return two_u.sigmoid_().mul_(x)


@dataclass(frozen=True)
class TimeConditioning:
    """Everything the flow time feeds: per block (shift1, 1 + scale1, gate1, shift2, 1 + scale2, gate2) and
    the final layer's (shift, 1 + scale), each (..., N, width)."""

    blocks: tuple[torch.Tensor, ...]
    final: tuple[torch.Tensor, torch.Tensor]

    def index(self, i: int | torch.Tensor) -> TimeConditioning:
        """Index the leading dimension: an Euler step when prepared for all steps at once, or a table of
        distinct flow times expanded to frames."""
        return TimeConditioning(tuple(z[i] for z in self.blocks), (self.final[0][i], self.final[1][i]))


class TimestepEmbedder(nn.Module):
    """Per-frame flow time in [0, 1] -> width, via a sinusoid on the 0..time_scale scale and an MLP."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.freq_dim, self.time_scale = cfg.time_embed_dim, cfg.time_scale
        self.mlp = nn.Sequential(
            nn.Linear(cfg.time_embed_dim, cfg.width), nn.SiLU(), nn.Linear(cfg.width, cfg.width)
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(
            -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half
        )
        # Scale in float64 so that e.g. 0.25025 maps back to exactly 250.25 before the float32 product.
        args = (t.double() * self.time_scale).float()[..., None] * freqs
        return self.mlp(torch.cat((torch.cos(args), torch.sin(args)), dim=-1))


class InputEmbedder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.proj = Linear(2 * cfg.motion_dim, cfg.width)

    def forward(self, x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.cat((x, reference[:, None, :].expand_as(x)), dim=-1))


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = Linear(width, hidden)
        self.fc2 = Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(gelu_tanh(self.fc1(x)))


class DFoTBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.eps = cfg.norm_eps
        self.attn = SelfAttention(cfg.width, cfg.heads)
        self.cross_attn = CrossAttention(cfg.width, cfg.heads)
        self.mlp = Mlp(cfg.width, int(cfg.width * cfg.mlp_ratio))

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], eps=self.eps)

    def forward(self, x, mod, rope, self_mask, cross_kv: KV, cross_mask, past: KV | None = None):
        shift1, scale1, gate1, shift2, scale2, gate2 = mod
        h, k, v = self.attn(modulate(self.norm(x), shift1, scale1), rope, self_mask, past)
        x = torch.addcmul(x, gate1, h)
        x = x + self.cross_attn(self.norm(x), *cross_kv, cross_mask)
        x = torch.addcmul(x, gate2, self.mlp(modulate(self.norm(x), shift2, scale2)))
        return x, (k, v)


class FinalLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.eps = cfg.norm_eps
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cfg.width, 2 * cfg.width))
        self.linear = Linear(cfg.width, cfg.motion_dim)

    def forward(self, x: torch.Tensor, shift: torch.Tensor, scale_1p: torch.Tensor) -> torch.Tensor:
        return self.linear(modulate(F.layer_norm(x, x.shape[-1:], eps=self.eps), shift, scale_1p))


class DFoT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg.validate()
        self.x_embedder = InputEmbedder(cfg)
        self.user_embedder = Linear(cfg.user_motion_dim, cfg.width) if cfg.user_motion_input else None
        seen = [idx(name) for name in cfg.user_channels] or list(range(cfg.user_motion_dim))
        user_channel_mask = torch.zeros(cfg.user_motion_dim)
        user_channel_mask[seen] = 1.0
        self.register_buffer("user_channel_mask", user_channel_mask, persistent=False)
        self.t_embedder = TimestepEmbedder(cfg)
        self.c_embedder = DualMotionEncoder(cfg)
        self.audio_projection = AudioProjection(cfg)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cfg.width, 6 * cfg.width))
        self.blocks = nn.ModuleList(DFoTBlock(cfg) for _ in range(cfg.depth))
        self.final_layer = FinalLayer(cfg)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """DiT-style: Xavier linears, zero biases, zero adaLN and output so every block starts as identity."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for linear in self.t_embedder.mlp[0], self.t_embedder.mlp[2]:
            nn.init.normal_(linear.weight, std=0.02)
        for linear in self.adaLN_modulation[1], self.final_layer.adaLN_modulation[1], self.final_layer.linear:
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def encode_conditions(
        self,
        avatar_audio: torch.Tensor,
        user_audio: torch.Tensor,
        user_motion: torch.Tensor,
        drop_avatar: torch.Tensor | None = None,
        drop_user: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Raw features of one window -> condition tokens (R, N, width). drop_* (R,) bool zero a condition
        (avatar audio; user audio together with user motion) after the audio head, for guidance."""
        avatar = apply_drop(self.audio_projection(avatar_audio), drop_avatar)
        user_audio = apply_drop(self.audio_projection(user_audio), drop_user)
        user_motion = apply_drop(user_motion * self.user_channel_mask, drop_user)
        return self.c_embedder(avatar, user_audio, user_motion)

    def embed_user_frames(self, user_motion: torch.Tensor, drop_user: torch.Tensor | None = None
                          ) -> torch.Tensor | None:
        """The user's motion (R, N, user_motion_dim) -> its part of each frame's input token (R, N, width), or
        None when the model has no such input. drop_user (R,) zeroes it as `encode_conditions` does."""
        if self.user_embedder is None:
            return None
        return self.user_embedder(apply_drop(user_motion * self.user_channel_mask, drop_user))

    def cross_kv(self, cond: torch.Tensor) -> list[KV]:
        return [block.cross_attn.project_kv(cond) for block in self.blocks]

    def rope(self, positions: torch.Tensor) -> torch.Tensor:
        """RoPE rotations (complex, see `rope.rope_angles`) for frame positions (N,)."""
        return rope_angles(positions, self.cfg.head_dim, self.cfg.rope_theta)

    def condition_on_time(self, t: torch.Tensor) -> TimeConditioning:
        """Per-frame flow times t (..., N) -> the adaLN modulations of all blocks and of the final layer."""
        t_embed = self.t_embedder(t)
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(t_embed).chunk(6, dim=-1)
        shift, scale = self.final_layer.adaLN_modulation(t_embed).chunk(2, dim=-1)
        return TimeConditioning((shift1, 1 + scale1, gate1, shift2, 1 + scale2, gate2), (shift, 1 + scale))

    def denoise(
        self,
        x: torch.Tensor,
        t: torch.Tensor | None,
        reference: torch.Tensor,
        cross_kv: list[KV],
        rope: torch.Tensor,
        self_mask: torch.Tensor,
        cross_mask: torch.Tensor,
        past: list[KV] | None = None,
        time: TimeConditioning | None = None,
        user_frames: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[KV]]:
        """Velocity for noisy motion x (R, N, D) at per-frame flow times t (R, N).

        `time`: `condition_on_time(t)` prepared by the caller (t is then unused); `user_frames`:
        `embed_user_frames(...)` of the same frames (required when the model has that input). Masks are
        boolean or additive float biases. Returns the velocity and, per layer, this window's unrotated
        self-attention keys and values."""
        if time is None:
            time = self.condition_on_time(t)
        h = self.x_embedder(x, reference)
        if self.user_embedder is not None:
            h = h + user_frames
        new_kv = []
        for i, block in enumerate(self.blocks):
            layer_past = None if past is None else past[i]
            h, kv = block(h, time.blocks, rope, self_mask, cross_kv[i], cross_mask, layer_past)
            new_kv.append(kv)
        return self.final_layer(h, *time.final), new_kv

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        avatar_audio: torch.Tensor,
        user_audio: torch.Tensor,
        user_motion: torch.Tensor,
        reference: torch.Tensor,
        drop_avatar: torch.Tensor | None = None,
        drop_user: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Cache-free velocity over one window of N frames, positions 0..N-1 (any N)."""
        frames = torch.arange(x.shape[1], device=x.device)
        cond = self.encode_conditions(avatar_audio, user_audio, user_motion, drop_avatar, drop_user)
        self_mask = self_attention_mask(frames, frames, self.cfg)
        cross_mask = cross_attention_mask(frames, frames, self.cfg)
        user_frames = self.embed_user_frames(user_motion, drop_user)
        v, _ = self.denoise(x, t, reference, self.cross_kv(cond), self.rope(frames), self_mask, cross_mask,
                            user_frames=user_frames)
        return v

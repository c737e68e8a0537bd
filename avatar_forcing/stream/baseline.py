"""INFP*-like baseline: a bidirectional windowed sampler, for the speed comparison of the paper (sec. 4).

The paper compares against INFP*: a bidirectional transformer that generates a 75-frame window at a time,
conditioned on 10 clean context frames from the previous window, with no cache: every window is denoised
from scratch, and its first frame can only be generated once all 75 frames of input audio are in.

This sampler runs the *same* DFoT network (same width, depth and weights) with a full (bidirectional)
self-attention mask over context + window, 3-way CFG batched in one pass, Euler over the same schedule. It
exists to measure speed and latency side by side; its motion quality is not meaningful with causally
trained weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from avatar_forcing.model.config import SamplerConfig
from avatar_forcing.model.dfot import DFoT
from avatar_forcing.model.flow import sampling_schedule
from avatar_forcing.model.masks import cross_attention_mask


@dataclass(frozen=True)
class BaselineConfig:
    window: int = 75   # frames generated per window (3 s at 25 fps)
    context: int = 10  # clean frames of the previous window the next one is conditioned on


# CFG branches, batched: (drop avatar, drop user) for v(0,0), v(a,0), v(0,u).
BRANCHES = ((True, True), (False, True), (True, False))


class BidirectionalSampler:
    def __init__(self, model: DFoT, cfg: BaselineConfig = BaselineConfig(),
                 sampler: SamplerConfig = SamplerConfig()):
        self.model, self.cfg, self.sampler = model, cfg, sampler.validate()
        self.times, self.sigmas = sampling_schedule(sampler)

    @torch.inference_mode()
    def sample_window(self, context: torch.Tensor, avatar_audio: torch.Tensor, user_audio: torch.Tensor,
                      user_motion: torch.Tensor, reference: torch.Tensor, noise: torch.Tensor
                      ) -> torch.Tensor:
        """One window. context (C, D) clean motion (C may be 0); conditions (C + W, .) for context + window;
        reference (D,); noise (W, D). Returns the window's motion (W, D), all normalized."""
        model, n_ctx = self.model, len(context)
        frames = n_ctx + len(noise)
        drop_avatar = torch.tensor([b[0] for b in BRANCHES])
        drop_user = torch.tensor([b[1] for b in BRANCHES])
        cond = model.encode_conditions(*(c[None].expand(len(BRANCHES), -1, -1)
                                         for c in (avatar_audio, user_audio, user_motion)),
                                       drop_avatar, drop_user)
        cross_kv = model.cross_kv(cond)
        user_frames = model.embed_user_frames(user_motion[None].expand(len(BRANCHES), -1, -1), drop_user)
        positions = torch.arange(frames)
        rope = model.rope(positions)
        self_mask = torch.ones(frames, frames, dtype=torch.bool)  # bidirectional: every frame sees all
        cross_mask = cross_attention_mask(positions, positions, model.cfg)
        refs = reference[None].expand(len(BRANCHES), -1)
        x = noise.clone()
        for time, s, s_next in zip(self.times.tolist(), self.sigmas[:-1].tolist(), self.sigmas[1:].tolist(),
                                   strict=True):
            full = torch.cat((context, x))[None].expand(len(BRANCHES), -1, -1)
            t = torch.cat((torch.zeros(n_ctx), torch.full((len(x),), time)))[None].expand(len(BRANCHES), -1)
            v, _ = model.denoise(full, t.float(), refs, cross_kv, rope, self_mask, cross_mask,
                                 user_frames=user_frames)
            v_none, v_avatar, v_user = v[:, n_ctx:]
            guided = (v_none + self.sampler.w_audio * (v_avatar - v_none)
                      + self.sampler.w_user * (v_user - v_none))
            x = x + (s_next - s) * guided
        return x

    def sample(self, avatar_audio: np.ndarray, user_audio: np.ndarray, user_motion: np.ndarray,
               reference: np.ndarray, seed: int = 0) -> np.ndarray:
        """Whole sequence, window after window: conditions (T, .) normalized -> motion (T, D) normalized."""
        gen = torch.Generator().manual_seed(seed)
        total, dim = len(avatar_audio), self.model.cfg.motion_dim
        conds = [torch.as_tensor(np.asarray(c, np.float32)) for c in (avatar_audio, user_audio, user_motion)]
        ref = torch.as_tensor(np.asarray(reference, np.float32))
        out = torch.zeros(0, dim)
        while len(out) < total:
            start = len(out)
            n = min(self.cfg.window, total - start)
            context = out[max(0, start - self.cfg.context):]
            lo = start - len(context)
            noise = torch.randn(n, dim, generator=gen)
            window = self.sample_window(context, *(c[lo: start + n] for c in conds), ref, noise)
            out = torch.cat((out, window))
        return out.numpy()

"""Streaming generation with a rolling KV cache, and the offline procedure built on it.

Per block (the authors' procedure, generalized by config):
1. The window is [`context` clean frames carried from the previous block, B fresh noise frames]; the very
   first window is either a whole training window (N = 50 frames, ``first_block="full"``, as the authors do)
   or a single block (``"short"``: the first motion after 0.4 s instead of 2 s in a live session).
   With ``SamplerConfig.overlap`` = k, k more noise frames follow the block; they give its last frames the
   look-ahead they had in training and are dropped after sampling (the next block samples them anew).
2. The condition encoder runs once on the window's conditions (full attention inside the window), for
   the three guidance rows [uncond, avatar-audio, user] batched branch-major.
3. Euler over the schedule; context frames stay at flow time 0 and are copied through unchanged.
4. One more pass at flow time 0 on the final latents writes the caches: the self-attention keys/values of
   every frame before the next context (at most N - B - context = 38 frames are kept), and the
   cross-attention keys/values of the w condition tokens just before it.

Positions: keys are cached *unrotated*, and rotated once per block at positions relative to an origin on
a block boundary near the oldest cached frame. RoPE only sees relative offsets, so this equals absolute
positions up to float rounding, while memory, compute and position values stay bounded forever (the
authors' 1024-entry table limits them to ~41 s). ``rolling=False`` is the reference path: it keeps the
full history, absolute positions and masks out what the rolling cache would have dropped.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from avatar_forcing.errors import InputError
from avatar_forcing.model.attention import KVBuffer
from avatar_forcing.model.config import SamplerConfig
from avatar_forcing.model.dfot import DFoT
from avatar_forcing.model.flow import sampling_schedule
from avatar_forcing.model.masks import attention_bias, cross_attention_mask, self_attention_mask
from avatar_forcing.model.rope import apply_rope
from avatar_forcing.model.sampler import (
    BRANCHES,
    combine_guidance,
    euler_step,
    guidance_drops,
    pull_pose_to_rest,
)

NoiseFn = Callable[[tuple[int, ...], int], torch.Tensor]  # (shape, block index) -> noise
KV = tuple[torch.Tensor, torch.Tensor]
# PyTorch's CPU attention kernel is ~2x faster when the number of keys is a multiple of 16, so the keys are
# padded up to one with masked-out zeros (exactly zero attention weight: the result is unchanged).
KEY_ALIGN = 16


class StreamingGenerator:
    def __init__(
        self,
        model: DFoT,
        cfg: SamplerConfig,
        reference: torch.Tensor,
        seed: int = 0,
        noise_fn: NoiseFn | None = None,
        rolling: bool = True,
    ):
        self.model, self.cfg, self.mcfg = model, cfg.validate(), model.cfg
        self.reference = reference.reshape(-1, self.mcfg.motion_dim).float()
        self.rows = self.reference.shape[0]
        self.seed, self.noise_fn, self.rolling = seed, noise_fn, rolling
        self.times, self.sigmas = sampling_schedule(cfg)
        self.trace: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # set to [] to record (x, v_raw)
        self.reset()

    def reset(self) -> None:
        self.block_index = 0
        self.next_frame = 0  # absolute index of the next new frame
        self.context_latents: torch.Tensor | None = None  # (R, context, D)
        # Raw conditions of the frames before the next window's new frames: its context, and before that the
        # frames the condition encoder's causal window reaches back to (ModelConfig.cond_window).
        self.past_conds: tuple[torch.Tensor, ...] | None = None
        self.self_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # per layer, unrotated
        self.self_frames = torch.zeros(0, dtype=torch.long)
        self.cross_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.cross_frames = torch.zeros(0, dtype=torch.long)
        self.generator = torch.Generator().manual_seed(self.seed)

    @property
    def frames_needed(self) -> int:
        """Motion frames the next `step` returns."""
        if self.block_index == 0 and self.cfg.first_block == "full":
            return self.mcfg.window
        return self.mcfg.block_size

    @property
    def condition_frames(self) -> int:
        """Condition frames the next `step` takes: its own, then `SamplerConfig.overlap` frames past them."""
        return self.frames_needed + self.cfg.overlap

    def _noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        if self.noise_fn is not None:
            return self.noise_fn(shape, self.block_index).float()
        return torch.randn(shape, generator=self.generator)

    def _check(self, name: str, x: torch.Tensor, n: int, dim: int) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.ndim == 2:
            x = x[None]
        if x.shape != (self.rows, n, dim):
            raise InputError(f"{name} must have shape ({self.rows}, {n}, {dim}), got {tuple(x.shape)}")
        return x

    @torch.inference_mode()  # no autograd bookkeeping at all: ~13% faster per block than no_grad
    def step(
        self,
        avatar_audio: torch.Tensor,
        user_audio: torch.Tensor,
        user_motion: torch.Tensor,
        has_avatar_audio: bool = True,
        has_user: bool = True,
        given: torch.Tensor | None = None,
        pose_keep: torch.Tensor | None = None,
        pose_rest: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Conditions of the `condition_frames` next frames -> the motion of the first `frames_needed` of them
        (R, n, motion_dim); the overlap frames past those are sampled for the kept frames to look ahead at,
        then dropped. `given` (R or 1, n, motion_dim) skips the sampling: those latents are the block (a known
        past, e.g. the rest a session starts from) and enter the cache as a generated block would.
        `pose_keep` (n,) pulls the sampled head pose towards the rest before the block enters the cache
        (`pull_pose_to_rest`): towards `pose_rest` (motion_dim,) when given, else the reference."""
        m, kept, n = self.mcfg, self.frames_needed, self.condition_frames
        new = (
            self._check("avatar_audio", avatar_audio, n, m.audio_dim),
            self._check("user_audio", user_audio, n, m.audio_dim),
            self._check("user_motion", user_motion, n, m.user_motion_dim),
        )
        first = self.context_latents is None
        conds = (
            new if first else tuple(torch.cat(p, dim=1) for p in zip(self.past_conds, new, strict=True))
        )
        device = self.reference.device  # the bookkeeping below is on the CPU; what meets the net moves here
        x = self._noise((self.rows, n, m.motion_dim)).to(device)
        if not first:
            x = torch.cat((self.context_latents, x), dim=1)
        n_ctx, length = x.shape[1] - n, x.shape[1]
        start = self.next_frame - n_ctx
        frames = torch.arange(start, start + length)

        R = self.rows
        drop_avatar, drop_user = (d.to(device) for d in guidance_drops(R, has_avatar_audio, has_user,
                                                                            self.cfg.guidance_form))
        cond = self.model.encode_conditions(
            *(c.repeat(BRANCHES, 1, 1) for c in conds), drop_avatar, drop_user
        )[:, -length:]  # the history frames only inform the window's tokens
        user_frames = self.model.embed_user_frames(conds[2][:, -length:].repeat(BRANCHES, 1, 1), drop_user)
        reference = self.reference.repeat(BRANCHES, 1)

        # Everything but x is fixed for the whole block, so it is prepared once here rather than per pass:
        # positions, masks (as additive biases), RoPE, condition keys/values, the cached keys rotated into
        # preallocated key/value buffers, and the time conditioning.
        origin = 0
        if self.rolling:
            first_key = int(self.self_frames[0]) if len(self.self_frames) else start
            origin = first_key // m.block_size * m.block_size
        key_frames = torch.cat((self.self_frames, frames))
        self_mask = (
            self_attention_mask(frames, key_frames, m) & (key_frames >= start - m.cache_frames)[None, :]
        )
        cross_mask = cross_attention_mask(frames, torch.cat((self.cross_frames, frames)), m)
        rope = self.model.rope(frames - origin).to(device)
        window_kv = self.model.cross_kv(cond)
        cross_kv = window_kv
        past = None
        if self.self_kv is not None:
            cross_kv = [
                (torch.cat((pk, k), 2), torch.cat((pv, v), 2))
                for (pk, pv), (k, v) in zip(self.cross_kv, window_kv, strict=True)
            ]
            rotation = self.model.rope(self.self_frames - origin).to(device)
            past = [(apply_rope(k, rotation), v) for k, v in self.self_kv]
        self_pad, cross_pad = (-mask.shape[1] % KEY_ALIGN for mask in (self_mask, cross_mask))
        like = window_kv[0][0]
        past = [KVBuffer(*kv) for kv in pad_keys(past, self_pad, length, like, m.depth)]
        cross_kv = pad_keys(cross_kv, cross_pad, 0, like, m.depth)
        self_bias = attention_bias(F.pad(self_mask, (self_pad, 0))).to(device)
        cross_bias = attention_bias(F.pad(cross_mask, (cross_pad, 0))).to(device)

        # Time conditioning of every pass (the Euler steps, then the cache fill at flow time 0): computed once
        # per distinct flow time, then laid out per pass and frame; the same in every row (broadcast).
        passes = len(self.times) + 1
        is_new = torch.arange(length) >= n_ctx
        history = self.times.new_full((1,), self.cfg.history_noise)
        clean = history.new_zeros(1 if self.cfg.clean_context else 0)
        table = self.model.condition_on_time(torch.cat((self.times, history, clean)).float().to(device))
        context_time = passes if self.cfg.clean_context else passes - 1  # flow time 0 or history_noise
        layout = torch.where(is_new, torch.arange(passes)[:, None], context_time)
        layout[-1] = passes - 1  # the cache fill: every frame at the history's flow time
        time = table.index(layout.to(device))
        d_sigmas = torch.where(is_new, (self.sigmas[1:] - self.sigmas[:-1])[:, None], 0.0).to(device)
        moving = is_new.to(device)

        def run(x: torch.Tensor, i: int):
            return self.model.denoise(
                x.repeat(BRANCHES, 1, 1), None, reference, cross_kv, rope, self_bias, cross_bias, past,
                time.index(i), user_frames,
            )  # fmt: skip

        if given is not None:
            given = given.to(device, x.dtype).expand(self.rows, kept, m.motion_dim)
            given = torch.cat((given, given[:, -1:].expand(-1, n - kept, -1)), 1)  # the overlap holds still
            x = torch.cat((x[:, :n_ctx], given), 1)
        for i in range(0 if given is not None else len(self.times)):
            v_raw, _ = run(x, i)
            if self.trace is not None:
                self.trace.append((x.clone(), v_raw.clone()))
            v = combine_guidance(v_raw, self.cfg, float(self.sigmas[i]))
            x = euler_step(x, v, d_sigmas[i], moving)

        if pose_keep is not None and given is None and bool((pose_keep < 1).any()):
            rest = self.reference if pose_rest is None else pose_rest.to(device).reshape(1, -1).expand(R, -1)
            x = torch.cat((x[:, :n_ctx], pull_pose_to_rest(x[:, n_ctx:], rest, pose_keep)), 1)

        # Cache fill: one pass on the final latents at the history's flow time (0: clean).
        past_x = x
        if self.cfg.history_noise > 0:
            h = self.cfg.history_noise
            noised = (1 - h) * x + h * self._noise(tuple(x.shape)).to(device)
            # a noised context is noised already, a clean one is noised here like the new frames
            past_x = noised if self.cfg.clean_context else torch.where(moving[None, :, None], noised, x)
        _, kv = run(past_x, passes - 1)
        end = n_ctx + kept  # the window's kept frames end here; the overlap after them is dropped
        self._commit(kv, window_kv, frames, end - m.context)
        self.context_latents = (x if self.cfg.clean_context else past_x)[:, end - m.context : end]
        keep, dropped = m.context + m.cond_history, length - end
        self.past_conds = tuple(c[:, max(c.shape[1] - dropped - keep, 0) : c.shape[1] - dropped]
                                for c in conds)
        self.next_frame += kept
        self.block_index += 1
        return x[:, n_ctx:end]

    def _commit(self, kv, window_kv, frames: torch.Tensor, n_commit: int) -> None:
        """Append the keys/values of the window's first n_commit frames (those before the next context)."""
        m = self.mcfg
        keep_self = m.cache_frames if self.rolling else None
        keep_cross = m.cross_window if self.rolling else None

        def append(old, new, lo, hi, keep):
            out = [(k[:, :, lo:hi], v[:, :, lo:hi]) for k, v in new]
            if old is not None:
                out = [
                    (torch.cat((ok, k), 2), torch.cat((ov, v), 2))
                    for (ok, ov), (k, v) in zip(old, out, strict=True)
                ]
            if keep is not None:
                out = [
                    (k[:, :, max(0, k.shape[2] - keep) :], v[:, :, max(0, v.shape[2] - keep) :])
                    for k, v in out
                ]
            return out

        def tail(x: torch.Tensor, keep: int | None) -> torch.Tensor:
            return x if keep is None else x[len(x) - min(keep, len(x)) :]

        lo_cross = max(0, n_commit - m.cross_window)
        self.self_kv = append(self.self_kv, kv, 0, n_commit, keep_self)
        self.self_frames = tail(torch.cat((self.self_frames, frames[:n_commit])), keep_self)
        self.cross_kv = append(self.cross_kv, window_kv, lo_cross, n_commit, keep_cross)
        self.cross_frames = tail(torch.cat((self.cross_frames, frames[lo_cross:n_commit])), keep_cross)


def pad_keys(kv: list[KV] | None, front: int, back: int, like: torch.Tensor, layers: int) -> list[KV]:
    """Surround every layer's keys and values (R, H, P, d) with `front` and `back` zero slots (kv=None: no
    keys yet). Zeros in front are padding that the attention bias masks out; the back is room for the
    window's own keys (`KVBuffer`)."""
    zeros = like.new_zeros(like.shape[0], like.shape[1], front + back, like.shape[3])
    if kv is None:
        return [(zeros.clone(), zeros.clone()) for _ in range(layers)]
    return [
        (torch.cat((zeros[:, :, :front], k, zeros[:, :, front:]), 2),
         torch.cat((zeros[:, :, :front], v, zeros[:, :, front:]), 2))
        for k, v in kv
    ]  # fmt: skip


def _clamped(x: torch.Tensor, start: int, n: int) -> torch.Tensor:
    """Frames start..start+n-1 of x (R, T, C); frames past the end repeat the last one (authors' padding)."""
    if x.shape[1] == 0:
        raise InputError("an input sequence is empty")
    return x[:, torch.arange(start, start + n).clamp(max=x.shape[1] - 1)]


@torch.no_grad()
def generate_offline(
    model: DFoT,
    cfg: SamplerConfig,
    avatar_audio: torch.Tensor,
    user_audio: torch.Tensor,
    user_motion: torch.Tensor,
    reference: torch.Tensor,
    num_frames: int | None = None,
    seed: int = 0,
    noise_fn: NoiseFn | None = None,
    rolling: bool = True,
    progress: bool = False,
) -> torch.Tensor:
    """Run the streaming procedure over whole sequences (R, T, .) -> motion (R, T, motion_dim).

    T defaults to the longer audio; shorter inputs are padded by repeating their last frame."""
    avatar_audio, user_audio, user_motion = (
        torch.as_tensor(a, dtype=torch.float32) for a in (avatar_audio, user_audio, user_motion)
    )
    if avatar_audio.ndim == 2:
        avatar_audio, user_audio, user_motion = avatar_audio[None], user_audio[None], user_motion[None]
    total = num_frames or max(avatar_audio.shape[1], user_audio.shape[1])
    gen = StreamingGenerator(model, cfg, torch.as_tensor(reference), seed, noise_fn, rolling)
    out, produced = [], 0
    with tqdm(total=total, unit="frame", disable=not progress, desc="generate") as bar:
        while produced < total:
            n, needed = gen.frames_needed, gen.condition_frames
            conds = (avatar_audio, user_audio, user_motion)
            block = gen.step(*(_clamped(x, produced, needed) for x in conds))
            out.append(block)
            produced += n
            bar.update(min(n, total - produced + n))
    return torch.cat(out, dim=1)[:, :total]

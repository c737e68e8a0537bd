"""Label-free preference optimization (stage 2): Diffusion-DPO in the flow-matching form, L1 norm.

Winner m^w = the ground-truth motion of a window; loser m^l = motion generated for the same window with
both user conditions dropped (avatar audio only), by the frozen stage-1 model itself or by a separately
trained talking-only model (``loser_form="sample"``, the paper's), or the winner minus the user-driven part
of that model's motion (``"residual"``, see `residual_loser`), or that model's motion for another window's
user (``"mismatched"``, see `mismatched_loser`), or half and half of "sample" and "mismatched"
(``"mixed"``). Winner and loser share the noise m0 and the per-block flow times:

  L_DPO = -log sigmoid(-beta [(e_theta(w) - e_ref(w)) - (e_theta(l) - e_ref(l))]),  e(x) = ||v^x - v(x_t)||_1
  L     = L_DF + lam * L_DPO

``channel_weighting`` chooses the channels e(x) is taken over: all of them (the paper), or the blendshapes
only ("expression", the shipped recipe's: for the head pose the loser differs from the data mostly by
sampling noise, and the all-channel form bought expression with pose; docs/EVALUATION.md, round 3).

Velocity convention. DESIGN.md writes x_t = t m + (1 - t) m0 and v = m - m0; our flow module uses
x_s = (1 - s) m + s eps and v = eps - m (model/flow.py). With s = 1 - t both describe the same path and the
velocities differ only in sign, so ||v - v_theta|| is identical as long as target and prediction use one
convention. We use the model's: target = noise - motion, prediction = the model's output.

Norm scale. e(x) is the per-element *mean* absolute error over the window's frames and motion channels
(not the sum). At beta = 1000 a mean-error difference of 1e-3 between policy and reference already gives a
logit of 1: the sigmoid is informative for the small per-step changes of fine-tuning. With the sum over a
50 x 58 window, the same beta would be ~2900x sharper and saturate after one step (the logits would be
+-hundreds, the gradient vanishing for won pairs and clipped for lost ones). The mean also makes beta
independent of the window length and the motion dimension, so the paper's beta carries to other sizes.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avatar_forcing.audio.features import FEATURE_DIM
from avatar_forcing.config import to_dict
from avatar_forcing.errors import CheckpointError, ConfigError
from avatar_forcing.model.checkpoint import load_checkpoint
from avatar_forcing.model.config import FlowConfig, ModelConfig, SamplerConfig
from avatar_forcing.model.flow import block_sigmas, diffusion_forcing_loss, interpolate, velocity
from avatar_forcing.model.streaming import generate_offline
from avatar_forcing.motion.vector import (
    BLENDSHAPE_SLICE,
    MOTION_DIM,
    NUM_BLENDSHAPES,
    NUM_POSE,
    POSE_SLICE,
    MotionStats,
)
from avatar_forcing.train import distributed
from avatar_forcing.train.config import DPOConfig
from avatar_forcing.train.phrase_ends import after_phrase_ends
from avatar_forcing.train.pretrain import audio_dim, build_trainer, check_config, flow_config
from avatar_forcing.train.trainer import TrainResult

Batch = dict[str, torch.Tensor]
LoserFn = Callable[[Batch, int], torch.Tensor]  # (batch, seed) -> loser motion (B, N, D), normalized
CONDITION_KEYS = ("avatar_audio", "user_audio", "user_motion", "reference")
SEED_RANGE = 2**31 - 1


def channel_weights(motion_dim: int, weighting: str) -> torch.Tensor | None:
    """Weights over motion channels summing to 1 (None = the plain mean). "balanced" gives the
    blendshapes and the head pose half each, "expression" all to the blendshapes; both need the standard
    motion layout."""
    if weighting == "uniform":
        return None
    if motion_dim != MOTION_DIM:
        raise ConfigError(
            f"channel_weighting {weighting!r} needs the {MOTION_DIM}-d motion, got {motion_dim}"
        )
    pose_share = 0.5 if weighting == "balanced" else 0.0
    w = torch.zeros(MOTION_DIM)
    w[BLENDSHAPE_SLICE] = (1 - pose_share) / NUM_BLENDSHAPES
    w[POSE_SLICE] = pose_share / NUM_POSE
    return w


def window_errors(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-window mean absolute error (B,), in float32 (see the module docstring for why the mean);
    with ``weights`` (D,) or per frame (B, N, D), a weighted mean over channels."""
    err = (pred.float() - target.float()).abs()
    if weights is not None:
        weights = weights.to(err.device)
        err = err @ weights if weights.ndim == 1 else (err * weights).sum(-1)
    return err.mean(dim=tuple(range(1, err.ndim)))


def phrase_end_weights(base: torch.Tensor | None, user_audio: torch.Tensor, pose_share: float,
                       motion_dim: int) -> torch.Tensor:
    """Per-frame channel weights (B, N, D): ``base`` (D,) (None: uniform) everywhere, except on the frames
    that follow a user's phrase end, where the head pose takes ``pose_share`` of the weight: there the data's
    listener nods and a loser without the right user does not (`DPOConfig.phrase_end_pose`)."""
    if motion_dim != MOTION_DIM:
        raise ConfigError(f"phrase_end_pose needs the {MOTION_DIM}-d motion, got {motion_dim}")
    base = torch.full((motion_dim,), 1.0 / motion_dim) if base is None else base
    pose = torch.zeros(motion_dim)
    pose[POSE_SLICE] = 1.0 / NUM_POSE
    listening = (1 - pose_share) * base + pose_share * pose
    mask = after_phrase_ends(user_audio).cpu()[..., None]
    return torch.lerp(base.expand(*mask.shape[:2], -1), listening.expand(*mask.shape[:2], -1), mask)


def dpo_loss(
    model: nn.Module,
    ref_model: nn.Module,
    winner: torch.Tensor,
    loser: torch.Tensor,
    conds: Batch,
    beta: float,
    block_size: int,
    flow: FlowConfig,
    generator: torch.Generator | None = None,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """L_DPO for windows of winner/loser motion (B, N, D) under full conditions.

    Stats: preference accuracy (share of pairs where the policy's implicit reward prefers the winner)
    and the implicit reward margin beta * [(e_ref(w) - e_theta(w)) - (e_ref(l) - e_theta(l))]."""
    n, frames = winner.shape[:2]
    sigma = block_sigmas(n, frames, block_size, flow, generator).to(winner.device)
    noise = torch.randn(winner.shape, generator=generator).to(winner.device, winner.dtype)
    # Winner and loser rows go through the network together: one forward for the policy, one for the ref.
    x_t = torch.cat((interpolate(winner, noise, sigma), interpolate(loser, noise, sigma)))
    target = torch.cat((noise - winner, noise - loser))
    sigma2 = torch.cat((sigma, sigma))
    conds2 = {k: torch.cat((conds[k], conds[k])) for k in CONDITION_KEYS}
    if weights is not None and weights.ndim == 3:  # per frame: the same for a window's winner and loser
        weights = torch.cat((weights, weights))
    err = window_errors(velocity(model, x_t, sigma2, conds2), target, weights)
    with torch.no_grad():
        ref_err = window_errors(velocity(ref_model, x_t, sigma2, conds2), target, weights)
    delta = err - ref_err  # how much better (negative) or worse the policy fits than the reference
    margin = -beta * (delta[:n] - delta[n:])  # implicit reward margin, winner minus loser
    loss = -F.logsigmoid(margin).mean()
    stats = {
        "dpo_loss": loss.item(),
        "pref_acc": (margin > 0).float().mean().item(),
        "reward_margin": margin.mean().item(),
        "err_winner": err[:n].mean().item(),
        "err_loser": err[n:].mean().item(),
    }
    return loss, stats


def sampler_loser(model: nn.Module, sampler: SamplerConfig, with_user: bool = False) -> LoserFn:
    """Motion from ``model`` through the causal streaming sampler over the window. The loser: the user
    condition's guidance weight 0, so only v(0,0) and v(a,0) enter (conditioned on avatar audio only);
    ``with_user``: the full guidance, for `residual_loser`."""
    cfg = sampler if with_user else dataclasses.replace(sampler, w_user=0.0)

    def generate(batch: Batch, seed: int) -> torch.Tensor:
        motion = batch["motion"]
        out = generate_offline(
            model,
            cfg,
            batch["avatar_audio"].float(),
            batch["user_audio"].float(),
            batch["user_motion"].float(),
            batch["reference"].float(),
            num_frames=motion.shape[1],
            seed=seed,
        )
        return out.to(motion.device, motion.dtype)

    return generate


def residual_loser(without_user: LoserFn, with_user: LoserFn) -> LoserFn:
    """``loser_form="residual"``: the ground truth minus what the user conditions change in the model's
    own motion (its sample with the user minus its sample without, from the same noise)."""

    def generate(batch: Batch, seed: int) -> torch.Tensor:
        return batch["motion"] - (with_user(batch, seed) - without_user(batch, seed))

    return generate


def mismatched_loser(with_user: LoserFn) -> LoserFn:
    """``loser_form="mismatched"``: the model's own sample with full guidance, but for the user audio and
    motion of the previous window in the batch (rolled by one). Unlike a user-dropped sample it moves as much
    as the model does when listening, so the preference is about *whom* it reacts to, not how much it moves
    (the user-dropped losers move the head 40% less than the data, and DPO answered with generic motion)."""

    def generate(batch: Batch, seed: int) -> torch.Tensor:
        other = {k: batch[k].roll(1, dims=0) for k in ("user_audio", "user_motion")}
        return with_user({**batch, **other}, seed)

    return generate


def mixed_loser(first: LoserFn, second: LoserFn) -> LoserFn:
    """``loser_form="mixed"``: ``first`` makes the losers of the batch's first half, ``second`` the rest."""

    def generate(batch: Batch, seed: int) -> torch.Tensor:
        half = len(batch["motion"]) // 2
        parts = ({k: v[:half] for k, v in batch.items()}, {k: v[half:] for k, v in batch.items()})
        return torch.cat((first(parts[0], seed), second(parts[1], seed)))

    return generate


class DPOObjective:
    """The stage-2 loss ``(model, batch, generator) -> (L_DF + lam * L_DPO, stats)`` for the Trainer.

    A batch may carry precomputed losers under ``"loser"`` (epoch cache); otherwise they are generated
    here, with a seed drawn from ``generator`` so that a resumed run regenerates the same ones."""

    def __init__(
        self,
        ref_model: nn.Module,
        loser_fn: LoserFn,
        cfg: DPOConfig,
        flow: FlowConfig,
        block_size: int,
        motion_dim: int,
    ):
        self.ref_model = ref_model.eval().requires_grad_(False)
        self.loser_fn = loser_fn
        self.cfg, self.flow, self.block_size = cfg, flow, block_size
        self.weights = channel_weights(motion_dim, cfg.channel_weighting)
        self.motion_dim = motion_dim
        # Winner/loser times span the same range as pretraining; no condition dropout in the DPO term.
        self.dpo_flow = dataclasses.replace(flow, p_drop_avatar=0.0, p_drop_user=0.0)

    def __call__(
        self, model: nn.Module, batch: Batch, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict]:
        df, df_stats = diffusion_forcing_loss(model, batch, self.flow, generator)
        loser = batch.get("loser")
        if loser is None:
            seed = int(torch.randint(SEED_RANGE, (), generator=generator))
            loser = self.loser_fn(batch, seed)
        weights = self.weights
        if self.cfg.phrase_end_pose > 0:
            weights = phrase_end_weights(weights, batch["user_audio"], self.cfg.phrase_end_pose,
                                         self.motion_dim)
        dpo, stats = dpo_loss(
            model,
            self.ref_model,
            batch["motion"],
            loser,
            batch,
            self.cfg.beta,
            self.block_size,
            self.dpo_flow,
            generator,
            weights,
        )
        loss = df + self.cfg.lam * dpo
        return loss, {**stats, "df_loss": df_stats["loss"], "loss": loss.item()}


class CachedLosers:
    """``loser_mode="epoch_cache"``: pull ``loser_cache_windows`` windows' worth of batches, generate their
    losers in one go, serve them, repeat. Resumable: the position is (data state at the chunk's start,
    chunk index, batches served), and a chunk is regenerated identically from its seed."""

    def __init__(self, source: Any, loser_fn: LoserFn, windows_per_chunk: int, batch_size: int, seed: int):
        self.source, self.loser_fn, self.seed = source, loser_fn, seed
        self.batches_per_chunk = max(1, -(-windows_per_chunk // batch_size))
        self.chunk, self.offset = 0, 0
        self.chunk_start: dict | None = self._source_state()
        self._it: Iterator[Batch] | None = None

    def _source_state(self) -> dict | None:
        return self.source.state_dict() if hasattr(self.source, "state_dict") else None

    def _next_source(self) -> Batch:
        if self._it is None:
            self._it = iter(self.source)
        try:
            return next(self._it)
        except StopIteration:
            self._it = iter(self.source)
            return next(self._it)

    def _fill(self) -> list[Batch]:
        chunk = []
        for i in range(self.batches_per_chunk):
            batch = self._next_source()
            seed = (self.seed * 1_000_003 + self.chunk * self.batches_per_chunk + i) % SEED_RANGE
            chunk.append({**batch, "loser": self.loser_fn(batch, seed)})
        return chunk

    def __iter__(self) -> Iterator[Batch]:
        while True:
            cached = self._fill()
            for batch in cached[self.offset :]:
                self.offset += 1
                yield batch
            self.chunk, self.offset = self.chunk + 1, 0
            self.chunk_start = self._source_state()

    def state_dict(self) -> dict[str, Any]:
        return {"data": self.chunk_start, "chunk": self.chunk, "offset": self.offset}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("data") is not None and hasattr(self.source, "load_state_dict"):
            self.source.load_state_dict(state["data"])
        self.chunk_start, self.chunk, self.offset = state.get("data"), state["chunk"], state["offset"]
        self._it = None


def check_compatible(mcfg: ModelConfig, source: str, reference: ModelConfig | None = None,
                     feature_dim: int = FEATURE_DIM) -> None:
    """A stage-1 checkpoint must fit the data (and a loser checkpoint must fit the policy)."""
    if reference is not None:
        keys = ("motion_dim", "user_motion_dim", "audio_dim", "window")
        diff = [
            f"{k} {getattr(mcfg, k)} vs {getattr(reference, k)}"
            for k in keys
            if getattr(mcfg, k) != getattr(reference, k)
        ]
        if diff:
            raise CheckpointError(
                f"loser checkpoint {source} does not match the model being fine-tuned: " + ", ".join(diff)
            )
    try:
        check_config(mcfg, feature_dim=feature_dim)
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {source} cannot be fine-tuned on this data: {exc}") from None


def renormalized(loser_fn: LoserFn, source: MotionStats | None, target: MotionStats | None) -> LoserFn:
    """Losers from a model trained with other normalization stats, mapped into the policy's."""
    if (
        source is None
        or target is None
        or (np.array_equal(source.mean, target.mean) and np.array_equal(source.std, target.std))
    ):
        return loser_fn

    def convert(batch: Batch, seed: int) -> torch.Tensor:
        m = loser_fn(batch, seed)
        mean_s, std_s, mean_t, std_t = (
            torch.as_tensor(a, device=m.device) for a in (source.mean, source.std, target.mean, target.std)
        )
        return ((m * std_s + mean_s) - mean_t) / std_t

    return convert


def run_dpo(
    cfg: DPOConfig,
    from_checkpoint: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    resume: bool = False,
    sampler: SamplerConfig = SamplerConfig(),
) -> TrainResult:
    """Stage 2 from a stage-1 checkpoint; under torchrun every rank calls this."""
    cfg.validate()
    policy, mcfg, stats = load_checkpoint(from_checkpoint)
    check_compatible(mcfg, str(from_checkpoint), feature_dim=audio_dim(cfg.train))
    ref = copy.deepcopy(policy).eval().requires_grad_(False)
    loser_model, loser_stats = ref, stats
    if cfg.loser_source == "checkpoint":
        loser_model, loser_cfg, loser_stats = load_checkpoint(cfg.loser_checkpoint)
        check_compatible(loser_cfg, cfg.loser_checkpoint, reference=mcfg, feature_dim=audio_dim(cfg.train))
    dist = distributed.setup(cfg.train.device)
    try:
        ref.to(dist.device)
        loser_model.to(dist.device).eval().requires_grad_(False)
        sampler = dataclasses.replace(sampler, nfe=cfg.loser_nfe, w_audio=cfg.loser_audio_guidance)
        loser_fn = renormalized(sampler_loser(loser_model, sampler), loser_stats, stats)
        with_user = renormalized(sampler_loser(loser_model, sampler, with_user=True), loser_stats, stats)
        if cfg.loser_form == "residual":
            loser_fn = residual_loser(loser_fn, with_user)
        elif cfg.loser_form == "mismatched":
            loser_fn = mismatched_loser(with_user)
        elif cfg.loser_form == "mixed":
            loser_fn = mixed_loser(loser_fn, mismatched_loser(with_user))
        flow = flow_config(cfg.train)
        objective = DPOObjective(ref, loser_fn, cfg, flow, mcfg.block_size, mcfg.motion_dim)
        extra = {"stage": "dpo", "from_checkpoint": str(from_checkpoint), "dpo_config": to_dict(cfg)}
        trainer = build_trainer(
            cfg.train,
            data_dir,
            out_dir,
            dist,
            model=policy.train().requires_grad_(True),
            mcfg=mcfg,
            loss_fn=objective,
            extra=extra,
            stats=stats,
            log_name="DPO",
        )
        if cfg.loser_mode == "epoch_cache":
            trainer.train_data = CachedLosers(
                trainer.train_data,
                loser_fn,
                cfg.loser_cache_windows,
                cfg.train.batch_size,
                cfg.train.seed + dist.rank,
            )
        if resume and trainer.resume() and dist.is_main:
            print(f"resumed from {Path(out_dir) / 'latest'} at step {trainer.step}")
        return trainer.fit()
    finally:
        distributed.teardown()

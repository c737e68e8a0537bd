"""Training configs: diffusion-forcing pretraining (`TrainConfig`) and preference fine-tuning (`DPOConfig`).

Batch sizes are per process: the effective batch is ``batch_size * grad_accum * world_size``.
Every number the training loops use lives here, so a run is fully described by its JSON config.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from avatar_forcing.errors import ConfigError
from avatar_forcing.model.config import FlowConfig
from avatar_forcing.motion.vector import MOTION_NAMES

USER_CONDITIONS = ("normal", "drop_always")
PRECISIONS = ("auto", "bf16", "fp32")
FLOW_LOSSES = ("l1", "l2")
LOSER_SOURCES = ("self", "checkpoint")
LOSER_MODES = ("on_the_fly", "epoch_cache")
LOSER_FORMS = ("sample", "residual", "mismatched", "mixed")
CHANNEL_WEIGHTINGS = ("uniform", "balanced", "expression")


@dataclass
class TrainConfig:
    model_preset: str = "tiny"  # a ModelConfig preset (model/config.py)
    # Fields of the preset to change for this run, e.g. {"cond_window": 25}; the checkpoint records the
    # resulting ModelConfig, so the run loads without it.
    model_changes: dict[str, Any] = field(default_factory=dict)
    steps: int = 20_000  # optimizer steps
    batch_size: int = 8  # windows per process per micro-batch (paper: 8)
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 1e-4  # paper: Adam, lr 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    warmup_steps: int = 1000  # linear warm-up from 0 to lr, then constant
    decay_steps: int = 0  # then a linear decay to 0 over the last this many steps (0: none, the paper)
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping
    ema_decay: float = 0.999  # EMA of weights; the saved model is the EMA
    precision: str = "auto"  # auto: bf16 autocast on CUDA that supports it, fp32 elsewhere
    # "normal": avatar audio and user (audio + motion) dropped for CFG (avatar audio at the flow config's
    # rate, the user at p_drop_user); "drop_always": user condition always dropped (the ablation model (a)).
    user_condition: str = "normal"
    p_drop_user: float = FlowConfig.p_drop_user
    flow_loss: str = FlowConfig.loss  # "l1" (the paper) | "l2" (the conditional mean: FlowConfig.loss)
    # Corrupt each training window's user side as a webcam and a microphone would (data/augment.py).
    augment_user: bool = False
    # Hear both voices through the session's noise suppression (audio/denoise.py); recorded in the
    # checkpoint's feature_config, so that a session repeats it.
    denoise_audio: bool = False
    # Append each voice's recent loudness to its features (audio/voice_context.py), so that the model knows
    # how long a silence has lasted; recorded in the feature_config like the noise suppression.
    voice_context: bool = False
    # Place this fraction of the windows around a user's smile beginning (data/loader.py, LoaderConfig).
    onset_fraction: float = 0.0
    # Motion channels that count more in the flow loss, e.g. {"mouthSmileLeft": 4.0} (FlowConfig).
    loss_weights: dict[str, float] = field(default_factory=dict)
    # Windows trained with the streaming sampler's nearly clean past (FlowConfig.streamed_fraction).
    streamed_fraction: float = 0.0
    # Frames at a window's start that count only as context (FlowConfig.burn_in), and the share of windows
    # placed at a conversation's start, which count whole (LoaderConfig.start_fraction).
    burn_in: int = 0
    start_fraction: float = 0.0
    val_every: int = 250  # steps between validation passes (0: only at the end)
    val_windows: int = 64  # fixed held-out windows per validation pass
    val_seed: int = 1234  # seeds the validation noise and flow times, so the curve is comparable
    log_every: int = 10
    tensorboard: bool = True  # JSONL metrics are always written
    ckpt_every: int = 1000  # periodic checkpoint (kept as step_XXXXXXX); "latest" is refreshed too
    keep_periodic: bool = True
    seed: int = 0
    num_workers: int = 0  # DataLoader worker processes per rank
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    def validate(self) -> None:
        """Raise ConfigError on values no training run can use."""
        positive = ("steps", "batch_size", "grad_accum", "val_windows", "log_every", "ckpt_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")
        if min(self.warmup_steps, self.decay_steps, self.grad_clip, self.val_every, self.num_workers) < 0:
            raise ConfigError(
                "train.warmup_steps, decay_steps, grad_clip, val_every and num_workers must be >= 0"
            )
        if not 0.0 <= self.p_drop_user < 1.0:
            raise ConfigError(f"train.p_drop_user must be in [0, 1), got {self.p_drop_user}")
        for name, weight in self.loss_weights.items():
            if name not in MOTION_NAMES or not weight > 0:
                raise ConfigError(f"train.loss_weights: {name!r} must be a motion channel with a weight > 0")
        if not 0.0 <= self.streamed_fraction <= 1.0:
            raise ConfigError(f"train.streamed_fraction must be in [0, 1], got {self.streamed_fraction}")
        if not 0.0 <= self.start_fraction <= 1.0:
            raise ConfigError(f"train.start_fraction must be in [0, 1], got {self.start_fraction}")
        if self.burn_in < 0:
            raise ConfigError(f"train.burn_in must be >= 0, got {self.burn_in}")
        if not 0.0 <= self.onset_fraction <= 1.0:
            raise ConfigError(f"train.onset_fraction must be in [0, 1], got {self.onset_fraction}")
        if self.user_condition not in USER_CONDITIONS:
            raise ConfigError(
                f"train.user_condition must be one of {USER_CONDITIONS}, got {self.user_condition!r}"
            )
        if self.flow_loss not in FLOW_LOSSES:
            raise ConfigError(f"train.flow_loss must be one of {FLOW_LOSSES}, got {self.flow_loss!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"train.precision must be one of {PRECISIONS}, got {self.precision!r}")


@dataclass
class DPOConfig:
    """Stage 2: L = L_DF + lam * L_DPO, starting from a stage-1 checkpoint (which is also v_ref)."""

    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            steps=5000, lr=1e-5, warmup_steps=100, val_every=250, ckpt_every=500
        )
    )
    beta: float = 1000.0  # scales the per-element mean L1 differences (see dpo.py for why mean)
    lam: float = 0.1  # weight of L_DPO against L_DF
    # Losers: "self" = the frozen stage-1 model with both user conditions dropped; "checkpoint" = a
    # separately trained talking-only model (the paper's choice), read from loser_checkpoint.
    loser_source: str = "self"
    loser_checkpoint: str = ""
    loser_mode: str = "on_the_fly"  # or "epoch_cache": generate once per pass over the data
    # "sample": the loser is the user-dropped sample itself (the paper). "residual": the winner minus what
    # the user conditions change in the loser model's own motion (its sample with the user minus its sample
    # without, one noise), so winner and loser differ only in the user-driven part of the motion.
    # "mismatched": the loser model's own sample with the full guidance, but with the user conditions of
    # another window of the batch: reactions as lively as the model's, timed to the wrong person.
    # "mixed": the first half of each batch gets "sample" losers (no reaction), the second "mismatched"
    # ones (the wrong reaction).
    loser_form: str = "sample"
    # How e(x) averages over motion channels: "uniform" (the paper: every channel alike, so the 6 pose
    # channels weigh 6/58 against the 52 blendshapes), "balanced" (expression and pose half each) or
    # "expression" (the blendshapes only: the preference leaves the head pose to L_DF).
    channel_weighting: str = "uniform"
    # The head pose's share of e(x) on the frames that follow one of the user's phrase ends (found in the
    # user's audio: train/phrase_ends.py), where the data's listener nods and a loser without the right user
    # does not; the other frames keep `channel_weighting`. 0: off.
    phrase_end_pose: float = 0.0
    loser_cache_windows: int = 512  # windows per cached "epoch" (epoch_cache mode)
    loser_nfe: int = 10  # Euler steps of the causal sampler
    loser_audio_guidance: float = 2.0  # w_a for the loser (w_u is irrelevant: user is dropped)

    def validate(self) -> None:
        self.train.validate()
        if self.beta <= 0 or self.lam < 0:
            raise ConfigError(f"dpo.beta must be > 0 and dpo.lam >= 0, got {self.beta}, {self.lam}")
        if self.loser_source not in LOSER_SOURCES:
            raise ConfigError(f"dpo.loser_source must be one of {LOSER_SOURCES}, got {self.loser_source!r}")
        if self.loser_source == "checkpoint" and not self.loser_checkpoint:
            raise ConfigError(
                "dpo.loser_source 'checkpoint' needs dpo.loser_checkpoint (a talking-only model)"
            )
        if self.loser_form not in LOSER_FORMS:
            raise ConfigError(f"dpo.loser_form must be one of {LOSER_FORMS}, got {self.loser_form!r}")
        min_batch = {"mismatched": 2, "mixed": 4}.get(self.loser_form, 1)
        if self.train.batch_size < min_batch:
            raise ConfigError(
                f"dpo.loser_form {self.loser_form!r} takes the user of another window: "
                f"batch_size >= {min_batch}"
            )
        if not 0.0 <= self.phrase_end_pose <= 1.0:
            raise ConfigError(f"dpo.phrase_end_pose must be in [0, 1], got {self.phrase_end_pose}")
        if self.channel_weighting not in CHANNEL_WEIGHTINGS:
            raise ConfigError(
                f"dpo.channel_weighting must be one of {CHANNEL_WEIGHTINGS}, got {self.channel_weighting!r}"
            )
        if self.loser_mode not in LOSER_MODES:
            raise ConfigError(f"dpo.loser_mode must be one of {LOSER_MODES}, got {self.loser_mode!r}")
        if self.loser_nfe < 1 or self.loser_cache_windows < 1:
            raise ConfigError("dpo.loser_nfe and dpo.loser_cache_windows must be >= 1")


TRAIN_PRESETS: dict[str, TrainConfig] = {
    # CPU-sized: learns the synthetic corpus in well under an hour on 2 cores.
    "tiny": TrainConfig(
        model_preset="tiny",
        steps=3000,
        batch_size=16,
        lr=3e-4,
        warmup_steps=200,
        ema_decay=0.995,
        val_every=200,
        val_windows=64,
        ckpt_every=500,
    ),
    # The paper's recipe: Adam, lr 1e-4, batch 8 (per GPU here), bf16 on GPU.
    "paper": TrainConfig(
        model_preset="paper",
        steps=200_000,
        batch_size=8,
        lr=1e-4,
        warmup_steps=1000,
        ema_decay=0.9999,
        val_every=2000,
        val_windows=256,
        ckpt_every=5000,
    ),
}


def train_preset(name: str) -> TrainConfig:
    if name not in TRAIN_PRESETS:
        raise ConfigError(f"unknown training preset {name!r}; choose from {sorted(TRAIN_PRESETS)}")
    return copy.deepcopy(TRAIN_PRESETS[name])


DPO_PRESETS: dict[str, DPOConfig] = {
    "tiny": DPOConfig(
        train=dataclasses.replace(
            TRAIN_PRESETS["tiny"], steps=500, lr=3e-5, warmup_steps=50, val_every=100, ckpt_every=250
        )
    ),
    # Paper: 5k fine-tuning steps.
    "paper": DPOConfig(
        train=dataclasses.replace(
            TRAIN_PRESETS["paper"], steps=5000, lr=1e-5, warmup_steps=100, val_every=500, ckpt_every=1000
        )
    ),
}


def dpo_preset(name: str) -> DPOConfig:
    if name not in DPO_PRESETS:
        raise ConfigError(f"unknown DPO preset {name!r}; choose from {sorted(DPO_PRESETS)}")
    return copy.deepcopy(DPO_PRESETS[name])

"""Stage 1: diffusion-forcing pretraining of the DFoT on a conversation corpus.

Assembles the pieces for `Trainer`: the model from its preset, the corpus's train stream (split across
ranks and workers) and fixed held-out windows, the flow-matching loss with the configured condition
dropout, and a checkpoint writer whose JSON config carries everything needed to rebuild the model
(model config, motion stats, feature config, train config, step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avatar_forcing import config as config_io
from avatar_forcing.audio.denoise import DenoiseConfig
from avatar_forcing.audio.features import FEATURE_DIM, LogMelConfig
from avatar_forcing.audio.voice_context import VoiceContextConfig
from avatar_forcing.data.augment import UserAugmentConfig
from avatar_forcing.data.loader import HeldoutWindows, LoaderConfig, TrainLoader
from avatar_forcing.errors import ConfigError, InputError
from avatar_forcing.model.config import FlowConfig, ModelConfig, model_preset
from avatar_forcing.model.dfot import DFoT
from avatar_forcing.model.flow import diffusion_forcing_loss
from avatar_forcing.motion.vector import MOTION_DIM, MotionStats
from avatar_forcing.train import distributed
from avatar_forcing.train.config import TrainConfig
from avatar_forcing.train.distributed import DistInfo
from avatar_forcing.train.trainer import Batch, LossFn, SaveModelFn, Trainer, TrainResult


def flow_config(tcfg: TrainConfig) -> FlowConfig:
    """ "drop_always" trains the talking-only ablation: the user condition is never seen."""
    return FlowConfig(p_drop_user=1.0 if tcfg.user_condition == "drop_always" else tcfg.p_drop_user,
                      loss=tcfg.flow_loss, channel_weights=tuple(sorted(tcfg.loss_weights.items())),
                      streamed_fraction=tcfg.streamed_fraction, burn_in=tcfg.burn_in)


def df_loss(flow: FlowConfig) -> LossFn:
    def loss(model: nn.Module, batch: Batch, generator: torch.Generator):
        return diffusion_forcing_loss(model, batch, flow, generator)

    return loss


def check_config(mcfg: ModelConfig, motion_dim: int = MOTION_DIM, feature_dim: int = FEATURE_DIM) -> None:
    """Sizes must agree with each other and with the data before any training starts."""
    mcfg.validate()  # window a multiple of B, heads dividing the width, ...
    if mcfg.motion_dim != motion_dim or mcfg.user_motion_dim != motion_dim:
        raise ConfigError(
            f"the model's motion dimension ({mcfg.motion_dim}, user {mcfg.user_motion_dim}) "
            f"differs from the data's ({motion_dim})"
        )
    if mcfg.audio_dim != feature_dim:
        raise ConfigError(
            f"the model's audio feature dimension ({mcfg.audio_dim}) differs from the data's ({feature_dim})"
        )


def voice_context(tcfg: TrainConfig) -> VoiceContextConfig | None:
    return VoiceContextConfig() if tcfg.voice_context else None


def audio_dim(tcfg: TrainConfig) -> int:
    """Audio numbers per frame the model takes: log-mel, plus the voice context when trained with it."""
    context = voice_context(tcfg)
    return FEATURE_DIM + (context.dim if context is not None else 0)


def feature_config(data_dir: str | Path, denoise: DenoiseConfig | None = None,
                   context: VoiceContextConfig | None = None) -> dict[str, Any]:
    """The audio features the corpus was made with (log-mel unless its index says otherwise), the noise
    suppression the model hears them through and the voice context appended to them (a session repeats
    both: stream/features.py)."""
    from avatar_forcing.data.shards import Corpus

    info = Corpus(data_dir).index.get("info", {})
    features = info.get("feature_config") or {"kind": "log_mel", **config_io.to_dict(LogMelConfig())}
    return {**features, "denoise": config_io.to_dict(denoise) if denoise is not None else None,
            "voice_context": config_io.to_dict(context) if context is not None else None}


def validation_batches(
    data_dir: str | Path, window: int, count: int, batch_size: int, stats: MotionStats | None = None,
    denoise: DenoiseConfig | None = None,
    context: VoiceContextConfig | None = None,
) -> list[Batch]:
    """``count`` held-out windows spread evenly over the held-out split (fixed across runs)."""
    try:
        heldout = HeldoutWindows(data_dir, window, denoise=denoise, voice_context=context)
    except InputError:
        return []  # a corpus without a held-out split trains without validation
    if stats is not None:
        heldout.corpus.stats = stats
    picks = np.unique(np.linspace(0, len(heldout) - 1, min(count, len(heldout))).round().astype(int))
    items = [heldout[int(i)] for i in picks]
    return [
        {k: torch.stack([it[k] for it in items[i : i + batch_size]]) for k in items[0]}
        for i in range(0, len(items), batch_size)
    ]


def checkpoint_writer(mcfg: ModelConfig, stats: MotionStats, extra: dict[str, Any]) -> SaveModelFn:
    from avatar_forcing.model.checkpoint import save_checkpoint

    def write(directory: Path, module: nn.Module, info: dict[str, Any]) -> None:
        save_checkpoint(directory, module, mcfg, stats, {**extra, **info})

    return write


def build_trainer(
    tcfg: TrainConfig,
    data_dir: str | Path,
    out_dir: str | Path,
    dist: DistInfo,
    model: nn.Module | None = None,
    mcfg: ModelConfig | None = None,
    loss_fn: LossFn | None = None,
    extra: dict[str, Any] | None = None,
    stats: MotionStats | None = None,
    log_name: str = "diffusion forcing",
) -> Trainer:
    """Model (from the preset unless given), data, loss and checkpoint writer -> a ready Trainer.

    ``stats``: normalize the data with these (a fine-tuned checkpoint's) instead of the corpus's own."""
    context, features = voice_context(tcfg), audio_dim(tcfg)
    sized = {"audio_dim": features} if context is not None else {}
    mcfg = mcfg or model_preset(tcfg.model_preset, **{**sized, **tcfg.model_changes})
    check_config(mcfg, feature_dim=features)
    denoise = DenoiseConfig() if tcfg.denoise_audio else None
    loader_cfg = LoaderConfig(window=mcfg.window, batch_size=tcfg.batch_size, seed=tcfg.seed,
                              augment=UserAugmentConfig() if tcfg.augment_user else None, denoise=denoise,
                              voice_context=context, onset_fraction=tcfg.onset_fraction,
                              start_fraction=tcfg.start_fraction)
    train_data = TrainLoader(data_dir, loader_cfg, dist.rank, dist.world_size, tcfg.num_workers)
    if stats is not None:
        train_data.dataset.corpus.stats = stats
    val = (
        validation_batches(data_dir, mcfg.window, tcfg.val_windows, tcfg.batch_size, stats, denoise, context)
        if dist.is_main
        else []
    )
    if model is None:
        torch.manual_seed(tcfg.seed)  # every rank builds the same initial weights
        model = DFoT(mcfg)
    flow = flow_config(tcfg)
    extra = {
        "feature_config": feature_config(data_dir, denoise, context),
        "flow_config": config_io.to_dict(flow),
        **(extra or {}),
    }
    save = checkpoint_writer(mcfg, train_data.stats, extra)
    return Trainer(
        tcfg,
        model,
        loss_fn or df_loss(flow),
        train_data,
        out_dir,
        save,
        val_batches=val,
        val_loss_fn=df_loss(flow),
        dist=dist,
        log_name=log_name,
    )


def pretrain(
    tcfg: TrainConfig, data_dir: str | Path, out_dir: str | Path, resume: bool = False
) -> TrainResult:
    """Run (or continue) stage 1; under torchrun every rank calls this."""
    tcfg.validate()
    dist = distributed.setup(tcfg.device)
    try:
        trainer = build_trainer(tcfg, data_dir, out_dir, dist)
        if resume and trainer.resume() and dist.is_main:
            print(f"resumed from {Path(out_dir) / 'latest'} at step {trainer.step}")
        return trainer.fit()
    finally:
        distributed.teardown()

"""Shared pieces of the training tests: a seeded random corpus on disk and a micro DFoT config."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avatar_forcing.audio.features import FEATURE_DIM
from avatar_forcing.data.shards import Conversation, Participant, write_index, write_shard
from avatar_forcing.model.config import ModelConfig, model_preset
from avatar_forcing.motion.vector import MOTION_DIM

# 58-d motion and 320-d audio like the data, but a few thousand parameters.
MICRO_DATA = dict(width=32, depth=1, heads=2, cond_dim=16, time_embed_dim=32, window=20)


def micro_config(**changes) -> ModelConfig:
    return model_preset("tiny", **(MICRO_DATA | changes))


def make_corpus(root: Path, train: int = 4, heldout: int = 1, frames: int = 60, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)

    def participant() -> Participant:
        t = np.linspace(0, 6, frames, dtype=np.float32)[:, None]
        motion = 0.3 * np.sin(t * rng.uniform(0.5, 2, MOTION_DIM)) + 0.05 * rng.standard_normal(
            (frames, MOTION_DIM)
        )
        return Participant(
            motion.astype(np.float32),
            rng.standard_normal((frames, FEATURE_DIM)).astype(np.float32),
            np.ones(frames, bool),
            np.zeros(MOTION_DIM, np.float32),
        )

    for split, count in (("train", train), ("heldout", heldout)):
        convs = [Conversation(f"{split}{i}", split, [participant(), participant()]) for i in range(count)]
        write_shard(root, f"{split}-0", convs)
    write_index(root)
    return root

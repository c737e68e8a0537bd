"""Shared micro model for the DFoT tests."""

import torch

from avatar_forcing.model.config import model_preset
from avatar_forcing.model.dfot import DFoT

MICRO = dict(
    width=32, depth=2, heads=2, cond_dim=16, motion_dim=6, user_motion_dim=5, audio_dim=8, user_channels=()
)


def micro_model(seed: int = 0, **changes) -> DFoT:
    """Random, non-degenerate weights (the default init zeroes the output layer)."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = DFoT(model_preset("tiny", **(MICRO | changes))).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)
    return model


def inputs(model: DFoT, rows: int, frames: int, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    c = model.cfg
    return {
        "motion": torch.randn(rows, frames, c.motion_dim, generator=g),
        "avatar_audio": torch.randn(rows, frames, c.audio_dim, generator=g),
        "user_audio": torch.randn(rows, frames, c.audio_dim, generator=g),
        "user_motion": torch.randn(rows, frames, c.user_motion_dim, generator=g),
        "reference": torch.randn(rows, c.motion_dim, generator=g),
    }

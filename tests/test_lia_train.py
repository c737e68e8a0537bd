"""The LIA auto-encoder overfits a handful of frames on the CPU with the reconstruction loss."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from avatar_forcing.motion.lia.backend import frames_to_tensor
from avatar_forcing.motion.lia.generator import LIA_PRESETS, Generator
from avatar_forcing.motion.lia.train import LiaTrainConfig, make_optimizer, train_reconstruction, train_step

MICRO = replace(LIA_PRESETS["tiny"], style_dim=32, max_channels=8)


@pytest.mark.slow
def test_overfits_a_handful_of_frames(astronaut):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    small = cv2.resize(astronaut, (96, 96), interpolation=cv2.INTER_AREA)
    x = frames_to_tensor([small[s : s + 64, s : s + 64] for s in (10, 18)], MICRO.size)  # two "video frames"
    source, target = x[[0, 0, 1, 1]], x[[0, 1, 0, 1]]  # every (source, target) pair
    generator = Generator(MICRO)
    cfg = LiaTrainConfig(lr=1e-2)
    optimizer = make_optimizer(generator, cfg)
    losses = [train_step(generator, optimizer, source, target, cfg) for _ in range(30)]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.6 * losses[0]
    assert losses[-1] < 0.95 * min(losses[:5])  # keeps improving after the first quick drop


def test_train_reconstruction_runs_on_clips(astronaut):
    torch.manual_seed(0)
    clip = np.stack([cv2.resize(astronaut, (64, 64))] * 2)
    losses = train_reconstruction(
        Generator(MICRO), [clip], LiaTrainConfig(steps=2, batch_size=1, progress=False)
    )
    assert len(losses) == 2 and all(np.isfinite(losses))

"""Reconstruction training of the LIA auto-encoder on video frames (LIA's self-supervised objective).

A step draws (source, target) frame pairs from the same clip and re-renders the source with the target's
motion: x_hat = D(E(src) + Q fc(E(tgt)), feats(src)). The loss is L1(x_hat, tgt) plus, optionally, L1 on an
average-pooled pyramid (cheap low-frequency emphasis; no perceptual network is needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from avatar_forcing.errors import InputError
from avatar_forcing.motion.lia.backend import frames_to_tensor
from avatar_forcing.motion.lia.generator import Generator


@dataclass(frozen=True)
class LiaTrainConfig:
    steps: int = 1000
    batch_size: int = 4
    lr: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.99)
    pyramid_levels: int = 2  # extra L1 terms at 1/2, 1/4 ... resolution; 0 disables
    pyramid_weight: float = 1.0
    seed: int = 0
    progress: bool = True


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, cfg: LiaTrainConfig) -> torch.Tensor:
    loss = F.l1_loss(pred, target)
    for _ in range(cfg.pyramid_levels):
        pred, target = F.avg_pool2d(pred, 2), F.avg_pool2d(target, 2)
        loss = loss + cfg.pyramid_weight * F.l1_loss(pred, target)
    return loss


def make_optimizer(generator: Generator, cfg: LiaTrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=cfg.betas)


def train_step(
    generator: Generator,
    optimizer: torch.optim.Optimizer,
    source: torch.Tensor,
    target: torch.Tensor,
    cfg: LiaTrainConfig,
) -> float:
    """One reconstruction step on (B, 3, S, S) tensors in [-1, 1]; returns the loss."""
    loss = reconstruction_loss(generator(source, target), target, cfg)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def train_reconstruction(
    generator: Generator,
    clips: Sequence[np.ndarray],
    cfg: LiaTrainConfig = LiaTrainConfig(),
    device: str = "cpu",
) -> list[float]:
    """Train on clips (each (T, H, W, 3) uint8, T >= 1); returns the loss per step."""
    if not clips or any(len(c) == 0 for c in clips):
        raise InputError("LIA training needs at least one clip with at least one frame")
    data = [frames_to_tensor(list(c), generator.cfg.size).to(device) for c in clips]
    generator.to(device).train()
    optimizer = make_optimizer(generator, cfg)
    rng = np.random.default_rng(cfg.seed)
    losses = []
    steps = range(cfg.steps)
    if cfg.progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="lia", unit="step")
    for _ in steps:
        clip_ids = rng.integers(len(data), size=cfg.batch_size)
        src = torch.stack([data[c][rng.integers(len(data[c]))] for c in clip_ids])
        tgt = torch.stack([data[c][rng.integers(len(data[c]))] for c in clip_ids])
        losses.append(train_step(generator, optimizer, src, tgt, cfg))
        if cfg.progress:
            steps.set_postfix(loss=f"{losses[-1]:.4f}")
    generator.eval()
    return losses

"""A smile and where it begins: one definition for training, which places windows around the user's
smiles so that the answer to one is learned (data/loader.py), and for evaluation, which judges whether the
avatar answers them (eval/metrics.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar_forcing.motion.vector import FPS, idx

SMILE_CHANNELS = [idx("mouthSmileLeft"), idx("mouthSmileRight")]


def smile(motion: np.ndarray) -> np.ndarray:
    """(T, 58) motion -> (T,) smile weight: the mean of the two mouth corners."""
    return np.asarray(motion)[:, SMILE_CHANNELS].mean(1)


@dataclass(frozen=True)
class SmileOnsetConfig:
    """A smile begins where the smile weight rises through `onset` and goes on to reach `min_level` within
    `level_s`: a smile someone would notice, not a flicker of the tracker."""

    onset: float = 0.15
    min_level: float = 0.3
    level_s: float = 1.0


def smile_onsets(smile: np.ndarray, cfg: SmileOnsetConfig = SmileOnsetConfig(), fps: int = FPS
                 ) -> list[tuple[int, float]]:
    """(frame, level) of every smile beginning in ``smile`` (finite values), level = its peak within
    ``cfg.level_s``."""
    level_n = round(cfg.level_s * fps)
    rises = np.flatnonzero((smile[1:] >= cfg.onset) & (smile[:-1] < cfg.onset)) + 1
    peaks = ((int(t), float(smile[t:t + level_n].max())) for t in rises)
    return [(t, level) for t, level in peaks if level >= cfg.min_level]

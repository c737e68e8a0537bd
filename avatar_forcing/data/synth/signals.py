"""Small signal builders shared by the talking and listening motion: envelopes, bumps, smooth noise."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d


def frame_times(frames: int, fps: float) -> np.ndarray:
    """Centre time (seconds) of every motion frame."""
    return (np.arange(frames) + 0.5) / fps


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def envelope(t: np.ndarray, onset: float, end: float, rise: float, fall: float) -> np.ndarray:
    """0 before ``onset``, smooth rise over ``rise`` s, 1 until ``end``, smooth fall over ``fall`` s."""
    up = smoothstep((t - onset) / max(rise, 1e-3))
    down = 1.0 - smoothstep((t - end) / max(fall, 1e-3))
    return up * down


def nod(t: np.ndarray, onset: float, duration: float, cycles: int = 1) -> np.ndarray:
    """Head-down bumps (0..1..0) starting at ``onset``: one per cycle, over ``duration`` s each."""
    phase = (t - onset) / duration
    inside = (phase >= 0) & (phase <= cycles)
    decay = np.where(phase >= 1, 0.6, 1.0)  # a second nod is smaller
    return np.where(inside, np.sin(np.pi * np.mod(phase, 1.0)) ** 2 * decay, 0.0)


def smooth_noise(
    rng: np.random.Generator, frames: int, fps: float, seconds: float, channels: int = 1
) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation and a correlation time of ``seconds``."""
    sigma = max(seconds * fps, 0.5)
    pad = int(3 * sigma)
    x = gaussian_filter1d(rng.standard_normal((frames + 2 * pad, channels)), sigma, axis=0)[
        pad : pad + frames
    ]
    return x / max(x.std(), 1e-6)


def lowpass(x: np.ndarray, fps: float, seconds: float) -> np.ndarray:
    """Gaussian low-pass along time (axis 0)."""
    return gaussian_filter1d(x, max(seconds * fps, 1e-3), axis=0, mode="nearest")


def delay(x: np.ndarray, fps: float, seconds: float) -> np.ndarray:
    """Shift later in time by ``seconds``, holding the first value."""
    n = min(int(round(seconds * fps)), len(x))
    if n <= 0:
        return x.copy()
    return np.concatenate([np.repeat(x[:1], n, axis=0), x[:-n]], axis=0)

"""Motion of a speaking face beyond the mouth: prosody-driven head motion, blinks, smiles, laughter.

The head follows the voice the way people's do: loudness peaks (stressed syllables) dip the head in
small nods, a rising pitch lifts it and tilts it slightly, and a slow drift keeps it alive.
"""

from __future__ import annotations

import numpy as np

from avatar_forcing.data.synth.config import BlinkConfig, TalkingConfig
from avatar_forcing.data.synth.signals import envelope, frame_times, lowpass, smooth_noise

ROLL_PER_PITCH = 0.4  # head tilt that comes with a pitch-driven head raise
LOUDNESS_FLOOR_DB = -60.0
VOICING_THRESHOLD = 0.4  # normalized autocorrelation peak of a voiced frame


def prosody(
    pcm: np.ndarray, frames: int, samples_per_frame: int, sample_rate: int, cfg: TalkingConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame loudness in [0, 1], f0 in octaves relative to the speaker's median, and a voiced flag."""
    x = np.zeros(frames * samples_per_frame)  # float64: float32 FFTs vary with memory alignment
    n = min(len(pcm), len(x))
    x[:n] = pcm[:n]
    x = x.reshape(frames, samples_per_frame)
    rms = np.sqrt((x**2).mean(1) + 1e-12)
    loud = np.clip(1.0 - 20 * np.log10(rms) / LOUDNESS_FLOOR_DB, 0.0, 1.0)
    # f0 by autocorrelation of each 40 ms frame (long enough for two periods at 70 Hz)
    nfft = 1 << int(np.ceil(np.log2(2 * samples_per_frame)))
    spec = np.fft.rfft(x - x.mean(1, keepdims=True), nfft, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, nfft, axis=1)[:, :samples_per_frame]
    lo, hi = int(sample_rate / cfg.f0_range[1]), int(sample_rate / cfg.f0_range[0])
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    peak = ac[np.arange(frames), lag] / np.maximum(ac[:, 0], 1e-9)
    voiced = (peak > VOICING_THRESHOLD) & (loud > 0.3)
    f0 = sample_rate / lag
    octaves = np.zeros(frames)
    if voiced.any():
        octaves[voiced] = np.log2(f0[voiced] / np.median(f0[voiced]))
    return loud.astype(np.float32), octaves.astype(np.float32), voiced


def talking_head(
    loud: np.ndarray,
    octaves: np.ndarray,
    voiced: np.ndarray,
    speaking: np.ndarray,
    fps: float,
    rng: np.random.Generator,
    cfg: TalkingConfig,
    gain: float,
) -> np.ndarray:
    """Head pose offsets (frames, 3): pitch, yaw, roll in radians while speaking."""
    frames = len(loud)
    emphasis = lowpass(loud - lowpass(loud, fps, 0.5), fps, 0.06)  # syllable-rate loudness peaks
    f0 = lowpass(np.where(voiced, octaves, 0.0), fps, 0.15)
    drift = smooth_noise(rng, frames, fps, cfg.head_drift_seconds, 3) * cfg.head_drift
    pose = np.zeros((frames, 3), np.float32)
    pose[:, 0] = cfg.head_energy_gain * emphasis - cfg.head_pitch_gain * f0 + 0.5 * drift[:, 0]
    pose[:, 1] = drift[:, 1]
    pose[:, 2] = ROLL_PER_PITCH * cfg.head_pitch_gain * f0 + 0.5 * drift[:, 2]
    return pose * (gain * speaking[:, None])


def talking_brows(loud: np.ndarray, octaves: np.ndarray, voiced: np.ndarray, speaking: np.ndarray,
                  fps: float, cfg: TalkingConfig, gain: float) -> np.ndarray:
    """Brow raise (frames,) in [0, 1] while speaking: brows rise with pitch accents and stressed syllables
    (eyebrow movements accompany F0 rises: Cave et al. 1996; Granstrom & House 2005)."""
    emphasis = np.maximum(lowpass(loud - lowpass(loud, fps, 0.5), fps, 0.06), 0.0)
    rise = np.maximum(lowpass(np.where(voiced, octaves, 0.0), fps, 0.15), 0.0)
    raise_ = cfg.brow_f0_gain * rise + cfg.brow_emphasis_gain * emphasis
    return np.clip(lowpass(raise_, fps, cfg.brow_seconds) * gain * speaking, 0.0, 1.0)


def blinks(
    frames: int, fps: float, rng: np.random.Generator, cfg: BlinkConfig, rate_per_minute: float
) -> tuple[np.ndarray, list[float]]:
    """Blink weights (frames,) in [0, 1] and blink times: a renewal process at ``rate_per_minute``.

    Each blink closes over a third of its duration, stays closed a third and opens over a third.
    """
    t = frame_times(frames, fps)
    w = np.zeros(frames, np.float32)
    times: list[float] = []
    mean_gap = 60.0 / rate_per_minute
    now = rng.uniform(0, mean_gap)
    while now < frames / fps:
        dur = rng.uniform(*cfg.duration)
        third = dur / 3
        shape = np.clip(np.minimum((t - now) / third, (now + dur - t) / third), 0.0, 1.0)
        w = np.maximum(w, shape * rng.uniform(0.85, 1.0))
        times.append(float(now))
        now += cfg.min_interval + rng.exponential(mean_gap - cfg.min_interval)
    return w, times


def smile_curve(t: np.ndarray, onset: float, end: float, amplitude: float) -> np.ndarray:
    """A smile that builds over 0.3 s, holds until ``end`` and fades over 0.6 s."""
    return amplitude * envelope(t, onset, end, 0.3, 0.6)


def laugh_motion(
    t: np.ndarray, start: float, end: float, pulses: list[float], cfg: TalkingConfig, gain: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Laughter: (smile, extra jaw, head pitch), each (T,). The head bobs with each "ha", tilts back."""
    env = envelope(t, start - 0.1, end, 0.15, 0.5)
    bob = np.zeros_like(t)
    for p in pulses:  # a short head-down dip on each laugh pulse
        bob += np.exp(-0.5 * ((t - p - 0.05) / 0.06) ** 2)
    jaw = cfg.laugh_jaw * env
    pitch = gain * (cfg.laugh_bob * bob - cfg.laugh_tilt_back * env)
    return env, jaw, pitch

"""Causal noise suppression on log-mel features: a recording's background out of its pauses.

The corpus speaks eSpeak into digital silence, so a pause is -100 dB; a real recording's pauses hold a
room's noise or a hum 20-40 dB above that, which the model heard as speech (a mouth held half open
through the pauses, and no phrase end to nod at). Each mel band's noise floor is tracked as the minimum
of its smoothed power over the last `window_s` (minimum statistics, Martin 2001) and subtracted from the
power (spectral subtraction, Berouti et al. 1979: over-subtraction `over`, and a spectral floor `floor_db`
below the noise so that the residual does not warble). Clean speech is left alone: its floor is the
silence between words. A stream starts from silence, so nothing is subtracted before it has heard any.

Works on 10 ms hops, vectorised over a chunk; a stream and a whole file give identical numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import minimum_filter1d
from scipy.signal import lfilter

from avatar_forcing.audio.features import LogMelConfig, db_to_features, features_to_db


@dataclass(frozen=True)
class DenoiseConfig:
    window_s: float = 1.5      # minimum-statistics window: longer than a word, shorter than a pause's wait
    smooth_s: float = 0.03     # power smoothing before the minimum (one hop's minimum is too low)
    over: float = 2.0          # over-subtraction: the tracked minimum underestimates the noise's mean
    floor_db: float = -30.0    # where only noise is, it is left this far below itself


class LogMelDenoiser:
    """Stateful: push (n, hops x n_mels) log-mel frames in time order, get the denoised frames."""

    def __init__(self, cfg: DenoiseConfig = DenoiseConfig(), mel: LogMelConfig = LogMelConfig()):
        self.cfg, self.mel = cfg, mel
        hop_s = mel.hop / mel.sample_rate
        self._window = max(2, round(cfg.window_s / hop_s))
        self._alpha = float(np.exp(-hop_s / cfg.smooth_s))
        self._gain_floor = 10.0 ** (cfg.floor_db / 10.0)
        self.reset()

    def reset(self) -> None:
        silence = self.mel.log_floor
        self._tail = np.full((self._window - 1, self.mel.n_mels), silence)  # smoothed power, last hops
        self._state = np.full((1, self.mel.n_mels), self._alpha * silence)  # lfilter's, from silence

    def push(self, features: np.ndarray) -> np.ndarray:
        mel, n = self.mel, len(features)
        if n == 0:
            return np.empty((0, mel.dim), np.float32)
        power = 10.0 ** (features_to_db(features.reshape(-1, mel.n_mels).astype(np.float64), mel) / 10.0)
        smoothed, self._state = lfilter([1.0 - self._alpha], [1.0, -self._alpha], power, axis=0,
                                        zi=self._state)
        history = np.concatenate([self._tail, smoothed])
        noise = minimum_filter1d(history, self._window, axis=0, origin=(self._window - 1) // 2)
        noise = noise[len(self._tail):]  # each hop's minimum over itself and the window before it
        self._tail = history[len(history) - len(self._tail):]
        gain = np.maximum(1.0 - self.cfg.over * noise / power, self._gain_floor)
        return db_to_features(10.0 * np.log10(np.maximum(power * gain, mel.log_floor)), mel).reshape(n, -1)


def denoise_preroll(cfg: DenoiseConfig, mel: LogMelConfig = LogMelConfig()) -> int:
    """Frames of audio before a window after which its noise estimate no longer depends on the start."""
    return int(np.ceil((cfg.window_s + 10 * cfg.smooth_s) * mel.sample_rate / mel.frame_samples))


def denoise(features: np.ndarray, cfg: DenoiseConfig = DenoiseConfig()) -> np.ndarray:
    """Offline `LogMelDenoiser`: a whole sequence of log-mel frames from a fresh state."""
    return LogMelDenoiser(cfg).push(features)

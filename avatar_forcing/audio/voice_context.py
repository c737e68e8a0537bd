"""How loud each voice has been over the last moments: a causal summary appended to every log-mel frame.

A listener nods 0.2-0.6 s after the speaker's phrase ends and rests when nobody has spoken for a second
or more. Both cues are about the audio's recent past, which a log-mel frame (25 ms) does not carry, and the
tiny model does not recover it from its 2 s training windows: a frame near a window's start sees no past
at all. Trained on frame-local audio, the shipped model nodded 24 times a minute in the corpus' silences,
where its listeners nod once (docs/EVALUATION.md, round 11). The paper's wav2vec2 features carry seconds
of context; this is the same idea in four numbers per voice.

Per frame: its loudness (the mean of its log-mel values, -1 in silence), then the mean loudness over the
last h frames for each horizon h, with silence before the stream's start. Offline (`with_voice_context`)
and streaming (`VoiceContext.push` in any chunking) give the same numbers bit for bit: every frame's means
are taken over a fixed-size row of the same values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SILENCE = -1.0  # a log-mel frame of digital silence (audio/features.py)


@dataclass(frozen=True)
class VoiceContextConfig:
    horizons: tuple[int, ...] = (5, 12, 25, 50)  # frames: 0.2, 0.5, 1 and 2 s at 25 fps

    @property
    def dim(self) -> int:
        return len(self.horizons)

    @property
    def preroll(self) -> int:
        """Frames before a window that its context depends on."""
        return max(self.horizons) - 1


class VoiceContext:
    """Streaming: log-mel frames (n, D) -> (n, D + len(horizons)) with each frame's context appended."""

    def __init__(self, cfg: VoiceContextConfig = VoiceContextConfig()):
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        self._past = np.full(self.cfg.preroll, SILENCE)

    def push(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, np.float32)
        if len(features) == 0:
            return np.zeros((0, features.shape[1] + self.cfg.dim), np.float32)
        loudness = features.astype(np.float64).mean(axis=1)
        series = np.concatenate((self._past, loudness))
        span = max(self.cfg.horizons)
        rows = np.lib.stride_tricks.sliding_window_view(series, span).copy()  # (n, span), oldest first
        context = np.stack([rows[:, span - h:].mean(axis=1) for h in self.cfg.horizons], axis=1)
        self._past = series[len(series) - self.cfg.preroll:]
        return np.concatenate((features, context.astype(np.float32)), axis=1)


def with_voice_context(features: np.ndarray, cfg: VoiceContextConfig = VoiceContextConfig()) -> np.ndarray:
    """Offline: a whole sequence of log-mel frames, with silence before it."""
    return VoiceContext(cfg).push(features)

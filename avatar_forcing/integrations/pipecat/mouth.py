"""Closing the avatar's mouth at a barge-in, on frames that were generated while it still spoke.

The engine works one block (0.4 s) ahead of what is shown, and the output plays `playout_delay_s`
behind real time, so when the user interrupts, up to a second of frames with the old speech's lip
motion is already generated. Their voice is dropped at once; their mouth is closed here: the speech
channels (jaw and mouth shape, not the smile) are blended towards the portrait's rest and the frames are
rendered again. Frames generated after the barge-in come from silence and close the mouth by themselves;
the override lets go of them over a few frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar_forcing.motion.vector import MOTION_DIM, MOTION_NAMES

# Channels that carry speech; the smile, frown and dimples are expression and are kept.
SPEECH_CHANNELS = np.array([i for i, name in enumerate(MOTION_NAMES)
                            if name.startswith("jaw") or (name.startswith("mouth") and not any(
                                k in name for k in ("Smile", "Frown", "Dimple")))], np.int64)


@dataclass
class MouthClosure:
    """One barge-in: frames from `first_frame` on close the mouth; the frames up to `speech_until`
    were generated from the interrupted speech; the override fades out over `release` frames after it."""

    first_frame: int
    speech_until: int
    ramp: int = 2
    release: int = 5

    def weight(self, index: int) -> float:
        """0 = the model's motion, 1 = mouth fully at rest."""
        if index < self.first_frame:
            return 0.0
        ramp_in = (index - self.first_frame + 1) / self.ramp
        ramp_out = (self.speech_until + self.release - index) / self.release
        return float(np.clip(min(ramp_in, ramp_out), 0.0, 1.0))

    @property
    def end(self) -> int:
        """First frame the override no longer touches."""
        return self.speech_until + self.release


def close_mouth(motion: np.ndarray, rest: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, 58) motion with its speech channels blended towards `rest` (58,) by `weights` (n,)."""
    out = np.array(motion, np.float32, copy=True)
    if out.shape[-1] != MOTION_DIM:  # another backend (LIA latents) has no named channels
        return out
    w = np.asarray(weights, np.float32)[:, None]
    out[:, SPEECH_CHANNELS] = (1 - w) * out[:, SPEECH_CHANNELS] + w * rest[SPEECH_CHANNELS]
    return out

"""Is a voice on, per 25 fps frame, from the log-mel features the model hears (no labels, causal).

A frame is voiced when the mean of its log-mel values is above `VOICE_LEVEL` (features: -1 is silence, speech
sits at about -0.7 to 0; audio/features.py). Used to find where a user's phrase ends in training
(train/phrase_ends.py) and where nobody has spoken for a while in a session (stream/settle.py).
"""

from __future__ import annotations

import numpy as np

from avatar_forcing.audio.features import FEATURE_DIM

VOICE_LEVEL = -0.6  # in feature units: above about -80 dB of mean mel power


def voiced(features: np.ndarray, level: float = VOICE_LEVEL) -> np.ndarray:
    """(..., F) features (log-mel first, anything appended after) -> (...) bool: a voice is on."""
    return np.asarray(features)[..., :FEATURE_DIM].mean(-1) > level

"""The head settles when nobody has spoken for a while: the corpus' lull rule, kept by the session.

In the corpus a listener nods 0.2-0.6 s after a phrase ends, and once nobody has spoken for a while both
faces rest (docs/DATA.md, `lull`): of 610 nods in 12 held-out conversations, 607 start within 1.5 s of a
voice. The models do not learn that rest. Left alone they nod 16-27 times a minute in such silences and let
the head drift (2 deg of roll held for seconds), whatever was tried in training (docs/EVALUATION.md, rounds
11-15). So a session can keep the rule itself: once neither voice has been heard for `after_s`, every
generated frame's head pose is pulled back to the rest with time constant `time_constant_s`, inside the
model's loop (the next block continues from the settled head). A voice ends it at once. Expressions are never
touched, so a user's silent smile is still answered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avatar_forcing.audio.voice_activity import voiced
from avatar_forcing.motion.vector import FPS


@dataclass(frozen=True)
class SettleConfig:
    after_s: float = 2.0  # silence of both voices before the head settles (the corpus: no nod starts later)
    time_constant_s: float = 0.25  # how fast it settles: 1/e of the head's offset is left after this


class Settle:
    """Per frame of a block, how much of the head's offset from the rest to keep (1 = untouched)."""

    def __init__(self, cfg: SettleConfig = SettleConfig()):
        self.cfg = cfg
        self.after_frames = round(cfg.after_s * FPS)
        self.keep_per_frame = math.exp(-1.0 / (cfg.time_constant_s * FPS))
        self.reset()

    def reset(self) -> None:
        self.silent = self.after_frames  # nobody has spoken yet: the avatar starts at rest

    def keep(self, avatar_feats: np.ndarray, user_feats: np.ndarray, kept: int) -> np.ndarray:
        """(n,) factors for a block's n frames from their features (n, F); the first `kept` of them are
        committed, so the silence count moves on by those only (the rest are sampled again next block)."""
        voice = voiced(avatar_feats) | voiced(user_feats)
        silent, runs = self.silent, np.empty(len(voice), int)
        for t, on in enumerate(voice):
            silent = 0 if on else silent + 1
            runs[t] = silent
            if t + 1 == kept:
                self.silent = silent
        return np.where(runs >= self.after_frames, self.keep_per_frame, 1.0)

"""The head settles when nobody has spoken for a while: the corpus' lull rule, kept by the session.

In the corpus a listener nods 0.2-0.6 s after a phrase ends, and once nobody has spoken for a while both
faces rest (docs/DATA.md, `lull`): of 610 nods in 12 held-out conversations, 607 start within 1.5 s of a
voice. The models do not learn that rest. Left alone they nod 16-27 times a minute in such silences and let
the head drift (2 deg of roll held for seconds), whatever was tried in training (docs/EVALUATION.md, rounds
11-15). So a session can keep the rule itself: once neither voice has been heard and the user's face has
rested for `after_s`, every generated frame's head pose is pulled back to the rest with time constant
`time_constant_s`, inside the model's loop (the next block continues from the settled head). A voice, a
moving head or a smile of the user's ends it at once. Expressions are never touched.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from avatar_forcing.audio.voice_activity import voiced
from avatar_forcing.motion.smile_onsets import SmileOnsetConfig
from avatar_forcing.motion.vector import FPS, idx

HEAD = [idx("pitch"), idx("yaw"), idx("roll")]
SMILE = [idx("mouthSmileLeft"), idx("mouthSmileRight")]


@dataclass(frozen=True)
class SettleConfig:
    after_s: float = 2.0  # silence of both voices before the head settles (the corpus: no nod starts later)
    time_constant_s: float = 0.25  # how fast it settles: 1/e of the head's offset is left after this
    # A user's head at rest: the std of each angle over the last after_s stays below this (the corpus' users
    # in its silences: median 0.65 deg; real users who move while silent: 2-6 deg).
    still_head_deg: float = 1.0
    # A user smiling this much above their rest is reacting, not resting (a smile's onset, eval reactions).
    smile_level: float = SmileOnsetConfig.onset


class Settle:
    """Per frame of a block, how much of the head's offset from the rest to keep (1 = untouched)."""

    def __init__(self, cfg: SettleConfig = SettleConfig()):
        self.cfg = cfg
        self.after_frames = round(cfg.after_s * FPS)
        self.keep_per_frame = math.exp(-1.0 / (cfg.time_constant_s * FPS))
        self.reset()

    def reset(self) -> None:
        self.quiet = self.after_frames  # nobody there yet: the avatar starts at rest
        self.user: deque[np.ndarray] = deque(maxlen=self.after_frames)  # (head deg, smile) of recent frames

    def _user_rests(self) -> bool:
        if not self.user:
            return True
        recent = np.stack(self.user)
        return bool(recent[:, :3].std(0).max() <= self.cfg.still_head_deg
                    and recent[:, 3].max() < self.cfg.smile_level)

    def keep(self, avatar_feats: np.ndarray, user_feats: np.ndarray, user_motion: np.ndarray,
             kept: int) -> np.ndarray:
        """(n,) factors for a block's n frames from their audio features (n, F) and the user's relative
        motion (n, 58; zeros where there is none). The first `kept` frames are committed: the state moves
        on by those only (the rest are heard again in the next block)."""
        voice = voiced(avatar_feats) | voiced(user_feats)
        user = np.column_stack([np.degrees(user_motion[:, HEAD]), user_motion[:, SMILE].mean(1)])
        committed = (self.quiet, self.user.copy())
        runs = np.empty(len(voice), int)
        for t, on in enumerate(voice):
            self.user.append(user[t])
            self.quiet = 0 if on or not self._user_rests() else self.quiet + 1
            runs[t] = self.quiet
            if t + 1 == kept:
                committed = (self.quiet, self.user.copy())
        self.quiet, self.user = committed
        return np.where(runs >= self.after_frames, self.keep_per_frame, 1.0)

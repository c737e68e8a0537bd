"""The head settles when nobody has spoken for a while: the corpus' lull rule, kept by the session.

In the corpus a listener nods 0.2-0.6 s after a phrase ends, and once nobody has spoken for a while both
faces rest (docs/DATA.md, `lull`): of 610 nods in 12 held-out conversations, 607 start within 1.5 s of a
voice. The models do not learn that rest. Left alone they nod 13-27 times a minute in such silences and let
the head drift (2 deg of roll held for seconds), whatever was tried in training (docs/EVALUATION.md, rounds
11-15). So a session can keep the rule itself: once neither voice has been heard and the user's head has
rested for `after_s`, every generated frame's head pose is pulled back to the rest with time constant
`time_constant_s`, inside the model's loop (the next block continues from the settled head). A voice or a
moving head of the user's ends it at once. Expressions are never touched.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from avatar_forcing.audio.voice_activity import voiced
from avatar_forcing.motion.vector import FPS, idx

HEAD = [idx("pitch"), idx("yaw"), idx("roll")]


@dataclass(frozen=True)
class SettleConfig:
    after_s: float = 1.5  # silence before the head settles (the corpus: 607 of 610 nods start within 1.5 s)
    time_constant_s: float = 0.25  # how fast it settles: 1/e of the head's offset is left after this
    # The user's head rests when, over the last user_window_s, the std of each angle stays below
    # still_head_deg (the corpus' users in its silences, over 2 s: median 0.65 deg; real users who move
    # while silent: 2-6 deg). The window is short so that a user's speaking head does not hold the settle
    # off for long after their voice stops; a nod still shows. A smile does not count: in the corpus'
    # silences a listener mirrors a quiet smile with its head at rest (docs/DATA.md, `quiet smile`).
    user_window_s: float = 0.5
    still_head_deg: float = 1.0


class Settle:
    """Per frame of a block, how much of the head's offset from the rest to keep (1 = untouched)."""

    def __init__(self, cfg: SettleConfig = SettleConfig()):
        self.cfg = cfg
        self.after_frames = round(cfg.after_s * FPS)
        self.keep_per_frame = math.exp(-1.0 / (cfg.time_constant_s * FPS))
        self.reset()

    def reset(self) -> None:
        self.quiet = self.after_frames  # nobody there yet: the avatar starts at rest
        # the user's head angles (deg) of recent frames
        self.user: deque[np.ndarray] = deque(maxlen=round(self.cfg.user_window_s * FPS))

    def _user_rests(self) -> bool:
        return not self.user or bool(np.stack(self.user).std(0).max() <= self.cfg.still_head_deg)

    def keep(self, avatar_feats: np.ndarray, user_feats: np.ndarray, user_motion: np.ndarray,
             kept: int) -> np.ndarray:
        """(n,) factors for a block's n frames from their audio features (n, F) and the user's relative
        motion (n, 58; zeros where there is none). The first `kept` frames are committed: the state moves
        on by those only (the rest are heard again in the next block)."""
        voice = voiced(avatar_feats) | voiced(user_feats)
        user = np.degrees(user_motion[:, HEAD])
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

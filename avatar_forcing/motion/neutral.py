"""The resting face: the one neutral that the data, the model and the renderer share.

A face's *rest* is how it looks relaxed, neither speaking nor reacting. Every motion vector in this
project (corpus, model input and output, renderer input) is **relative** to a rest: ``motion - rest``.
So zero is "as at rest" for every face, whatever its framing, head tilt or resting expression:

* a **portrait**'s rest is its own tracked motion: relative zero renders the photo unchanged, and nothing
  absolute about the photo (where the face sits, how big it is, a resting smile or squint) reaches the
  model;
* a **user**'s rest is estimated online from the webcam (``OnlineRest``): per blendshape a low quantile
  of the recent frames (a face rests more than it smiles, blinks or speaks, so the low end of each
  channel is its relaxed value), per pose channel the median (where the head usually is);
* a **recorded** person (real data preparation, evaluation) gets the same estimate over the whole clip
  (``rest_of_track``);
* the **avatar**'s head rests where the portrait's does: the model's generated head pose drifts and carries
  a per-model bias at rest (v11, silent, seeds 0-4: median pitch -0.030 to +0.005 rad), so a live session
  renders it relative to its own running rest, the same online estimate (``OnlineRest.relative_pose``).
  Its expressions are rendered as generated: they are events around a relaxed face, and the model's rest
  is relaxed there (mean |blendshape| <= 0.012 in silence).

Relative blendshapes lie in [-1, 1] (less smile than at rest is negative); relative rotations are in
radians, translations in face widths and scale as a log ratio, all against the rest.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from avatar_forcing.motion.vector import BLENDSHAPE_SLICE, MOTION_DIM, NUM_BLENDSHAPES, POSE_SLICE


@dataclass(frozen=True)
class RestConfig:
    blendshape_quantile: float = 0.2  # the relaxed end of each expression channel
    pose_quantile: float = 0.5  # the usual head position
    window_s: float = 20.0  # online estimate: how much of the recent past it looks at
    min_frames: int = 5  # before this many frames, the first frame is the rest
    refresh_frames: int = 5  # online estimate: recomputed every this many frames
    fps: float = 25.0


def rest_of_track(absolute: np.ndarray, cfg: RestConfig = RestConfig()) -> np.ndarray:
    """(T, 58) absolute tracked motion -> (58,) its rest (the whole clip's estimate)."""
    values = np.asarray(absolute, np.float64)
    if values.ndim != 2 or values.shape[1] != MOTION_DIM or len(values) == 0:
        raise ValueError(f"rest_of_track needs a (frames, {MOTION_DIM}) array, got {values.shape}")
    rest = np.empty(MOTION_DIM)
    rest[BLENDSHAPE_SLICE] = np.quantile(values[:, BLENDSHAPE_SLICE], cfg.blendshape_quantile, axis=0)
    rest[POSE_SLICE] = np.quantile(values[:, POSE_SLICE], cfg.pose_quantile, axis=0)
    return rest.astype(np.float32)


def to_relative(absolute: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Absolute tracked motion (..., 58) -> motion relative to ``rest`` (58,)."""
    return (np.asarray(absolute, np.float32) - np.asarray(rest, np.float32)).astype(np.float32)


class OnlineRest:
    """A live face's rest, estimated from the frames seen so far (a rolling window of ``window_s``)."""

    def __init__(self, cfg: RestConfig = RestConfig()):
        self.cfg = cfg
        self._frames: deque[np.ndarray] = deque(maxlen=max(int(cfg.window_s * cfg.fps), cfg.min_frames))
        self._rest: np.ndarray | None = None
        self._since_refresh = 0

    def reset(self) -> None:
        self._frames.clear()
        self._rest, self._since_refresh = None, 0

    @property
    def rest(self) -> np.ndarray | None:
        return self._rest

    def update(self, absolute: np.ndarray) -> np.ndarray:
        """Add one tracked frame (58,) and return it relative to the current rest estimate."""
        frame = np.array(absolute, np.float32).reshape(MOTION_DIM)  # a copy: callers may reuse theirs
        self._frames.append(frame)
        self._since_refresh += 1
        if self._rest is None:
            self._rest = frame.copy()
        elif len(self._frames) >= self.cfg.min_frames and self._since_refresh >= self.cfg.refresh_frames:
            self._rest = rest_of_track(np.stack(self._frames), self.cfg)
            self._since_refresh = 0
        return to_relative(frame, self._rest)

    def relative_pose(self, motion: np.ndarray) -> np.ndarray:
        """(n, 58) frames -> a copy whose head pose is relative to the running rest (each frame added in
        turn, so the estimate is causal); the expression channels are left as they are."""
        out = np.array(motion, np.float32, copy=True).reshape(-1, MOTION_DIM)
        for frame in out:
            frame[POSE_SLICE] = self.update(frame)[POSE_SLICE]
        return out


# Valid ranges of relative motion (the renderer and the model clip to them).
_POSE_LIMIT = np.array([0.6, 0.8, 0.6, 0.5, 0.5, 0.5], np.float32)
RELATIVE_LOW = np.concatenate([-np.ones(NUM_BLENDSHAPES, np.float32), -_POSE_LIMIT])
RELATIVE_HIGH = -RELATIVE_LOW


def clip_relative(motion: np.ndarray) -> np.ndarray:
    return np.clip(motion, RELATIVE_LOW, RELATIVE_HIGH).astype(np.float32)

"""What the service needs from an AvatarSession beyond push_* / step, in one place."""

from __future__ import annotations

import numpy as np


def silence_pending_avatar_audio(session) -> float:
    """Seconds of queued avatar speech turned to silence (what a barge-in must not lip-sync)."""
    return float(session.silence_avatar_audio())


def render_motion(session, motion: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Frames for (n, D) motion, at (height, width) `shape` (the session's own output frames)."""
    frames = session.render(motion)
    if frames.shape[1:3] != tuple(shape):
        import cv2

        frames = np.stack([cv2.resize(f, (shape[1], shape[0]), interpolation=cv2.INTER_AREA) for f in frames])
    return frames


def frame_size(session) -> tuple[int, int]:
    """(height, width) of the frames `step` returns."""
    shape = session.frame_shape
    if shape is None:
        raise ValueError("the session has no portrait to render (SessionOptions(render=False))")
    return int(shape[0]), int(shape[1])

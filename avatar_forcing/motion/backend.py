"""The motion space behind one interface, so the DFoT, the session, the trainer and the evaluation never
care which one is in use:

* ``RigBackend`` (default, 58-d): MediaPipe tracking in, portrait warping out (tracker.py, renderer.py);
* ``LiaBackend`` (the paper's, 512-d): a LIA-style motion auto-encoder (motion/lia/backend.py).

A backend maps a portrait to a `PortraitIdentity` (its private state plus the reference motion the DFoT
is conditioned on), user frames to motion rows, and motion rows back to frames. Motion is float32
(T, motion_dim) in the backend's own units; normalization (MotionStats) stays with the DFoT checkpoint.
Frames are RGB uint8 (H, W, 3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from avatar_forcing.errors import InputError


@dataclass
class PortraitIdentity:
    """What a backend keeps about one portrait."""

    reference_motion: np.ndarray  # (motion_dim,) float32: the DFoT's reference (rig: the rest, zero)
    size: tuple[int, int]  # (height, width) of the decoded frames
    state: Any  # backend-private (a PortraitRenderer, or the LIA appearance latent + feature maps)


@runtime_checkable
class FrameEncoder(Protocol):
    """Streaming user-frame encoder (one per user stream; may keep tracking state between frames)."""

    def encode(self, rgb: np.ndarray, timestamp_ms: int) -> np.ndarray | None:
        """(motion_dim,) for this frame (rig: absolute tracker units; the session makes them relative to
        the user's rest), or None when it holds no usable face."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class MotionBackend(Protocol):
    name: str
    motion_dim: int

    def encode_portrait(self, rgb: np.ndarray) -> PortraitIdentity: ...

    def encode_frames(self, frames: Iterable[np.ndarray]) -> np.ndarray:
        """Frames at 25 fps -> (T, motion_dim) in the model's units (rig: relative to the clip's rest);
        frames without a face are filled from their neighbours; raises NoFaceError when no frame has one."""
        ...

    def frame_encoder(self) -> FrameEncoder: ...

    def decode(self, identity: PortraitIdentity, motion: np.ndarray) -> np.ndarray:
        """(T, motion_dim) -> frames (T, height, width, 3) uint8."""
        ...


def check_motion(motion: np.ndarray, dim: int, what: str = "motion") -> np.ndarray:
    """A finite (T, dim) array as float32 (user-facing check: raises InputError)."""
    arr = np.asarray(motion)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise InputError(f"{what} must have shape (frames, {dim}), got {np.shape(motion)}")
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
        raise InputError(f"{what} must hold finite numbers")
    return arr.astype(np.float32, copy=False)


def check_frame(rgb: np.ndarray, what: str = "frame") -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise InputError(f"{what} must be an RGB uint8 array (H, W, 3), got {arr.shape} {arr.dtype}")
    return arr


# --- the explicit rig ------------------------------------------------------------------------------------


class _TrackerEncoder:
    def __init__(self):
        from avatar_forcing.motion.tracker import FaceTracker

        self.tracker = FaceTracker(mode="video")

    def encode(self, rgb: np.ndarray, timestamp_ms: int) -> np.ndarray | None:
        observation = self.tracker.track_frame(check_frame(rgb), timestamp_ms)
        return None if observation is None else observation.motion

    def close(self) -> None:
        self.tracker.close()


@dataclass(frozen=True)
class RigBackendConfig:
    max_side: int | None = None  # frames keep the portrait's framing; longer side at most this


class RigBackend:
    """58-d blendshapes + head pose relative to a resting face (motion/neutral.py): FaceTracker (MediaPipe)
    in, PortraitRenderer (warping the photo in place) out."""

    name = "rig"

    def __init__(self, cfg: RigBackendConfig = RigBackendConfig()):
        from avatar_forcing.motion.vector import MOTION_DIM

        self.cfg = cfg
        self.motion_dim = MOTION_DIM

    def encode_portrait(self, rgb: np.ndarray) -> PortraitIdentity:
        from avatar_forcing.motion.renderer import PortraitRenderer, RenderConfig

        renderer = PortraitRenderer(check_frame(rgb, "portrait"), RenderConfig(max_side=self.cfg.max_side))
        # The photo's identity is its pixels; its own resting state is the renderer's zero, so nothing
        # absolute about it (framing, resting expression) reaches the model.
        return PortraitIdentity(np.zeros(self.motion_dim, np.float32), renderer.size, renderer)

    def encode_frames(self, frames: Iterable[np.ndarray]) -> np.ndarray:
        from avatar_forcing.motion.neutral import rest_of_track, to_relative
        from avatar_forcing.motion.tracker import track_video

        values = track_video(check_frame(f) for f in frames).values
        return to_relative(values, rest_of_track(values))

    def frame_encoder(self) -> FrameEncoder:
        return _TrackerEncoder()

    def decode(self, identity: PortraitIdentity, motion: np.ndarray) -> np.ndarray:
        return identity.state.render_many(check_motion(motion, self.motion_dim))


def backend_from_record(record: dict | None, checkpoint_dir=None) -> MotionBackend:
    """The backend a checkpoint's config asks for: no record or {"backend": "rig"} -> RigBackend;
    {"backend": "lia", "file": ...} (written by convert-official) -> LiaBackend."""
    from avatar_forcing.errors import CheckpointError

    kind = (record or {}).get("backend", "rig")
    if kind == "rig":
        return RigBackend()
    if kind == "lia":
        from pathlib import Path

        from avatar_forcing.motion.lia.backend import LiaBackend

        path = Path(record["file"])
        if checkpoint_dir is not None and not path.is_absolute():
            path = Path(checkpoint_dir) / path
        return LiaBackend.from_checkpoint(path)
    raise CheckpointError(f"unknown motion backend {kind!r} (expected 'rig' or 'lia')")

"""The per-frame motion vector: 52 blendshapes in MediaPipe's order plus a 6-DoF head pose.

One vector describes both the avatar (generated) and the user (tracked), so the user-motion
condition and the generated motion share one space. Left/Right are the subject's own sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatar_forcing.errors import InputError

# MediaPipe FaceLandmarker's blendshape categories, in its output order. Slot 0 is MediaPipe's
# `_neutral`; the other 51 are ARKit names (ARKit's `tongueOut` has no MediaPipe counterpart).
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)
# Pose, as measured by motion/tracker.py (its docstring is the full definition):
# pitch/yaw/roll in radians of R = Ry(yaw) @ Rx(pitch) @ Rz(-roll) in camera axes (x right, y up,
# z to viewer), after removing 30% of the off-axis view-ray rotation: positive pitch = head down,
# positive yaw = subject turns to their own left (image right, unmirrored), positive roll = top of
# the head tilts to the subject's left shoulder (clockwise in the image). tx/ty = face centre (mean
# of the 478 landmarks) minus image centre, in face widths (image right/down positive). log_scale =
# log(face width / (0.5 * image width)), face width = 3-D distance of mesh landmarks 234-454.
POSE_NAMES: tuple[str, ...] = ("pitch", "yaw", "roll", "tx", "ty", "log_scale")
MOTION_NAMES: tuple[str, ...] = BLENDSHAPE_NAMES + POSE_NAMES

NUM_BLENDSHAPES = len(BLENDSHAPE_NAMES)  # 52
NUM_POSE = len(POSE_NAMES)  # 6
MOTION_DIM = len(MOTION_NAMES)  # 58
FPS = 25
BLENDSHAPE_SLICE = slice(0, NUM_BLENDSHAPES)
POSE_SLICE = slice(NUM_BLENDSHAPES, MOTION_DIM)

_POSE_LOW = np.array([-0.8, -1.0, -0.8, -1.0, -1.0, -1.0], np.float32)
_POSE_HIGH = -_POSE_LOW
RANGE_LOW = np.concatenate([np.zeros(NUM_BLENDSHAPES, np.float32), _POSE_LOW])
RANGE_HIGH = np.concatenate([np.ones(NUM_BLENDSHAPES, np.float32), _POSE_HIGH])

_INDEX = {name: i for i, name in enumerate(MOTION_NAMES)}
TRACK_FORMAT_VERSION = 2  # 2: values relative to the face's rest (motion/neutral.py)


def idx(name: str) -> int:
    """Column of a named motion channel, e.g. ``idx("jawOpen")``."""
    try:
        return _INDEX[name]
    except KeyError:
        raise KeyError(f"unknown motion channel {name!r}") from None


def neutral(frames: int = 1) -> np.ndarray:
    """A neutral motion track: all blendshapes 0 and the identity pose."""
    return np.zeros((frames, MOTION_DIM), np.float32)


def clip_to_range(motion: np.ndarray) -> np.ndarray:
    return np.clip(motion, RANGE_LOW, RANGE_HIGH).astype(np.float32)


@dataclass
class MotionTrack:
    """A motion sequence at a fixed frame rate; ``mask[t]`` is False where the frame was filled in.
    Tracked motion is absolute (tracker units) until ``relative_to_rest`` makes it relative; motion files
    hold relative motion and the rest it is relative to."""

    values: np.ndarray  # (T, MOTION_DIM) float32
    fps: float = FPS
    mask: np.ndarray | None = None  # (T,) bool, True = observed
    rest: np.ndarray | None = None  # (MOTION_DIM,) the absolute rest the values are relative to

    def __post_init__(self) -> None:
        self.values = validate_motion(self.values)
        if self.mask is None:
            self.mask = np.ones(len(self.values), bool)
        self.mask = np.asarray(self.mask, bool)
        if self.mask.shape != (len(self.values),):
            raise InputError(f"motion mask has shape {self.mask.shape}, expected ({len(self.values)},)")

    def __len__(self) -> int:
        return len(self.values)

    def channel(self, name: str) -> np.ndarray:
        return self.values[:, idx(name)]

    def relative_to_rest(self) -> MotionTrack:
        """Absolute tracked motion -> the same track relative to its rest (estimated over the clip)."""
        from avatar_forcing.motion.neutral import rest_of_track, to_relative

        if self.rest is not None:
            return self
        observed = self.values[self.mask] if self.mask.any() else self.values
        rest = rest_of_track(observed)
        return MotionTrack(to_relative(self.values, rest), self.fps, self.mask, rest)


def validate_motion(values: np.ndarray, what: str = "motion") -> np.ndarray:
    """Check a (T, 58) array of finite numbers and return it as float32."""
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.shape[1] != MOTION_DIM:
        raise InputError(f"{what} must have shape (frames, {MOTION_DIM}), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{what} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise InputError(f"{what} contains NaN or inf")
    return arr


def save_motion(path: str | Path, track: MotionTrack) -> None:
    """Write a track as ``.npz`` with its fps, channel names and observation mask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    if track.rest is None:
        raise InputError("motion files hold motion relative to a rest: call relative_to_rest() first")
    np.savez(tmp, motion=track.values, mask=track.mask, fps=np.float32(track.fps), rest=track.rest,
             names=np.array(MOTION_NAMES), version=np.int32(TRACK_FORMAT_VERSION))
    tmp.replace(path)


def load_motion(path: str | Path) -> MotionTrack:
    """Read a track written by :func:`save_motion`; a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"motion file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "motion" not in data:
                raise InputError(f"{path} is not a motion track (no 'motion' array)")
            values = data["motion"]
            mask = data["mask"] if "mask" in data else None
            fps = float(data["fps"]) if "fps" in data else FPS
            names = tuple(str(n) for n in data["names"]) if "names" in data else MOTION_NAMES
            rest = data["rest"] if "rest" in data else None  # version 1 files hold absolute motion
    except InputError:
        raise
    except Exception as exc:  # zip/format errors from numpy
        raise InputError(f"cannot read motion file {path}: {exc}") from None
    if names != MOTION_NAMES:
        raise InputError(f"{path} has different motion channels than this version expects")
    track = MotionTrack(validate_motion(values, f"motion in {path}"), fps, mask)
    if rest is None:
        return track.relative_to_rest()
    track.rest = validate_motion(np.asarray(rest).reshape(1, -1), f"rest in {path}")[0]
    return track


CONDITION_CLIP = 4.0  # sigma: bound of a user-motion condition (a real smile of 0.97 reads ~3.5 sigma)
LIVE_STD_MARGIN = 1.01  # a channel whose std sits at MotionStats.MIN_STD never moved in the corpus


@dataclass
class MotionStats:
    """Per-dimension normalization statistics (mean, std) of a motion corpus."""

    mean: np.ndarray = field(default_factory=lambda: np.zeros(MOTION_DIM, np.float32))
    std: np.ndarray = field(default_factory=lambda: np.ones(MOTION_DIM, np.float32))

    MIN_STD = 1e-3  # channels that never move (e.g. unused blendshapes) must not blow up

    @classmethod
    def from_arrays(cls, arrays: list[np.ndarray]) -> MotionStats:
        cat = np.concatenate([np.asarray(a, np.float64) for a in arrays], axis=0)
        return cls(cat.mean(0).astype(np.float32), np.maximum(cat.std(0), cls.MIN_STD).astype(np.float32))

    def normalize(self, motion: np.ndarray) -> np.ndarray:
        return ((motion - self.mean) / self.std).astype(np.float32)

    def normalize_condition(self, motion: np.ndarray) -> np.ndarray:
        """Normalize a *user's* motion for the model's condition: channels the corpus never moves are zeroed
        (the model learned nothing from them, and a real face does move them: at the 1e-3 std floor a real
        browDown of 0.1 would read 100 sigma and swamp the encoder), the others clipped to
        +-CONDITION_CLIP sigma (a real user goes beyond anything the corpus holds, e.g. head translation)."""
        live = self.std > self.MIN_STD * LIVE_STD_MARGIN
        z = np.clip(self.normalize(motion), -CONDITION_CLIP, CONDITION_CLIP)
        return np.where(live, z, 0.0).astype(np.float32)

    def denormalize(self, motion: np.ndarray) -> np.ndarray:
        return (motion * self.std + self.mean).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> MotionStats:
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))

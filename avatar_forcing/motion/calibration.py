"""Renderer <-> tracker calibration: asked motion -> rig amounts, so that re-tracking reads it back.

A 2-D warp compresses what MediaPipe reads (a jaw dropped by a quarter of the face height reads only
~0.36 jawOpen). ``scripts/calibrate_renderer.py`` sweeps each control on the astronaut, re-tracks every
frame and stores the read-back curve; here the curve is inverted (monotone piecewise-linear), in
*deltas from the portrait's rest*, so it transfers to other portraits. Head rotations get a gain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatar_forcing.motion.vector import BLENDSHAPE_NAMES, POSE_NAMES, POSE_SLICE

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "assets" / "calibration.json"
ROTATIONS = ("pitch", "yaw", "roll")


@dataclass
class Calibration:
    # control -> (read-back deltas, ascending; rig amounts that produced them)
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    pose_gain: dict[str, float] = field(default_factory=dict)  # rig rotation per asked rotation

    @classmethod
    def identity(cls) -> Calibration:
        return cls()

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        data = json.loads(Path(path).read_text())
        return cls({k: (v[0], v[1]) for k, v in data["curves"].items()}, data["pose_gain"])

    @classmethod
    def load_default(cls) -> Calibration:
        return cls.load(DEFAULT_PATH) if DEFAULT_PATH.is_file() else cls.identity()

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"curves": self.curves, "pose_gain": self.pose_gain}, indent=1))

    def rig_amounts(self, asked: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """Rig amounts (relative to the portrait) for asked blendshapes; uncalibrated ones: the delta."""
        delta = np.asarray(asked, np.float64) - rest
        amounts = delta.copy()
        for name, (reads, rig) in self.curves.items():
            i = BLENDSHAPE_NAMES.index(name)
            amounts[i] = np.interp(delta[i], reads, rig)
        return amounts

    def pose(self, motion: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """The motion whose rotations are pre-scaled so that the rendered rotation reads as asked."""
        out = np.array(motion, np.float64)
        for name in ROTATIONS:
            i = POSE_SLICE.start + POSE_NAMES.index(name)
            out[i] = rest[i] + self.pose_gain.get(name, 1.0) * (motion[i] - rest[i])
        return out


def invert_sweep(amounts: np.ndarray, reads: np.ndarray) -> tuple[list[float], list[float]]:
    """A monotone inverse of a read-back sweep: (ascending read deltas, rig amounts)."""
    order = np.argsort(amounts)
    amounts, reads = np.asarray(amounts)[order], np.asarray(reads)[order]
    peak = int(np.argmax(reads)) + 1  # past its peak the tracker loses the shape: never ask for more
    amounts, reads = amounts[:peak], reads[:peak]
    reads = np.maximum.accumulate(reads - np.interp(0.0, amounts, reads))
    reads = reads + 1e-6 * np.arange(len(reads))  # strictly increasing for np.interp
    return reads.round(6).tolist(), amounts.round(6).tolist()

"""Renderer <-> tracker calibration: asked motion -> rig amounts, so that re-tracking reads it back.

A 2-D warp compresses what MediaPipe reads (a jaw dropped by a quarter of the face height reads only
~0.36 jawOpen), and MediaPipe couples controls (a one-sided smile leaks into the other side, jawOpen
raises browInnerUp). ``scripts/calibrate_renderer.py`` sweeps each control alone on the astronaut,
re-tracks every frame and stores, per control, the read-back curve and, per coupled pair, the leak.
Here, in *deltas from the portrait's rest* (so it transfers to other portraits):

1. cross-talk is cancelled: solve ``(I + C) own = asked`` for what each control must read on its own;
2. each control's curve is inverted (monotone piecewise-linear, exact 0 -> 0), giving the rig amount.

Head rotations get the same per-axis inverse curves (radians), which also absorbs the depth MediaPipe's
flat landmarks lack. Controls that the tracker barely reads have no curve: their amount is the delta.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatar_forcing.motion.vector import BLENDSHAPE_NAMES, NUM_BLENDSHAPES, POSE_NAMES, POSE_SLICE

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "assets" / "calibration.json"
ROTATIONS = ("pitch", "yaw", "roll")
_STRICT = 1e-6  # read-back steps added so np.interp sees strictly increasing x


@dataclass(frozen=True)
class CalibrationConfig:
    min_response: float = 0.05  # a control whose read-back spans less than this keeps amount = delta
    min_leak: float = 0.05  # cross-talk coefficients below this are measurement noise
    max_leak: float = 0.8  # and above this the pair cannot be told apart: cap (keeps I + C invertible)
    # A read-back this close to a control's peak (trough) counts as saturated: asking for more (e.g. more
    # smile than a portrait that already smiles) would only pile up rig amount and tear the face.
    saturation: float = 0.03


Curve = tuple[list[float], list[float]]  # (read-back deltas ascending, rig amounts that produce them)


@dataclass
class Calibration:
    curves: dict[str, Curve] = field(default_factory=dict)  # blendshapes and rotations
    leaks: dict[str, dict[str, float]] = field(default_factory=dict)  # source -> target -> coefficient

    def __post_init__(self) -> None:
        coupling = np.eye(NUM_BLENDSHAPES)
        for source, targets in self.leaks.items():
            for target, c in targets.items():
                coupling[BLENDSHAPE_NAMES.index(target), BLENDSHAPE_NAMES.index(source)] = c
        self._decouple = np.linalg.inv(coupling)
        self._blend = [(BLENDSHAPE_NAMES.index(n), np.array(c[0]), np.array(c[1]))
                       for n, c in self.curves.items() if n in BLENDSHAPE_NAMES]
        self._pose = [(POSE_SLICE.start + POSE_NAMES.index(n), np.array(c[0]), np.array(c[1]))
                      for n, c in self.curves.items() if n in ROTATIONS]

    @classmethod
    def identity(cls) -> Calibration:
        return cls()

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        data = json.loads(Path(path).read_text())
        return cls({k: (v[0], v[1]) for k, v in data["curves"].items()}, data.get("leaks", {}))

    @classmethod
    def load_default(cls) -> Calibration:
        return cls.load(DEFAULT_PATH) if DEFAULT_PATH.is_file() else cls.identity()

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"curves": self.curves, "leaks": self.leaks}, indent=1))

    def rig_amounts(self, asked: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """Rig amounts (deltas from the portrait's rest) for asked absolute blendshapes."""
        own = self._decouple @ (np.asarray(asked, np.float64) - rest)
        amounts = own.copy()
        for i, reads, rig in self._blend:
            amounts[i] = np.interp(own[i], reads, rig)
        return amounts

    def pose(self, motion: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """The motion with rotations replaced by the rig rotations that read back as asked."""
        out = np.array(motion, np.float64)
        for i, reads, rig in self._pose:
            out[i] = rest[i] + np.interp(motion[i] - rest[i], reads, rig)
        return out


def invert_sweep(amounts: np.ndarray, reads: np.ndarray, cfg: CalibrationConfig = CalibrationConfig()
                 ) -> Curve | None:
    """A monotone inverse of a sweep that includes amount 0: ascending read deltas -> rig amounts, with
    0 -> 0 exactly. Past the sweep's peak (or trough) the tracker loses the shape: never ask for more.
    None when the tracker barely reads the control."""
    order = np.argsort(amounts)
    amounts, reads = np.asarray(amounts, np.float64)[order], np.asarray(reads, np.float64)[order]
    zero = int(np.argmin(np.abs(amounts)))
    reads = reads - reads[zero]
    up = np.maximum.accumulate(reads[zero:])
    down = np.minimum.accumulate(reads[zero::-1])[::-1]
    up_end = zero + max(int(np.argmax(up >= up[-1] - cfg.saturation)), 1) + 1
    down_start = min(int(np.nonzero(down <= down[0] + cfg.saturation)[0][-1]), zero - 1) if zero else 0
    reads = np.concatenate([down[down_start:-1], up[: up_end - zero]])
    amounts = amounts[down_start:up_end]
    if reads[-1] - reads[0] < cfg.min_response:
        return None
    reads = reads + _STRICT * (np.arange(len(reads)) - (zero - down_start))  # keeps 0 -> 0
    return reads.round(7).tolist(), amounts.round(6).tolist()


def leak(own: np.ndarray, other: np.ndarray, cfg: CalibrationConfig = CalibrationConfig()) -> float:
    """Least-squares slope of another control's read-back against this one's (0 when negligible)."""
    c = float(own @ other / max(own @ own, 1e-9))
    return 0.0 if abs(c) < cfg.min_leak else float(np.clip(c, -cfg.max_leak, cfg.max_leak))

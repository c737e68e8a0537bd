"""Portrait + 58-d motion -> frames, by warping the photo on the CPU.

Once per portrait: crop and align the photo around the face, track its landmarks and its own motion
(the *reference*), author the rig on its face mesh and precompute the warp. Per frame: blendshape
deltas move the landmarks (rig), the 6-DoF pose moves the head in 3-D with soft rings of control points
through hair and neck (background still), a backward piecewise-affine warp moves the pixels, and the
mouth interior is painted where the lips part. A calibration (``calibration.py``) maps the asked motion
to rig amounts so that re-tracking a rendered frame reads back the motion that was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from avatar_forcing.errors import NoFaceError
from avatar_forcing.motion.calibration import Calibration
from avatar_forcing.motion.eyes import EyelidConfig, draw_eyelid, eye_look
from avatar_forcing.motion.mouth import MouthConfig, draw_mouth, mouth_opening
from avatar_forcing.motion.rig import (
    EYE_CORNERS,
    EYE_CREASE,
    EYE_LOWER,
    EYE_UPPER,
    IRISES,
    LIP_LOWER_INNER,
    LIP_UPPER_INNER,
    FaceRig,
    RigConfig,
)
from avatar_forcing.motion.tracker import face_width, rotation_ypr, track_image
from avatar_forcing.motion.vector import (
    BLENDSHAPE_SLICE,
    POSE_NAMES,
    POSE_SLICE,
    validate_motion,
)
from avatar_forcing.motion.warp import MeshWarper, WarpConfig

PORTRAITS = Path(__file__).resolve().parent.parent / "assets" / "portraits"
_POSE = {name: i for i, name in enumerate(POSE_NAMES)}


@dataclass(frozen=True)
class RenderConfig:
    crop_scale: float = 2.7  # crop side / face width
    crop_raise: float = 0.18  # crop centre above the face centre (face widths): room for hair
    depth_gain: float = 1.35  # MediaPipe's landmark depths are flat by about this factor
    pivot_depth: float = 0.6  # head rotation centre behind the face centre (face widths)
    # Soft rings of control points around the face: radius (in face half-widths) and how much of the
    # head's rigid motion each follows. The outermost ring is still; so is everything beyond it.
    ring_radii: tuple[float, ...] = (1.3, 1.75, 2.5)
    ring_follow: tuple[float, ...] = (0.9, 0.45, 0.0)
    ring_aspect: float = 1.25  # rings are taller than wide
    ring_points: int = 28
    neck_follow: float = 0.5  # ring points below the chin follow the head this much less
    max_rotation: float = 0.6  # radians of relative head rotation the warp accepts
    max_amount: float = 1.5  # rig amounts are clipped to +-this: beyond it a warp only tears
    max_shift: float = 0.25  # head translation, face widths
    max_log_scale: float = 0.25
    calibrated: bool = True
    rig: RigConfig = field(default_factory=RigConfig)
    warp: WarpConfig = field(default_factory=WarpConfig)
    mouth: MouthConfig = field(default_factory=MouthConfig)
    eyelid: EyelidConfig = field(default_factory=EyelidConfig)


def default_portrait(mirrored: bool = False) -> np.ndarray:
    """The bundled portrait: astronaut Eileen Collins (NASA, public domain, via scikit-image)."""
    from avatar_forcing.media.image import load_image

    image = load_image(PORTRAITS / "astronaut.png")
    return np.ascontiguousarray(image[:, ::-1]) if mirrored else image


def align_portrait(rgb: np.ndarray, size: int, cfg: RenderConfig = RenderConfig()) -> np.ndarray:
    """Crop a square around the (largest) face and scale it to ``size``; raises NoFaceError."""
    obs = track_image(rgb)
    lm = obs.landmarks[:, :2]
    width = face_width(obs.landmarks)
    centre = lm.mean(0) - [0.0, cfg.crop_raise * width]
    side = cfg.crop_scale * width
    # Slide the square inside the photo where it fits: padding (replicated edges) shows as streaks.
    for axis, extent in enumerate((rgb.shape[1], rgb.shape[0])):
        if side <= extent:
            centre[axis] = np.clip(centre[axis], side / 2, extent - side / 2)
    scale = size / side
    affine = np.array([[scale, 0, size / 2 - scale * centre[0]], [0, scale, size / 2 - scale * centre[1]]])
    return cv2.warpAffine(
        rgb,
        affine,
        (size, size),
        flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )


class PortraitRenderer:
    def __init__(
        self,
        portrait: np.ndarray | str | Path | None = None,
        size: int = 512,
        cfg: RenderConfig = RenderConfig(),
    ):
        if portrait is None:
            portrait = default_portrait()
        elif isinstance(portrait, str | Path):
            from avatar_forcing.media.image import load_image

            portrait = load_image(portrait)
        self.cfg, self.size = cfg, size
        self.image = align_portrait(np.ascontiguousarray(portrait), size, cfg)
        try:
            obs = track_image(self.image)
        except NoFaceError:
            raise NoFaceError("the face in the portrait is too small or too cut off to animate") from None
        self.reference_motion = obs.motion.astype(np.float32)
        self.neutral: np.ndarray | None = None  # see retarget()
        self.landmarks = obs.landmarks.astype(np.float64)  # (478, 3) pixels; z scaled like x
        self.face_width = face_width(obs.landmarks)
        self.rig = FaceRig(self.landmarks, cfg.rig)
        self.calibration = Calibration.load_default() if cfg.calibrated else Calibration.identity()

        self.face_idx = np.array([i for i in range(len(self.landmarks)) if i not in IRISES])
        self.centre = self.landmarks[self.face_idx, :2].mean(0)
        self.chin_y = self.landmarks[152, 1]
        rings, follow = [], []
        angles = np.linspace(0, 2 * np.pi, cfg.ring_points, endpoint=False)
        half = self.face_width / 2
        for radius, weight in zip(cfg.ring_radii, cfg.ring_follow, strict=True):
            pts = self.centre + radius * half * np.stack(
                [np.cos(angles), cfg.ring_aspect * np.sin(angles)], 1
            )
            rings.append(pts)
            follow.append(np.where(pts[:, 1] > self.chin_y, weight * cfg.neck_follow, weight))
        self.ring_points = np.concatenate(rings)
        self.ring_follow = np.concatenate(follow)
        inside = (self.ring_points >= 0).all(1) & (self.ring_points <= size - 1).all(1)
        self.ring_points, self.ring_follow = self.ring_points[inside], self.ring_follow[inside]
        self._rings_3d = np.concatenate([self.ring_points, np.zeros((len(self.ring_points), 1))], 1)
        self.warper = MeshWarper(
            np.concatenate([self.landmarks[self.face_idx, :2], self.ring_points]), size, cfg.warp
        )
        self._upper = np.array(LIP_UPPER_INNER)
        self._lower = np.array(LIP_LOWER_INNER)
        self.rest_opening = mouth_opening(self.landmarks[self._upper, :2], self.landmarks[self._lower, :2])
        self._eyes = []  # per eye: crease, upper and lower lid (corner..corner), rest gap, colours
        for side in "RL":
            outer, inner = EYE_CORNERS[side]
            upper = np.array((outer,) + EYE_UPPER[side] + (inner,))
            lower = np.array((outer,) + EYE_LOWER[side] + (inner,))
            gap = self._gap(self.landmarks[:, :2], upper, lower)
            look = eye_look(
                self.image, self.landmarks[upper, :2], self.landmarks[lower, :2], self.face_width, cfg.eyelid
            )
            self._eyes.append((np.array(EYE_CREASE[side]), upper, lower, gap, look))

    @staticmethod
    def _gap(xy: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> float:
        return float(np.mean(xy[lower[1:-1], 1] - xy[upper[1:-1], 1]))

    def retarget(self, neutral: np.ndarray | None) -> None:
        """Render motion *relative* to ``neutral``: ``neutral`` looks like the portrait at rest, and only
        the deviations from it move the face. Generated or tracked motion lives around its own data's
        neutral (framing, resting smile, head tilt), which is not this portrait's; None = absolute motion
        (tracker units, as in the round trip)."""
        self.neutral = None if neutral is None else validate_motion(np.asarray(neutral).reshape(1, -1))[0]

    # --- geometry ---------------------------------------------------------------------------------------
    def _rigid(self, points: np.ndarray, motion: np.ndarray) -> np.ndarray:
        """Move 3-D points (pixels, z like x) by the relative head pose; returns new 2-D positions."""
        cfg, ref = self.cfg, self.reference_motion[POSE_SLICE]
        pose = motion[POSE_SLICE]
        r_ask = rotation_ypr(*self._ypr(pose))
        r_ref = rotation_ypr(*self._ypr(ref))
        rel = r_ask @ r_ref.T
        angle = np.arccos(np.clip((np.trace(rel) - 1) / 2, -1, 1))
        if angle > cfg.max_rotation:  # beyond what a 2-D warp can show: scale the rotation down
            rel = _scale_rotation(rel, cfg.max_rotation / angle)
        # camera frame: x right, y up, z toward the viewer; MediaPipe's z grows away from the camera
        cam = np.stack(
            [points[:, 0] - self.centre[0], -(points[:, 1] - self.centre[1]), -cfg.depth_gain * points[:, 2]],
            1,
        )
        pivot = np.array([0.0, 0.0, -cfg.pivot_depth * self.face_width])
        moved = (cam - pivot) @ rel.T + pivot
        xy = np.stack([moved[:, 0], -moved[:, 1]], 1)
        log_scale = np.clip(
            pose[_POSE["log_scale"]] - ref[_POSE["log_scale"]], -cfg.max_log_scale, cfg.max_log_scale
        )
        shift = np.array([pose[_POSE["tx"]] - ref[_POSE["tx"]], pose[_POSE["ty"]] - ref[_POSE["ty"]]])
        scale, shift = np.exp(log_scale), np.clip(shift, -cfg.max_shift, cfg.max_shift)
        return self.centre + scale * xy + shift * self.face_width

    @staticmethod
    def _ypr(pose: np.ndarray) -> tuple[float, float, float]:
        return float(pose[_POSE["yaw"]]), float(pose[_POSE["pitch"]]), float(pose[_POSE["roll"]])

    def control_displacement(self, motion: np.ndarray) -> np.ndarray:
        """Displacement of the warp's free control points (face landmarks, then rings) for one frame."""
        amounts = self.calibration.rig_amounts(
            motion[BLENDSHAPE_SLICE], self.reference_motion[BLENDSHAPE_SLICE]
        )
        amounts = np.clip(amounts, -self.cfg.max_amount, self.cfg.max_amount)
        face = self.landmarks.copy()
        face[:, :2] += self.rig.displacement(amounts)
        # one rigid head move for the face and the rings (rings sit at the head centre's depth, z = 0)
        moved = self._rigid(
            np.concatenate([face, self._rings_3d]), self.calibration.pose(motion, self.reference_motion)
        )
        face_xy, ring_xy = moved[: len(face)], moved[len(face) :]
        ring_disp = (ring_xy - self.ring_points) * self.ring_follow[:, None]
        self._face_xy = face_xy
        return np.concatenate([face_xy[self.face_idx] - self.landmarks[self.face_idx, :2], ring_disp])

    # --- frames -----------------------------------------------------------------------------------------
    def render(self, motion: np.ndarray) -> np.ndarray:
        """One (size, size, 3) uint8 frame for a 58-d motion vector (tracker units)."""
        motion = validate_motion(np.asarray(motion, np.float32).reshape(1, -1))[0]
        if self.neutral is not None:
            motion = self.reference_motion + (motion - self.neutral)
        disp = self.warper.unfold(self.warper.full_displacement(self.control_displacement(motion)))
        frame = self.warper.warp(self.image, disp)
        xy = self._face_xy
        for crease, upper, lower, rest_gap, look in self._eyes:
            closure = 1.0 - self._gap(xy, upper, lower) / max(rest_gap, 1e-6)
            frame = draw_eyelid(
                frame, xy[crease], xy[upper], xy[lower], closure, look, self.face_width, self.cfg.eyelid
            )
        return draw_mouth(
            frame, xy[self._upper], xy[self._lower], self.face_width, self.rest_opening, self.cfg.mouth
        )

    def render_many(self, motion: np.ndarray) -> np.ndarray:
        motion = validate_motion(motion)
        return (
            np.stack([self.render(m) for m in motion])
            if len(motion)
            else np.zeros((0, self.size, self.size, 3), np.uint8)
        )


def _scale_rotation(rot: np.ndarray, factor: float) -> np.ndarray:
    """The rotation about the same axis by ``factor`` times the angle (Rodrigues)."""
    angle = np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1))
    if angle < 1e-9:
        return rot
    axis = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]]) / (
        2 * np.sin(angle)
    )
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = angle * factor
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)

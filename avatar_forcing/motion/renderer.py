"""Portrait + relative motion -> frames, by warping the photo in place on the CPU.

The output is the photo: same size and framing (optionally scaled down once to ``max_side``), with the
face animated where it is and pasted back; nothing is cropped, padded or zoomed. Motion is relative to
the portrait's own rest (motion/neutral.py): zero renders the photo unchanged.

Once per portrait: track its landmarks, author the rig on its face mesh in its own anatomical units, and
precompute the warp of a region around the face (soft rings of control points through hair and neck; the
outermost ring and everything beyond stay still, so the pasted region has no seam). Per frame: the
blendshapes move the landmarks (rig, each control bounded), the 6-DoF pose moves the head in 3-D, a
backward piecewise-affine warp moves the pixels, and the eyelids and the mouth interior are painted where
the warp alone cannot show them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from avatar_forcing.errors import NoFaceError
from avatar_forcing.motion.eyes import EyelidConfig, draw_eyelid, eye_look
from avatar_forcing.motion.mouth import MouthConfig, draw_mouth, mouth_look, mouth_opening
from avatar_forcing.motion.rig import (
    CHEEK,
    EYE_CORNERS,
    EYE_CREASE,
    EYE_LOWER,
    EYE_UPPER,
    IRIS,
    IRISES,
    LIP_LOWER_INNER,
    LIP_UPPER_INNER,
    FaceRig,
    RigConfig,
)
from avatar_forcing.motion.tracker import face_width, rotation_ypr, track_portrait
from avatar_forcing.motion.vector import BLENDSHAPE_SLICE, POSE_NAMES, POSE_SLICE, idx, validate_motion
from avatar_forcing.motion.warp import MeshWarper, WarpConfig

PORTRAITS = Path(__file__).resolve().parent.parent / "assets" / "portraits"
_POSE = {name: i for i, name in enumerate(POSE_NAMES)}


@dataclass(frozen=True)
class RenderConfig:
    max_side: int | None = None  # scale the photo down once so its longer side fits; None = as it is
    min_face_px: float = 32.0  # a face narrower than this (after scaling) is too small to animate
    depth_gain: float = 1.35  # MediaPipe's landmark depths are flat by about this factor
    pivot_depth: float = 0.6  # head rotation centre behind the face centre (face widths)
    # Soft rings of control points around the face: radius (in face half-widths) and how much of the
    # head's rigid motion each follows. The outermost ring is still; so is everything beyond it.
    ring_radii: tuple[float, ...] = (1.3, 1.75, 2.5)
    ring_follow: tuple[float, ...] = (0.9, 0.45, 0.0)
    ring_aspect: float = 1.25  # rings are taller than wide
    ring_points: int = 28
    neck_follow: float = 0.5  # ring points below the chin follow the head this much less
    region_margin: float = 0.15  # the warped region reaches this far beyond the outer ring (face widths)
    max_rotation: float = 0.25  # radians of head rotation from rest the warp shows (more only tears)
    max_shift: float = 0.15  # head translation from rest, face widths
    max_log_scale: float = 0.1
    rig: RigConfig = field(default_factory=RigConfig)
    warp: WarpConfig = field(default_factory=WarpConfig)
    mouth: MouthConfig = field(default_factory=MouthConfig)
    eyelid: EyelidConfig = field(default_factory=EyelidConfig)


def default_portrait(mirrored: bool = False) -> np.ndarray:
    """The bundled portrait: astronaut Eileen Collins (NASA, public domain, via scikit-image)."""
    from avatar_forcing.media.image import load_image

    image = load_image(PORTRAITS / "astronaut.png")
    return np.ascontiguousarray(image[:, ::-1]) if mirrored else image


def fit_side(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    """The photo scaled down (never up) so that its longer side is at most ``max_side``; even sides, so
    that video encoders take it (at most one pixel row/column is trimmed, never padded)."""
    h, w = rgb.shape[:2]
    scale = 1.0 if max_side is None else min(1.0, max_side / max(h, w))
    if scale < 1.0:
        w, h = max(round(w * scale), 2), max(round(h * scale), 2)
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2])


class PortraitRenderer:
    def __init__(self, portrait: np.ndarray | str | Path | None = None, cfg: RenderConfig = RenderConfig()):
        if portrait is None:
            portrait = default_portrait()
        elif isinstance(portrait, str | Path):
            from avatar_forcing.media.image import load_image

            portrait = load_image(portrait)
        self.cfg = cfg
        self.image = fit_side(np.asarray(portrait), cfg.max_side)
        obs = track_portrait(self.image)  # raises NoFaceError; several faces: the largest
        self.face_width = face_width(obs.landmarks)
        if self.face_width < cfg.min_face_px:
            raise NoFaceError(f"the face in the portrait is {self.face_width:.0f} px wide; at least "
                              f"{cfg.min_face_px:.0f} px are needed to animate it (use a larger photo)")
        self.rest_motion = obs.motion.astype(np.float32)  # what the tracker reads on the photo: its rest
        self.landmarks_full = obs.landmarks.astype(np.float64)  # (478, 3) pixels of the photo
        self.height, self.width = self.image.shape[:2]

        # The warped region: the outer ring plus a margin, clipped to the photo.
        centre = self.landmarks_full[:, :2].mean(0)
        half_w = (cfg.ring_radii[-1] / 2 + cfg.region_margin) * self.face_width
        half = np.array([half_w, half_w * cfg.ring_aspect])
        x0, y0 = np.maximum(np.floor(centre - half), 0).astype(int)
        x1, y1 = np.minimum(np.ceil(centre + half), [self.width, self.height]).astype(int)
        self.region = (slice(y0, y1), slice(x0, x1))
        self.offset = np.array([x0, y0, 0.0])
        self.patch = np.ascontiguousarray(self.image[self.region])
        self.landmarks = self.landmarks_full - self.offset  # in the region's pixels
        smile = [idx("mouthSmileLeft"), idx("mouthSmileRight")]
        self.rig = FaceRig(self.landmarks, cfg.rig, rest_smile=float(self.rest_motion[smile].mean()))

        self.face_idx = np.array([i for i in range(len(self.landmarks)) if i not in IRISES])
        self.centre = self.landmarks[self.face_idx, :2].mean(0)
        self.chin_y = self.landmarks[152, 1]
        rings, follow = [], []
        angles = np.linspace(0, 2 * np.pi, cfg.ring_points, endpoint=False)
        half_face = self.face_width / 2
        for radius, weight in zip(cfg.ring_radii, cfg.ring_follow, strict=True):
            pts = self.centre + radius * half_face * np.stack(
                [np.cos(angles), cfg.ring_aspect * np.sin(angles)], 1
            )
            rings.append(pts)
            follow.append(np.where(pts[:, 1] > self.chin_y, weight * cfg.neck_follow, weight))
        ring_points, ring_follow = np.concatenate(rings), np.concatenate(follow)
        shape = self.patch.shape[:2]
        inside = (ring_points >= 0).all(1) & (ring_points <= [shape[1] - 1, shape[0] - 1]).all(1)
        self.ring_points, self.ring_follow = ring_points[inside], ring_follow[inside]
        self._rings_3d = np.concatenate([self.ring_points, np.zeros((len(self.ring_points), 1))], 1)
        self.warper = MeshWarper(
            np.concatenate([self.landmarks[self.face_idx, :2], self.ring_points]), shape, self.face_width,
            cfg.warp,
        )
        self._upper = np.array(LIP_UPPER_INNER)
        self._lower = np.array(LIP_LOWER_INNER)
        self.rest_opening = mouth_opening(self.landmarks[self._upper, :2], self.landmarks[self._lower, :2])
        cheeks = np.round(self.landmarks[list(CHEEK["R"] + CHEEK["L"]), :2]).astype(int)
        cheeks = np.clip(cheeks, 0, [shape[1] - 1, shape[0] - 1])
        self._eyes = []  # per eye: crease, upper and lower lid (corner..corner), rest gap, colours
        for side in "RL":
            outer, inner = EYE_CORNERS[side]
            upper = np.array((outer,) + EYE_UPPER[side] + (inner,))
            lower = np.array((outer,) + EYE_LOWER[side] + (inner,))
            gap = self._gap(self.landmarks[:, :2], upper, lower)
            look = eye_look(self.patch, self.landmarks[upper, :2], self.landmarks[lower, :2], self.face_width,
                            cfg.eyelid, self.landmarks[list(IRIS[side]), :2])
            self._eyes.append((np.array(EYE_CREASE[side]), upper, lower, gap, look))
        whites = [eye[-1].white for eye in self._eyes if eye[-1].white is not None]
        self.mouth_look = mouth_look(self.patch, self.landmarks[self._upper, :2],
                                     self.landmarks[self._lower, :2], self.patch[cheeks[:, 1], cheeks[:, 0]],
                                     cfg.mouth, np.mean(whites, 0) if whites else None)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the frames."""
        return self.height, self.width

    @staticmethod
    def _gap(xy: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> float:
        return float(np.mean(xy[lower[1:-1], 1] - xy[upper[1:-1], 1]))

    # --- geometry ---------------------------------------------------------------------------------------
    def _rigid(self, points: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """Move 3-D points (region pixels, z like x) by the pose relative to rest; new 2-D positions."""
        cfg = self.cfg
        rest = self.rest_motion[POSE_SLICE].astype(np.float64)
        # The same relative pose is a different rotation of a head that is already turned: compose with
        # the photo's own pose (the renderer's private business; the model never sees it).
        r_rest = rotation_ypr(*self._ypr(rest))
        rel = rotation_ypr(*self._ypr(rest + pose)) @ r_rest.T
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
        scale = np.exp(np.clip(pose[_POSE["log_scale"]], -cfg.max_log_scale, cfg.max_log_scale))
        shift = np.clip([pose[_POSE["tx"]], pose[_POSE["ty"]]], -cfg.max_shift, cfg.max_shift)
        return self.centre + scale * xy + shift * self.face_width

    @staticmethod
    def _ypr(pose: np.ndarray) -> tuple[float, float, float]:
        return float(pose[_POSE["yaw"]]), float(pose[_POSE["pitch"]]), float(pose[_POSE["roll"]])

    def control_displacement(self, motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Displacement of the warp's free control points (face landmarks, then rings) for one relative
        motion vector, and the moved face landmarks (478, 2)."""
        face = self.landmarks.copy()
        face[:, :2] += self.rig.displacement(motion[BLENDSHAPE_SLICE])
        # one rigid head move for the face and the rings (rings sit at the head centre's depth, z = 0)
        moved = self._rigid(np.concatenate([face, self._rings_3d]), motion[POSE_SLICE].astype(np.float64))
        face_xy, ring_xy = moved[: len(face)], moved[len(face) :]
        ring_disp = (ring_xy - self.ring_points) * self.ring_follow[:, None]
        disp = np.concatenate([face_xy[self.face_idx] - self.landmarks[self.face_idx, :2], ring_disp])
        return disp, face_xy

    # --- frames -----------------------------------------------------------------------------------------
    def render(self, motion: np.ndarray) -> np.ndarray:
        """One (height, width, 3) uint8 frame for a 58-d motion vector relative to the portrait's rest."""
        motion = validate_motion(np.asarray(motion, np.float32).reshape(1, -1))[0]
        if not motion.any():  # at rest the output is the photo, bit for bit
            return self.image.copy()
        control, xy = self.control_displacement(motion)
        disp = self.warper.unfold(self.warper.full_displacement(control))
        patch = self.warper.warp(self.patch, disp)
        for crease, upper, lower, rest_gap, look in self._eyes:
            closure = 1.0 - self._gap(xy, upper, lower) / max(rest_gap, 1e-6)
            patch = draw_eyelid(
                patch, xy[crease], xy[upper], xy[lower], closure, look, self.face_width, self.cfg.eyelid
            )
        patch = draw_mouth(patch, xy[self._upper], xy[self._lower], self.face_width, self.rest_opening,
                           self.mouth_look, self.cfg.mouth)
        frame = self.image.copy()
        frame[self.region] = patch
        return frame

    def render_many(self, motion: np.ndarray) -> np.ndarray:
        motion = validate_motion(motion)
        if not len(motion):
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        return np.stack([self.render(m) for m in motion])

    def face_landmarks(self, motion: np.ndarray) -> np.ndarray:
        """Where the rig puts the face landmarks (478, 2), in the photo's pixels (tests, debugging)."""
        _, xy = self.control_displacement(validate_motion(np.asarray(motion).reshape(1, -1))[0])
        return xy + self.offset[:2]


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

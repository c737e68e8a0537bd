"""Frames -> 58-d motion with MediaPipe's FaceLandmarker (478 landmarks, 52 blendshapes, head transform).

Pose convention (the renderer and every data set rely on it; keep it stable):

* Rotation. MediaPipe's facial transformation matrix maps the canonical face into a camera frame
  (x right, y up, z toward the viewer; the canonical face looks along +z, its +x is the subject's
  left). A face that looks straight into the camera but sits off the optical axis has a rotated
  matrix. MediaPipe's rotation follows that "view ray" only partly: moving the astronaut photo
  across a larger canvas changes the raw pitch by ~0.33x and the raw yaw by ~0.23x the ray angle.
  So we remove ``view_ray_compensation`` (0.3) of the ray rotation, making the pose nearly
  independent of where the face sits in the frame. The remaining rotation is factored as
  ``R = Ry(yaw) @ Rx(pitch) @ Rz(-roll)``: positive pitch = head down (chin toward chest),
  positive yaw = subject turns to their own left (image right in an unmirrored photo), positive
  roll = the top of the head tilts toward the subject's left shoulder (clockwise in an unmirrored
  photo). Radians.
* Translation. ``tx, ty`` = offset of the face centre (mean of the 478 landmarks) from the image
  centre, in face widths, image right / down positive.
* Scale. ``log_scale = log(face_width / (0.5 * image_width))``: 0 when the face spans half the
  image width. Face width = 3-D distance between the cheek landmarks 234 and 454 in pixels (z is
  in MediaPipe's x scale), so it changes little with yaw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from avatar_forcing.errors import AvatarForcingError, InputError, NoFaceError
from avatar_forcing.motion.vector import (
    BLENDSHAPE_NAMES,
    FPS,
    MOTION_DIM,
    NUM_BLENDSHAPES,
    MotionTrack,
)

MODEL_PATH = Path(__file__).resolve().parent.parent / "assets" / "face_landmarker.task"
NUM_LANDMARKS = 478
FACE_WIDTH_LANDMARKS = (234, 454)  # right and left cheek on MediaPipe's face mesh
Select = Literal["largest"] | int


@dataclass(frozen=True)
class TrackerConfig:
    num_faces: int = 1  # more faces cost more; raised automatically when `select` asks for face N
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    reference_width_fraction: float = 0.5  # log_scale = 0 when the face spans this much of the width
    frame_step_ms: int = 40  # timestamp advance in video mode when the caller gives none (25 fps)
    view_ray_compensation: float = 0.3  # fraction of the view-ray rotation removed (measured, see top)


@dataclass
class FaceObservation:
    motion: np.ndarray  # (58,) float32: blendshapes then pitch, yaw, roll, tx, ty, log_scale
    landmarks: np.ndarray  # (478, 3) float32: x, y in pixels, z in pixels on x's scale
    transform: np.ndarray  # (4, 4) float32: MediaPipe's facial transformation matrix
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1 of the landmarks, pixels


class FaceTracker:
    """MediaPipe FaceLandmarker wrapped to return our motion vector; use as a context manager.

    ``mode="video"`` tracks across frames (needs increasing timestamps; a non-increasing one is
    bumped by 1 ms); ``mode="image"`` treats every frame independently. ``select`` picks the face:
    ``"largest"`` or an index counted from the left of the image.
    """

    def __init__(self, mode: Literal["image", "video"] = "video", select: Select = "largest",
                 cfg: TrackerConfig = TrackerConfig(), model_path: str | Path = MODEL_PATH):
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        if mode not in ("image", "video"):
            raise ValueError(f"mode must be 'image' or 'video', got {mode!r}")
        if select != "largest" and not (isinstance(select, int) and select >= 0):
            raise InputError(f"face selection must be 'largest' or a face index >= 0, got {select!r}")
        model_path = Path(model_path)
        if not model_path.is_file():
            raise AvatarForcingError(f"face landmarker model not found: {model_path}")
        self.mode, self.select, self.cfg = mode, select, cfg
        num_faces = max(cfg.num_faces, select + 1 if isinstance(select, int) else 1)
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=model_path.read_bytes()),
            running_mode=vision.RunningMode.VIDEO if mode == "video" else vision.RunningMode.IMAGE,
            num_faces=num_faces,
            min_face_detection_confidence=cfg.min_detection_confidence,
            min_face_presence_confidence=cfg.min_presence_confidence,
            min_tracking_confidence=cfg.min_tracking_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self._last_ms: int | None = None
        self._names_checked = False

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def track_frame(self, rgb: np.ndarray, timestamp_ms: int | None = None) -> FaceObservation | None:
        """Track one RGB uint8 frame; None when no face is found."""
        import mediapipe as mp

        if self._landmarker is None:
            raise RuntimeError("FaceTracker is closed")
        rgb = _check_frame(rgb)
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
        if self.mode == "video":
            result = self._landmarker.detect_for_video(image, self._next_timestamp(timestamp_ms))
        else:
            result = self._landmarker.detect(image)
        if not result.face_landmarks:
            return None
        self._check_names(result.face_blendshapes[0])
        faces = [_observation(result, i, rgb.shape[1], rgb.shape[0], self.cfg)
                 for i in range(len(result.face_landmarks))]
        if self.select == "largest":
            return max(faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
        faces.sort(key=lambda f: f.bbox[0] + f.bbox[2])  # left to right
        return faces[self.select] if self.select < len(faces) else None

    def _next_timestamp(self, timestamp_ms: int | None) -> int:
        if timestamp_ms is None:
            ts = 0 if self._last_ms is None else self._last_ms + self.cfg.frame_step_ms
        else:
            ts = int(round(timestamp_ms))
        if self._last_ms is not None and ts <= self._last_ms:
            ts = self._last_ms + 1  # MediaPipe rejects non-increasing timestamps in video mode
        self._last_ms = ts
        return ts

    def _check_names(self, categories) -> None:
        if self._names_checked:
            return
        names = tuple(c.category_name for c in categories)
        if names != BLENDSHAPE_NAMES:
            raise AvatarForcingError(
                "this MediaPipe face model outputs different blendshapes than motion/vector.py expects; "
                f"got {len(names)} names starting {names[:3]}")
        self._names_checked = True


def _check_frame(rgb: np.ndarray) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 2 or arr.shape[1] < 2:
        raise InputError(f"frames must be RGB arrays of shape (H, W, 3), got {arr.shape}")
    if arr.dtype != np.uint8:
        raise InputError(f"frames must be uint8, got {arr.dtype}")
    return np.ascontiguousarray(arr)


def _observation(result, i: int, width: int, height: int, cfg: TrackerConfig) -> FaceObservation:
    lms = np.array([(p.x, p.y, p.z) for p in result.face_landmarks[i]], np.float32)
    lms *= np.array([width, height, width], np.float32)
    transform = np.asarray(result.facial_transformation_matrixes[i], np.float32).reshape(4, 4)
    blend = np.array([c.score for c in result.face_blendshapes[i]], np.float32)
    bbox = (float(lms[:, 0].min()), float(lms[:, 1].min()), float(lms[:, 0].max()), float(lms[:, 1].max()))
    motion = np.empty(MOTION_DIM, np.float32)
    motion[:NUM_BLENDSHAPES] = np.clip(blend, 0.0, 1.0)
    motion[NUM_BLENDSHAPES:NUM_BLENDSHAPES + 3] = head_angles(transform, cfg.view_ray_compensation)
    motion[NUM_BLENDSHAPES + 3:] = placement(lms, width, height, cfg.reference_width_fraction)
    return FaceObservation(motion, lms, transform, bbox)


def head_angles(transform: np.ndarray, view_ray_compensation: float = TrackerConfig.view_ray_compensation
                ) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in radians from a facial transformation matrix (see the module docstring)."""
    m = np.asarray(transform, np.float64)
    u, _, vt = np.linalg.svd(m[:3, :3])  # drop any scale MediaPipe folded into the matrix
    rot = u @ vt
    to_camera = -m[:3, 3]
    norm = np.linalg.norm(to_camera)
    if norm > 0:
        d = to_camera / norm
        k = view_ray_compensation
        ray = rotation_ypr(k * math.atan2(d[0], d[2]), k * math.asin(float(np.clip(-d[1], -1, 1))), 0.0)
        rot = ray.T @ rot
    pitch = math.asin(float(np.clip(-rot[1, 2], -1.0, 1.0)))
    yaw = math.atan2(rot[0, 2], rot[2, 2])
    roll = -math.atan2(rot[1, 0], rot[1, 1])
    return pitch, yaw, roll


def rotation_ypr(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The camera-frame rotation ``Ry(yaw) @ Rx(pitch) @ Rz(-roll)`` of the pose convention."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(-roll), math.sin(-roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rx @ rz


def face_width(landmarks: np.ndarray) -> float:
    """Face width in pixels: 3-D distance between the two cheek landmarks."""
    a, b = FACE_WIDTH_LANDMARKS
    return float(np.linalg.norm(landmarks[a] - landmarks[b]))


def placement(landmarks: np.ndarray, width: int, height: int,
              reference_width_fraction: float = 0.5) -> tuple[float, float, float]:
    """(tx, ty, log_scale) of a face in an image (see the module docstring)."""
    w = max(face_width(landmarks), 1e-6)
    cx, cy = landmarks[:, 0].mean(), landmarks[:, 1].mean()
    tx = (cx - width / 2) / w
    ty = (cy - height / 2) / w
    log_scale = math.log(w / (reference_width_fraction * width))
    return float(tx), float(ty), float(log_scale)


def track_image(rgb: np.ndarray, select: Select = "largest") -> FaceObservation:
    """Track a single photo; raises NoFaceError when there is no face."""
    with FaceTracker(mode="image", select=select) as tracker:
        obs = tracker.track_frame(rgb)
    if obs is None:
        raise NoFaceError("no face found in the image")
    return obs


@dataclass(frozen=True)
class PortraitSearchConfig:
    """MediaPipe's face detector sees a downscaled image, so a small face in a large photo (a painting, a
    half-body shot) is missed: search overlapping tiles, then re-track a crop around the face found."""

    tiles: tuple[int, ...] = (2, 3)  # tiles per side, tried in order until a face is found
    overlap: float = 0.5  # of a tile's side
    refine_below: float = 0.25  # re-track a crop when the face is narrower than this share of the photo
    refine_crop: float = 3.0  # that crop's side in face widths


def track_portrait(rgb: np.ndarray, cfg: PortraitSearchConfig = PortraitSearchConfig()) -> FaceObservation:
    """The largest face of a photo of any size, tracked on the photo's pixels (landmarks in its
    coordinates); raises NoFaceError when there is none."""
    rgb = _check_frame(rgb)
    h, w = rgb.shape[:2]
    with FaceTracker(mode="image") as tracker:
        obs = tracker.track_frame(rgb)
        for n in cfg.tiles:
            if obs is not None:
                break
            side = int(max(h, w) / (n - (n - 1) * cfg.overlap))
            step = max(int(side * (1 - cfg.overlap)), 1)
            found = [_track_crop(tracker, rgb, x, y, side, side)
                     for y in range(0, max(h - side, 0) + step, step)
                     for x in range(0, max(w - side, 0) + step, step)]
            found = [f for f in found if f is not None]
            obs = max(found, key=lambda f: face_width(f.landmarks), default=None)
        if obs is None:
            raise NoFaceError("no face found in the image")
        fw = face_width(obs.landmarks)
        if fw < cfg.refine_below * max(h, w):
            cx, cy = obs.landmarks[:, :2].mean(0)
            side = int(cfg.refine_crop * fw)
            refined = _track_crop(tracker, rgb, int(cx - side / 2), int(cy - side / 2), side, side)
            obs = refined if refined is not None else obs
    return obs


def _track_crop(tracker: FaceTracker, rgb: np.ndarray, x: int, y: int, width: int, height: int
                ) -> FaceObservation | None:
    """Track a crop (clipped to the image) and express the landmarks in the image's pixels."""
    x0, y0 = max(x, 0), max(y, 0)
    crop = np.ascontiguousarray(rgb[y0 : y + height, x0 : x + width])
    if min(crop.shape[:2]) < 2:
        return None
    obs = tracker.track_frame(crop)
    if obs is None:
        return None
    lms = obs.landmarks + np.array([x0, y0, 0], np.float32)
    bbox = (obs.bbox[0] + x0, obs.bbox[1] + y0, obs.bbox[2] + x0, obs.bbox[3] + y0)
    motion = obs.motion.copy()
    motion[NUM_BLENDSHAPES + 3:] = placement(lms, rgb.shape[1], rgb.shape[0])  # framing in the photo
    return FaceObservation(motion, lms, obs.transform, bbox)


def track_video(source: str | Path | Iterable[np.ndarray] | Iterable[tuple[np.ndarray, float]],
                fps: float = FPS, select: Select = "largest", source_fps: float | None = None,
                progress: bool = False) -> MotionTrack:
    """Track a video file (or frames) into a motion track at ``fps``.

    ``source`` is a path, an iterable of ``(rgb, timestamp_s)`` pairs, or an iterable of bare
    frames (taken to be at ``source_fps``, default ``fps``). Output frame k is the source frame
    nearest to time ``t0 + k / fps``; frames without a face get ``mask = False`` and are filled
    by linear interpolation (held at the edges). Raises NoFaceError if no frame has a face.
    """
    if isinstance(source, (str, Path)):
        from avatar_forcing.media.video import read_video

        frames: Iterable[tuple[np.ndarray, float]] = read_video(source)
    else:
        frames = _timed(source, source_fps or fps)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc="tracking", unit="frame")
    values: list[np.ndarray | None] = []
    with FaceTracker(mode="video", select=select) as tracker:
        for rgb, time_s, n_out in _resample(frames, fps):
            obs = tracker.track_frame(rgb, int(round(time_s * 1000)))
            values.extend([None if obs is None else obs.motion] * n_out)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    if not values:
        raise InputError("the video has no frames")
    mask = np.array([v is not None for v in values])
    if not mask.any():
        raise NoFaceError(f"no face found in any of the {len(values)} frames")
    motion = np.zeros((len(values), MOTION_DIM), np.float32)
    motion[mask] = np.stack([v for v in values if v is not None])
    return MotionTrack(fill_gaps(motion, mask), fps, mask)


def fill_gaps(motion: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Linearly interpolate rows where ``mask`` is False; hold the first/last observed row at the edges."""
    t = np.arange(len(motion))
    out = motion.copy()
    if mask.all():
        return out
    for d in range(motion.shape[1]):
        out[~mask, d] = np.interp(t[~mask], t[mask], motion[mask, d])
    return out


def _timed(frames: Iterable, fps: float) -> Iterator[tuple[np.ndarray, float]]:
    for i, item in enumerate(frames):
        if isinstance(item, tuple):
            yield item[0], float(item[1])
        else:
            yield item, i / fps


def _resample(frames: Iterable[tuple[np.ndarray, float]], fps: float
              ) -> Iterator[tuple[np.ndarray, float, int]]:
    """Nearest-in-time resampling: yields (frame, time, how many output frames it stands for)."""
    period = 1.0 / fps
    prev: tuple[np.ndarray, float] | None = None
    t0: float | None = None
    emitted = 0
    for rgb, t in frames:
        if prev is None:
            t0 = t
        elif t > prev[1]:
            # Output times strictly before the midpoint belong to the previous frame.
            boundary = (prev[1] + t) / 2 - t0
            n = max(0, math.ceil(boundary / period - 1e-9) - emitted)
            if n:
                yield prev[0], prev[1], n
                emitted += n
        else:
            continue  # a non-increasing timestamp: keep the earlier frame
        prev = (rgb, t)
    if prev is None:
        return
    total = int(round((prev[1] - t0) * fps)) + 1
    if total > emitted:
        yield prev[0], prev[1], total - emitted

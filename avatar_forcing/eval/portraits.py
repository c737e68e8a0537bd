"""Real portraits through the whole product: does each one stay itself at rest, open and close its mouth
like a person while it talks, and move while it listens? MediaPipe re-tracks every rendered frame (an
independent judge) and each frame is compared with the portrait as the renderer holds it.

    avatar-forcing eval portraits [--portraits DIR] [--audio FILE...] [--seconds 10] --out out/eval_portraits

Per portrait, three phases on the shipped model (AvatarSession, default checkpoint):
  * REST: no input at all for --rest-seconds (the clock advanced by hand): PSNR of the per-pixel median
    frame against the portrait, and how far the re-tracked face drifted (centre, size, roll, eyes);
  * SPEECH: each audio file as the avatar's own voice: the narrowest mouth (width over face width, as a
    ratio of the portrait's own) against the real speaker's, and jawOpen against the speech envelope,
    re-tracked (jaw r) and as the model asked it of the renderer (asked jaw r), beside the real speaker's
    own r on the same sound (the "Real speakers" table: people score well below 1 on this measure);
  * LISTENING: one real video as the user (webcam + microphone; by default the one whose user smiles
    most), the avatar silent: smile range and head motion (reported, not judged); the sheet shows the
    user's frame beside the avatar's where the avatar answers most.
Writes a contact sheet per portrait, table.md and table.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avatar_forcing.errors import InputError, NoFaceError
from avatar_forcing.eval.metrics import LipSyncConfig, audio_envelope, lagged_correlation
from avatar_forcing.motion.smile_onsets import smile
from avatar_forcing.motion.tracker import NUM_LANDMARKS, FaceTracker, fill_gaps
from avatar_forcing.motion.vector import FPS, MOTION_DIM, idx

SAMPLE_RATE = 16000  # load_audio's rate, and the session's
REAL_DIR = Path("../shared/real")  # the project's real material (see its README), relative to the repo root
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
BUILTIN_NAME = "builtin"


@dataclass(frozen=True)
class MeshPoints:
    """MediaPipe face-mesh indices the metrics use (image-left/right for a frontal, unmirrored face)."""

    cheeks: tuple[int, int] = (234, 454)       # face width and roll
    mouth_corners: tuple[int, int] = (61, 291)
    lids_a: tuple[int, int] = (159, 145)       # upper, lower lid of the image-left eye
    corners_a: tuple[int, int] = (33, 133)
    lids_b: tuple[int, int] = (386, 374)       # the image-right eye
    corners_b: tuple[int, int] = (263, 362)


@dataclass(frozen=True)
class PortraitsConfig:
    seconds: float = 10.0               # of each audio, and of the listening video
    rest_seconds: float = 8.0
    seed: int = 0
    # metrics
    pixel_peak: float = 255.0           # 8-bit PSNR
    psnr_cap_db: float = 100.0          # identical images: a finite number JSON can hold
    face_pad: float = 0.10              # the face box, padded by this fraction of the face width
    mouth_percentile: float = 1.0       # "mouth p1": the narrowest 1% of frames, robust to one bad track
    calm_quantile: float = 0.3          # a speaker's rest mouth: frames below this quantile of open/round
    max_lag_frames: int = 4             # the mouth may follow the sound by up to 160 ms
    reference_frames: int = 25          # the portrait tracked as 1 s of still video (reference_landmarks)
    listen_low_high: tuple[float, float] = (10.0, 90.0)  # smile range = p90 - p10
    calm_speakers: tuple[str, ...] = ("d3", "d14", "d20")  # speakers whose mouth stays wide: judged alone
    # the default LISTENING user is the video whose user smiles most (p90 of the tracked smile over the
    # first `seconds`, read every `listen_probe_every`-th frame): a user who gives the avatar something to
    # answer; eval reactions covers every user
    listen_probe_every: int = 5
    # an audio track quieter than this (RMS over the seconds used) is silence, not speech: d3, d9 and d18
    # carry such tracks; speech sits at ~0.04-0.2
    silent_rms: float = 0.005
    # the rest median: at most this many frames (every k-th), computed in row bands to bound memory
    median_max_frames: int = 100
    median_band_rows: int = 64
    # contact sheet
    thumb_height: int = 256
    thumb_view: float = 1.1  # speech and listening thumbnails show the face: this many face widths around
    diff_gain: float = 4.0
    jaw_frames: int = 6
    narrow_frames: int = 2
    listen_pairs: int = 4               # (user | avatar) pairs: the avatar's largest smiles, then head turns
    min_pick_gap_frames: int = 10       # frames picked from one audio lie this far apart (0.4 s)
    label_band: int = 22
    label_scale: float = 0.45
    label_margin: int = 4
    tile_gap: int = 4
    background: int = 24


POINTS = MeshPoints()


# ---- pure metrics ------------------------------------------------------------------------------------

def psnr(a: np.ndarray, b: np.ndarray, cfg: PortraitsConfig = PortraitsConfig()) -> float:
    """PSNR in dB of two same-shaped 8-bit images (capped: identical images give the cap)."""
    if a.shape != b.shape:
        raise InputError(f"PSNR of differently shaped images: {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return cfg.psnr_cap_db
    return min(cfg.psnr_cap_db, 10.0 * math.log10(cfg.pixel_peak ** 2 / mse))


def face_width_2d(lm: np.ndarray) -> float:
    a, b = POINTS.cheeks
    return float(np.linalg.norm(lm[a, :2] - lm[b, :2]))


def face_centre(lm: np.ndarray) -> np.ndarray:
    return lm[:, :2].mean(0)


def roll_deg(lm: np.ndarray) -> float:
    """Angle of the cheek-to-cheek vector in the image (degrees, clockwise positive as y points down)."""
    a, b = POINTS.cheeks
    d = lm[b, :2] - lm[a, :2]
    return math.degrees(math.atan2(float(d[1]), float(d[0])))


def _dist(lm: np.ndarray, pair: tuple[int, int]) -> float:
    return float(np.linalg.norm(lm[pair[0], :2] - lm[pair[1], :2]))


def eye_asymmetry(lm: np.ndarray) -> float:
    """(open_a - open_b) / mean(open_a, open_b), open = lid gap / eye width: 0 for equally open eyes."""
    open_a = _dist(lm, POINTS.lids_a) / max(_dist(lm, POINTS.corners_a), 1e-9)
    open_b = _dist(lm, POINTS.lids_b) / max(_dist(lm, POINTS.corners_b), 1e-9)
    mean = (open_a + open_b) / 2
    return (open_a - open_b) / mean if mean > 0 else 0.0


def mouth_ratio(lm: np.ndarray) -> float:
    """Mouth width over face width, both from the same frame (so head scale cancels)."""
    return _dist(lm, POINTS.mouth_corners) / max(face_width_2d(lm), 1e-9)


def face_box(lm: np.ndarray, shape: tuple[int, ...], pad: float) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 of the landmarks, padded by `pad` face widths, clipped to an image of `shape`."""
    margin = pad * face_width_2d(lm)
    h, w = shape[:2]
    x0, y0 = np.floor(lm[:, :2].min(0) - margin).astype(int)
    x1, y1 = np.ceil(lm[:, :2].max(0) + margin).astype(int)
    return max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1))


def _wrap_deg(angle: float) -> float:
    return (angle + 180.0) % 360.0 - 180.0


def geometry_change(lm: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """How a frame's face differs from the portrait's: centre shift and size change in % of the portrait's
    face width, roll change in degrees, eye-asymmetry change (frame minus portrait)."""
    width = face_width_2d(ref)
    return {
        "centre_shift_pct": 100.0 * float(np.linalg.norm(face_centre(lm) - face_centre(ref))) / width,
        "size_change_pct": 100.0 * (face_width_2d(lm) / width - 1.0),
        "roll_change_deg": _wrap_deg(roll_deg(lm) - roll_deg(ref)),
        "eye_asym_change": eye_asymmetry(lm) - eye_asymmetry(ref),
    }


def median_geometry(landmarks: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """The median of each geometry change over the tracked frames of (T, 478, 3) (NaN rows = no face)."""
    rows = [geometry_change(lm, ref) for lm in landmarks if np.isfinite(lm).all()]
    if not rows:
        return {k: float("nan") for k in geometry_change(ref, ref)}
    return {k: float(np.median([r[k] for r in rows])) for k in rows[0]}


def jaw_envelope_r(pcm: np.ndarray, jaw: np.ndarray, cfg: PortraitsConfig = PortraitsConfig()
                   ) -> tuple[float, int]:
    """Best Pearson r of jawOpen[k + lag] with the audio's RMS in frame k (40 ms at 25 fps), lag 0..max
    frames (the mouth follows the sound); untracked frames (NaN) are interpolated."""
    jaw = np.asarray(jaw, np.float64)
    ok = np.isfinite(jaw)
    if ok.sum() < 3:
        return float("nan"), 0
    jaw = fill_gaps(jaw[:, None], ok)[:, 0]
    env = audio_envelope(pcm, LipSyncConfig(sample_rate=SAMPLE_RATE, fps=FPS))
    return lagged_correlation(env, jaw, range(cfg.max_lag_frames + 1))


def speaker_mouth_p1(ratios: np.ndarray, motion: np.ndarray, cfg: PortraitsConfig = PortraitsConfig()
                     ) -> float:
    """A real speaker's narrowest mouth (p1 of width / rest width). Rest width = the median over frames
    whose jawOpen, mouthPucker and mouthFunnel are all below their `calm_quantile`: a closed, unrounded
    mouth, whatever the speaker does most of the time."""
    ok = np.isfinite(ratios) & np.isfinite(motion).all(1)
    if ok.sum() == 0:
        return float("nan")
    ratios, motion = ratios[ok], motion[ok]
    calm = np.ones(len(ratios), bool)
    for name in ("jawOpen", "mouthPucker", "mouthFunnel"):
        values = motion[:, idx(name)]
        calm &= values <= np.quantile(values, cfg.calm_quantile)
    rest = float(np.median(ratios[calm] if calm.any() else ratios))
    return float(np.percentile(ratios / rest, cfg.mouth_percentile))


def reference_landmarks(image: np.ndarray, cfg: PortraitsConfig) -> np.ndarray | None:
    """The portrait's landmarks as the rendered frames are judged: MediaPipe in video mode, the portrait
    shown `reference_frames` times (video mode converges to another fit than image mode: on an unchanged
    painting its roll settles 2.7 degrees away, which would read as the avatar's tilt). None: no face."""
    observation = None
    with FaceTracker(mode="video") as tracker:
        for k in range(cfg.reference_frames):
            observation = tracker.track_frame(image, timestamp_ms=round(1000 * k / FPS))
            if observation is None:
                return None
    return observation.landmarks.astype(np.float64)


def pixel_median(frames: Sequence[np.ndarray], cfg: PortraitsConfig = PortraitsConfig()) -> np.ndarray:
    """Per-pixel median of same-shaped uint8 frames, in row bands (a float copy of all frames would not
    fit for photo-sized output)."""
    stack = np.stack(frames)
    out = np.empty(stack.shape[1:], np.uint8)
    for y in range(0, stack.shape[1], cfg.median_band_rows):
        band = stack[:, y: y + cfg.median_band_rows]
        out[y: y + cfg.median_band_rows] = np.round(np.median(band, axis=0)).astype(np.uint8)
    return out


# ---- re-tracking rendered frames ---------------------------------------------------------------------

@dataclass
class Retracked:
    motion: np.ndarray      # (T, 58), NaN where MediaPipe found no face
    landmarks: np.ndarray   # (T, 478, 3) pixels, NaN where no face
    thumbs: list[np.ndarray] = field(default_factory=list)  # per frame, when asked for
    kept: list[np.ndarray] = field(default_factory=list)    # full frames for the rest median
    # (T, 58) the motion the renderer was asked for (relative, the model's output), when known: beside the
    # re-tracked motion it tells the model's share of a weak expression from the renderer's
    asked: np.ndarray = field(default_factory=lambda: np.zeros((0, MOTION_DIM)))

    def __len__(self) -> int:
        return len(self.motion)

    @property
    def tracked(self) -> float:
        return float(np.isfinite(self.motion[:, 0]).mean()) if len(self) else 0.0


def thumbnail(rgb: np.ndarray, height: int) -> np.ndarray:
    import cv2

    width = max(1, round(rgb.shape[1] * height / rgb.shape[0]))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


class Recorder:
    """Re-tracks frames as a session produces them (video mode, 40 ms apart); keeps only what is asked:
    thumbnails, or every k-th full frame."""

    def __init__(self, limit: int, cfg: PortraitsConfig, thumbs: bool = False, keep_every: int = 0,
                 view: tuple[slice, slice] | None = None):
        self.limit, self.cfg, self.thumbs, self.keep_every = limit, cfg, thumbs, keep_every
        self.view = view  # the part of each frame the thumbnails show (None: all of it)
        self.motion: list[np.ndarray] = []
        self.landmarks: list[np.ndarray] = []
        self.asked: list[np.ndarray] = []
        self.result = Retracked(np.zeros((0, MOTION_DIM)), np.zeros((0, NUM_LANDMARKS, 3)))
        self.tracker = FaceTracker(mode="video")

    @property
    def full(self) -> bool:
        return len(self.motion) >= self.limit

    def add(self, rgb: np.ndarray, asked: np.ndarray | None = None) -> None:
        if self.full:  # the padding of a last partial block: past the input's end
            return
        k = len(self.motion)
        if asked is not None:
            self.asked.append(np.asarray(asked, np.float64))
        obs = self.tracker.track_frame(rgb, timestamp_ms=round(1000 * k / FPS))
        self.motion.append(np.full(MOTION_DIM, np.nan) if obs is None else obs.motion.astype(np.float64))
        self.landmarks.append(np.full((NUM_LANDMARKS, 3), np.nan) if obs is None
                              else obs.landmarks.astype(np.float64))
        if self.thumbs:
            shown = rgb if self.view is None else np.ascontiguousarray(rgb[self.view])
            self.result.thumbs.append(thumbnail(shown, self.cfg.thumb_height))
        if self.keep_every and k % self.keep_every == 0:
            self.result.kept.append(rgb.copy())

    def close(self) -> Retracked:
        self.tracker.close()
        if self.motion:
            self.result.motion, self.result.landmarks = np.stack(self.motion), np.stack(self.landmarks)
        if self.asked and len(self.asked) == len(self.motion):
            self.result.asked = np.stack(self.asked)
        return self.result


def face_view(session, cfg: PortraitsConfig) -> tuple[slice, slice]:
    """The face's neighbourhood in the session's frames (thumbnails big enough to judge a mouth)."""
    r = session.renderer
    (cx, cy), half = r.landmarks_full[:, :2].mean(0), cfg.thumb_view * r.face_width
    y0, x0 = max(int(cy - half), 0), max(int(cx - half), 0)
    return slice(y0, min(int(cy + half), r.height)), slice(x0, min(int(cx + half), r.width))


def drain(session, recorder: Recorder, bar: tqdm | None = None) -> None:
    """Generate every block that is due and hand its frames to the recorder."""
    while (block := session.step()) is not None:
        before = len(recorder.motion)
        for frame, motion in zip(block.frames, block.motion, strict=True):
            recorder.add(frame, motion if motion.shape == (MOTION_DIM,) else None)
        if bar is not None:
            bar.update(len(recorder.motion) - before)


# ---- the three phases --------------------------------------------------------------------------------

def rest_phase(session, cfg: PortraitsConfig) -> Retracked:
    """No input at all: the clock is moved by hand, every condition is null (silence, no user)."""
    total = round(cfg.rest_seconds * FPS)
    recorder = Recorder(total, cfg, keep_every=max(1, -(-total // cfg.median_max_frames)))
    session.reset()
    session.advance_to(cfg.rest_seconds)
    session.finish()
    with tqdm(total=total, desc="  rest", unit="frame", leave=False) as bar:
        drain(session, recorder, bar)
    return recorder.close()


def speech_phase(session, pcm: np.ndarray, name: str, cfg: PortraitsConfig) -> Retracked:
    total = -(-len(pcm) // (SAMPLE_RATE // FPS))
    recorder = Recorder(total, cfg, thumbs=True, view=face_view(session, cfg))
    session.reset()
    session.push_avatar_audio(pcm, SAMPLE_RATE)
    session.finish()
    with tqdm(total=total, desc=f"  speech {name}", unit="frame", leave=False) as bar:
        drain(session, recorder, bar)
    return recorder.close()


def video_frames(path: Path, seconds: float) -> Iterator[tuple[np.ndarray, float]]:
    """(rgb, t) of a video's first `seconds`, t from 0."""
    from avatar_forcing.media.video import read_video

    frames = read_video(path)
    with contextlib.closing(frames):
        t0 = None
        for rgb, t in frames:
            t0 = t if t0 is None else t0
            if t - t0 >= seconds:
                break
            yield rgb, t - t0


def listen_phase(session, video: Path, cfg: PortraitsConfig
                 ) -> tuple[Retracked, list[tuple[float, np.ndarray]]]:
    """The video as the user: each webcam frame with the microphone up to its time, generating whatever
    is due as a live session would; the avatar says nothing. Also the user's (time, thumbnail) frames."""
    from avatar_forcing.audio.io import load_audio

    total = round(cfg.seconds * FPS)
    pcm = load_audio(video)[: round(cfg.seconds * SAMPLE_RATE)]
    recorder = Recorder(total, cfg, thumbs=True, view=face_view(session, cfg))
    user: list[tuple[float, np.ndarray]] = []
    session.reset()
    pushed = 0
    with tqdm(total=total, desc="  listening", unit="frame", leave=False) as bar:
        for rgb, t in video_frames(video, cfg.seconds):
            user.append((t, thumbnail(rgb, cfg.thumb_height)))
            upto = min(len(pcm), round(t * SAMPLE_RATE))
            if upto > pushed:
                session.push_user_audio(pcm[pushed:upto], SAMPLE_RATE)
                pushed = upto
            session.push_user_frame(rgb, t)
            drain(session, recorder, bar)
        if pushed < len(pcm):
            session.push_user_audio(pcm[pushed:], SAMPLE_RATE)
        session.advance_to(cfg.seconds)
        session.finish()
        drain(session, recorder, bar)
    return recorder.close(), user


# ---- the real speakers -------------------------------------------------------------------------------

@dataclass
class Speaker:
    mouth_p1: float   # NaN for a plain audio file or a video without a face
    frames: int
    jaw_r: float = float("nan")  # the real speaker's own jawOpen against their speech envelope


def speaker_reference(path: Path, pcm: np.ndarray, cfg: PortraitsConfig) -> Speaker:
    """Track the real speaker of an audio file that is a video (its first `seconds`); `pcm` is its audio
    as the avatar gets it, so the speaker's jaw r is the avatar's on the same sound."""
    ratios, motion, times = [], [], []
    try:
        with FaceTracker(mode="video") as tracker:
            for rgb, t in video_frames(path, cfg.seconds):
                obs = tracker.track_frame(rgb, timestamp_ms=round(1000 * t))
                if obs is not None:
                    ratios.append(mouth_ratio(obs.landmarks))
                    motion.append(obs.motion)
                    times.append(t)
    except InputError:  # a plain audio file: no speaker to compare with
        return Speaker(float("nan"), 0)
    if not ratios:
        return Speaker(float("nan"), 0)
    motion = np.stack(motion)
    # onto the avatar's 25 fps timeline (the videos run at 25 or 30 fps)
    grid = np.arange(round(len(pcm) / SAMPLE_RATE * FPS)) / FPS
    jaw = np.interp(grid, np.array(times), motion[:, idx("jawOpen")])
    jaw_r = jaw_envelope_r(pcm, jaw, cfg)[0]
    return Speaker(speaker_mouth_p1(np.array(ratios), motion, cfg), len(ratios), jaw_r)


# ---- one portrait --------------------------------------------------------------------------------------

@dataclass
class Pick:
    """A frame chosen for the contact sheet."""

    thumb: np.ndarray
    audio: str
    time_s: float
    ratio: float
    jaw: float


def pick_frames(score: np.ndarray, count: int, gap: int, largest: bool) -> list[int]:
    """Up to `count` indices with the largest (or smallest) finite score, at least `gap` apart."""
    order = np.argsort(-score if largest else score, kind="stable")
    chosen: list[int] = []
    for i in order:
        if not np.isfinite(score[i]):
            continue
        if all(abs(int(i) - j) >= gap for j in chosen):
            chosen.append(int(i))
        if len(chosen) == count:
            break
    return chosen


def round_robin(candidates: dict[str, list[Pick]], count: int, key: Callable[[Pick], float]) -> list[Pick]:
    """Each audio's best first (ordered by `key`, ascending), then each one's second best, ..."""
    out: list[Pick] = []
    depth = max((len(v) for v in candidates.values()), default=0)
    for rank in range(depth):
        tier = [v[rank] for v in candidates.values() if len(v) > rank]
        out.extend(sorted(tier, key=key))
        if len(out) >= count:
            break
    return out[:count]


@dataclass
class PortraitResult:
    name: str
    status: str = "ok"
    shape: tuple[int, ...] = ()
    rest: dict[str, float] = field(default_factory=dict)
    speech: dict[str, dict[str, float]] = field(default_factory=dict)
    listen: dict[str, float | str] = field(default_factory=dict)
    row: dict[str, float] = field(default_factory=dict)


def speech_metrics(seq: Retracked, pcm: np.ndarray, ref_ratio: float, speaker: Speaker,
                   cfg: PortraitsConfig) -> dict[str, float]:
    ratios = np.array([mouth_ratio(lm) if np.isfinite(lm).all() else np.nan for lm in seq.landmarks])
    rel = ratios / ref_ratio
    r, lag = jaw_envelope_r(pcm, seq.motion[:, idx("jawOpen")], cfg)
    # the jaw the model asked for: r of the motion before rendering (the renderer's share is the gap)
    asked_r = jaw_envelope_r(pcm, seq.asked[:, idx("jawOpen")], cfg)[0] if len(seq.asked) else float("nan")
    ok = np.isfinite(rel)
    return {
        "mouth_p1": float(np.percentile(rel[ok], cfg.mouth_percentile)) if ok.any() else float("nan"),
        "mouth_min": float(rel[ok].min()) if ok.any() else float("nan"),
        "speaker_p1": speaker.mouth_p1,
        "jaw_r": r,
        "asked_jaw_r": asked_r,
        "jaw_lag_frames": float(lag),
        "tracked": seq.tracked,
        "frames": float(len(seq)),
    }


def percentile_range(x: np.ndarray, percentiles: tuple[float, float]) -> float:
    """p_high - p_low of the finite values (NaN without any)."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    if not len(x):
        return math.nan
    low, high = np.percentile(x, percentiles)
    return float(high - low)


def listen_metrics(seq: Retracked, cfg: PortraitsConfig) -> dict[str, float]:
    return {
        "smile_range": percentile_range(smile(seq.motion), cfg.listen_low_high),
        "yaw_std_deg": float(np.degrees(np.nanstd(seq.motion[:, idx("yaw")]))),
        "roll_std_deg": float(np.degrees(np.nanstd(seq.motion[:, idx("roll")]))),
        "tracked": seq.tracked,
    }


def summary_row(result: PortraitResult, cfg: PortraitsConfig) -> dict[str, float]:
    """The table's numbers for one portrait (see COLUMNS)."""
    nan = float("nan")
    speech = result.speech
    calm = [m for a, m in speech.items() if a in cfg.calm_speakers]
    other = [m for a, m in speech.items() if a not in cfg.calm_speakers]

    def worst(values: list[float]) -> float:
        finite = [v for v in values if np.isfinite(v)]
        return min(finite) if finite else nan

    def mean(key: str) -> float:
        finite = [m[key] for m in speech.values() if np.isfinite(m[key])]
        return float(np.mean(finite)) if finite else nan

    row = dict(result.rest)
    row.update({
        "mouth_p1": worst([m["mouth_p1"] for m in speech.values()]),
        "mouth_min": worst([m["mouth_min"] for m in speech.values()]),
        "mouth_p1_calm": worst([m["mouth_p1"] for m in calm]),
        "p1_vs_speaker": worst([m["mouth_p1"] - m["speaker_p1"] for m in other]),
        "jaw_r": mean("jaw_r"),
        "asked_jaw_r": mean("asked_jaw_r"),
        "smile_range": float(result.listen.get("smile_range", nan)),
        "yaw_std_deg": float(result.listen.get("yaw_std_deg", nan)),
        "roll_std_deg": float(result.listen.get("roll_std_deg", nan)),
    })
    return row


def portrait_in_output_pixels(session, shape: tuple[int, ...] | None) -> np.ndarray:
    """The renderer's portrait, resized to frames of `shape` if they differ: the rest is compared to it in
    the output's pixels."""
    reference = np.ascontiguousarray(session.renderer.image)
    if shape is None or shape == reference.shape:
        return reference
    import cv2

    return cv2.resize(reference, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def _rest(session, result: PortraitResult, cfg: PortraitsConfig
          ) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """REST metrics into `result`; the portrait's landmarks and the sheet's first row (None: no face)."""
    rest = rest_phase(session, cfg)
    reference = portrait_in_output_pixels(session, rest.kept[0].shape if rest.kept else None)
    result.shape = reference.shape
    ref_lm = reference_landmarks(reference, cfg)
    if ref_lm is None:
        result.status = "no face: MediaPipe finds none in the renderer's portrait image"
        return None
    median = pixel_median(rest.kept, cfg)
    x0, y0, x1, y1 = face_box(ref_lm, reference.shape, cfg.face_pad)
    result.rest = {"psnr_db": psnr(median, reference, cfg),
                   "face_psnr_db": psnr(median[y0:y1, x0:x1], reference[y0:y1, x0:x1], cfg),
                   **median_geometry(rest.landmarks, ref_lm), "tracked": rest.tracked,
                   "smile": float(np.nanmedian(smile(rest.motion))) if len(rest) else math.nan}
    diff = np.clip(np.abs(median.astype(np.float64) - reference) * cfg.diff_gain, 0, cfg.pixel_peak)
    row = [tile(reference, "portrait", cfg),
           tile(median, f"rest median {result.rest['psnr_db']:.1f} dB", cfg),
           tile(diff.astype(np.uint8), f"|diff| x{cfg.diff_gain:g}", cfg)]
    return ref_lm, row


def _speech(session, ref_lm: np.ndarray, audios: dict[str, np.ndarray], speakers: dict[str, Speaker],
            result: PortraitResult, cfg: PortraitsConfig) -> list[np.ndarray]:
    """SPEECH metrics per audio into `result`; the sheet's row (highest jaw, then narrowest mouth)."""
    ref_ratio = mouth_ratio(ref_lm)
    jaw_picks: dict[str, list[Pick]] = {}
    narrow_picks: dict[str, list[Pick]] = {}
    for audio, pcm in tqdm(audios.items(), desc="  audios", leave=False):
        seq = speech_phase(session, pcm, audio, cfg)
        result.speech[audio] = speech_metrics(seq, pcm, ref_ratio, speakers[audio], cfg)
        ratios = np.array([mouth_ratio(lm) if np.isfinite(lm).all() else np.nan
                           for lm in seq.landmarks]) / ref_ratio
        jaw = seq.motion[:, idx("jawOpen")]

        def picks(ids: list[int], seq=seq, audio=audio, ratios=ratios, jaw=jaw) -> list[Pick]:
            return [Pick(seq.thumbs[i], audio, i / FPS, float(ratios[i]), float(jaw[i])) for i in ids]

        gap = cfg.min_pick_gap_frames
        jaw_picks[audio] = picks(pick_frames(jaw, cfg.jaw_frames, gap, largest=True))
        # one spare each: a narrowest frame already on the sheet as a jaw peak is not shown twice
        narrow_picks[audio] = picks(pick_frames(ratios, cfg.narrow_frames + 1, gap, largest=False))
    chosen = round_robin(jaw_picks, cfg.jaw_frames, key=lambda p: -p.jaw)
    shown = {(p.audio, p.time_s) for p in chosen}
    narrow_picks = {a: [p for p in v if (p.audio, p.time_s) not in shown] for a, v in narrow_picks.items()}
    chosen += round_robin(narrow_picks, cfg.narrow_frames, key=lambda p: p.ratio)
    return [tile(p.thumb, f"{p.audio} {p.time_s:.1f}s m{p.ratio:.2f} j{p.jaw:.2f}", cfg) for p in chosen]


def head_turn_deg(motion: np.ndarray) -> np.ndarray:
    """Per frame, how far the head (pitch, yaw, roll) is from its median pose, in degrees."""
    head = np.degrees(motion[:, [idx("pitch"), idx("yaw"), idx("roll")]])
    return np.linalg.norm(head - np.nanmedian(head, 0), axis=1)


def listen_picks(motion: np.ndarray, cfg: PortraitsConfig) -> list[int]:
    """The frames where the avatar answers most, in time order: half its largest smiles, the rest its head
    furthest from its median pose, all at least `min_pick_gap_frames` apart."""
    gap = cfg.min_pick_gap_frames
    smiles = pick_frames(smile(motion), cfg.listen_pairs // 2, gap, largest=True)
    turn = head_turn_deg(motion)
    for c in smiles:
        turn[max(c - gap + 1, 0): c + gap] = np.nan
    return sorted(smiles + pick_frames(turn, cfg.listen_pairs - len(smiles), gap, largest=True))


def _listen(session, video: Path, result: PortraitResult, cfg: PortraitsConfig) -> list[np.ndarray]:
    """LISTENING metrics into `result`; the sheet's row: the user's frame beside the avatar's, where the
    avatar answers most."""
    seq, user = listen_phase(session, video, cfg)
    result.listen = {"video": video.name, **listen_metrics(seq, cfg)}
    if not len(seq):
        return []
    # the label gives the smile beyond the portrait's own (a smiling photo reads high at rest)
    answer = smile(seq.motion) - np.nan_to_num(result.rest.get("smile", 0.0))
    turn = head_turn_deg(seq.motion)
    user_times = np.array([t for t, _ in user])
    row = []
    for i in listen_picks(seq.motion, cfg):
        t = i / FPS
        if user:
            nearest = user[int(np.argmin(np.abs(user_times - t)))][1]
            row.append(tile(nearest, f"user {video.stem} {t:.1f}s", cfg))
        row.append(tile(seq.thumbs[i], f"avatar smile {answer[i]:+.2f} head {turn[i]:.1f}deg", cfg))
    return row


def evaluate_portrait(name: str, portrait: np.ndarray, audios: dict[str, np.ndarray],
                      speakers: dict[str, Speaker], listen_video: Path | None, out: Path,
                      cfg: PortraitsConfig, checkpoint: str | None = None) -> PortraitResult:
    """All three phases for one portrait and its contact sheet; a portrait without a usable face gives a
    result saying so."""
    from avatar_forcing.stream.options import SessionOptions
    from avatar_forcing.stream.session import AvatarSession

    result = PortraitResult(name)
    try:
        session = AvatarSession(checkpoint, portrait, SessionOptions(seed=cfg.seed))
    except NoFaceError as exc:
        result.status = f"no face: {exc}"
        write_sheet(out / f"{name}.png", [[tile(portrait, "no face", cfg)]], cfg)
        return result
    try:
        if session.renderer is None:
            raise InputError("eval portraits needs the rig backend (this checkpoint decodes another motion)")
        rest = _rest(session, result, cfg)
        if rest is None:
            write_sheet(out / f"{name}.png", [[tile(portrait, "no face in the renderer's image", cfg)]], cfg)
            return result
        ref_lm, first_row = rest
        rows = [first_row, _speech(session, ref_lm, audios, speakers, result, cfg)]
        if listen_video is not None:
            rows.append(_listen(session, listen_video, result, cfg))
        write_sheet(out / f"{name}.png", [r for r in rows if r], cfg)
    finally:
        session.close()
    result.row = summary_row(result, cfg)
    return result


# ---- contact sheet -----------------------------------------------------------------------------------

def tile(rgb: np.ndarray, label: str, cfg: PortraitsConfig) -> np.ndarray:
    """A thumbnail with its label on a dark band above it."""
    import cv2

    thumb = rgb if rgb.shape[0] == cfg.thumb_height else thumbnail(rgb, cfg.thumb_height)
    band = np.full((cfg.label_band, thumb.shape[1], 3), cfg.background, np.uint8)
    cv2.putText(band, label, (cfg.label_margin, cfg.label_band - cfg.label_margin * 2 + 1),
                cv2.FONT_HERSHEY_SIMPLEX, cfg.label_scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([band, thumb], 0)


def write_sheet(path: Path, rows: list[list[np.ndarray]], cfg: PortraitsConfig) -> None:
    import cv2

    gap = cfg.tile_gap
    strips = []
    for tiles in rows:
        spaced = []
        for t in tiles:
            spaced += [t, np.full((t.shape[0], gap, 3), cfg.background, np.uint8)]
        strips.append(np.concatenate(spaced[:-1], 1))
    width = max(s.shape[1] for s in strips)
    padded = []
    for s in strips:
        pad = np.full((s.shape[0], width - s.shape[1], 3), cfg.background, np.uint8)
        padded += [np.concatenate([s, pad], 1), np.full((gap, width, 3), cfg.background, np.uint8)]
    sheet = np.concatenate(padded[:-1], 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


# ---- table -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    key: str
    header: str
    fmt: str
    worst: str  # "min", "max" or "absmax": which end of the column is worst


COLUMNS: tuple[Column, ...] = (
    Column("psnr_db", "rest PSNR dB", ".1f", "min"),
    Column("face_psnr_db", "rest face PSNR dB", ".1f", "min"),
    Column("centre_shift_pct", "centre shift %", ".1f", "max"),
    Column("size_change_pct", "size change %", "+.1f", "absmax"),
    Column("roll_change_deg", "roll change deg", "+.1f", "absmax"),
    Column("eye_asym_change", "eye asym change", "+.3f", "absmax"),
    Column("mouth_p1", "mouth p1 (worst audio)", ".2f", "min"),
    Column("mouth_min", "mouth min", ".2f", "min"),
    Column("mouth_p1_calm", "mouth p1 calm speakers", ".2f", "min"),
    Column("p1_vs_speaker", "worst p1 - speaker p1 (others)", "+.2f", "min"),
    Column("jaw_r", "jaw r", ".2f", "min"),
    Column("asked_jaw_r", "asked jaw r", ".2f", "min"),
    Column("smile_range", "listen smile p90-p10", ".2f", "min"),
    Column("yaw_std_deg", "listen yaw std deg", ".1f", "min"),
    Column("roll_std_deg", "listen roll std deg", ".1f", "min"),
)


def summarize(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and worst of each column over the portraits that have a number there."""
    mean, worst = {}, {}
    for col in COLUMNS:
        values = np.array([r[col.key] for r in rows if np.isfinite(r.get(col.key, np.nan))])
        if not len(values):
            mean[col.key] = worst[col.key] = float("nan")
            continue
        mean[col.key] = float(values.mean())
        pick = {"min": values.argmin(), "max": values.argmax(), "absmax": np.abs(values).argmax()}[col.worst]
        worst[col.key] = float(values[pick])
    return {"mean": mean, "worst": worst}


def _cell(value: float, fmt: str) -> str:
    return format(value, fmt) if np.isfinite(value) else "-"


def markdown_table(results: list[PortraitResult], summary: dict[str, dict[str, float]]) -> str:
    lines = ["| portrait | " + " | ".join(c.header for c in COLUMNS) + " |",
             "|---|" + "---:|" * len(COLUMNS)]
    for r in results:
        if r.status != "ok":
            lines.append(f"| {r.name} | {r.status} |" + " |" * (len(COLUMNS) - 1))
            continue
        lines.append(f"| {r.name} | " + " | ".join(_cell(r.row[c.key], c.fmt) for c in COLUMNS) + " |")
    for label, row in summary.items():
        lines.append(f"| **{label}** | " + " | ".join(_cell(row[c.key], c.fmt) for c in COLUMNS) + " |")
    return "\n".join(lines)


def speaker_table(speakers: dict[str, Speaker], cfg: PortraitsConfig) -> str:
    lines = ["| audio | speaker mouth p1 | speaker jaw r | tracked frames | calm |",
             "|---|---:|---:|---:|---|"]
    for name, s in speakers.items():
        lines.append(f"| {name} | {_cell(s.mouth_p1, '.2f')} | {_cell(s.jaw_r, '.2f')} | {s.frames} | "
                     f"{'yes' if name in cfg.calm_speakers else ''} |")
    jaw = [s.jaw_r for s in speakers.values() if np.isfinite(s.jaw_r)]
    if jaw:
        lines.append(f"| **mean** | | {np.mean(jaw):.2f} | | |")
    return "\n".join(lines)


def _jsonable(value):
    """NaN and inf become null (JSON has neither)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# ---- inputs ------------------------------------------------------------------------------------------

def _natural(path: Path) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.name))


def default_audio_files(videos: Path) -> list[Path]:
    """Every .mp4 in `videos` with an audio stream (d0.mp4 has none)."""
    from avatar_forcing.media.video import probe

    if not videos.is_dir():
        return []
    return [p for p in sorted(videos.glob("*.mp4"), key=_natural) if probe(p).has_audio]


def user_smile_p90(path: Path, cfg: PortraitsConfig) -> float:
    """p90 of the tracked smile of a video's user over its first `seconds` (NaN: no face in it)."""
    smiles = []
    with FaceTracker(mode="image") as tracker:
        for k, (rgb, _) in enumerate(video_frames(path, cfg.seconds)):
            if k % cfg.listen_probe_every == 0 and (obs := tracker.track_frame(rgb)) is not None:
                smiles.append(float(smile(obs.motion[None])[0]))
    return float(np.percentile(smiles, 90)) if smiles else math.nan


def default_listen_video(videos: Path, cfg: PortraitsConfig) -> Path | None:
    """Of the videos with audio and a face, the one whose user smiles most (see `listen_probe_every`)."""
    scored = [(user_smile_p90(p, cfg), p) for p in default_audio_files(videos)]
    scored = [(level, p) for level, p in scored if np.isfinite(level)]
    return max(scored, key=lambda sp: sp[0])[1] if scored else None


def is_silent(pcm: np.ndarray, cfg: PortraitsConfig = PortraitsConfig()) -> bool:
    return len(pcm) == 0 or float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64)))) < cfg.silent_rms


def load_speech(files: Sequence[Path], cfg: PortraitsConfig, load: Callable[[Path], np.ndarray]
                ) -> dict[str, np.ndarray]:
    """The first `seconds` of each file; silent ones are left out, with a message (they say nothing about
    lip sync: the REST phase already covers a silent avatar)."""
    samples = round(cfg.seconds * SAMPLE_RATE)
    out = {}
    for path in files:
        pcm = load(path)[:samples]
        if is_silent(pcm, cfg):
            print(f"{path.name}: its first {cfg.seconds:g} s of audio are silent: left out of SPEECH")
            continue
        out[path.stem] = pcm
    return out


def portrait_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural)


# ---- command -----------------------------------------------------------------------------------------

def portraits_arguments(parser: argparse.ArgumentParser) -> None:
    d = PortraitsConfig()
    parser.add_argument("--portraits", default=str(REAL_DIR / "portraits"),
                        help="folder of portrait images ('none': only the built-in portrait)")
    parser.add_argument("--no-builtin", action="store_true", help="leave out the built-in astronaut")
    parser.add_argument("--limit-portraits", type=int, default=None, metavar="N",
                        help="only the first N portraits of the folder")
    parser.add_argument("--audio", nargs="+", default=None, metavar="FILE",
                        help=f"avatar audio files (default: every .mp4 with audio in {REAL_DIR / 'videos'})")
    parser.add_argument("--seconds", type=float, default=d.seconds,
                        help="seconds of each audio and of the listening video")
    parser.add_argument("--rest-seconds", type=float, default=d.rest_seconds)
    parser.add_argument("--listen-video", default="auto",
                        help="the user's video for LISTENING ('auto': of the videos with a face and audio, "
                             "the one whose user smiles most; 'none': skip)")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint directory (default: the shipped model)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("-o", "--out", default="out/eval_portraits", help="output directory")


def portraits_run(args: argparse.Namespace) -> int:
    from avatar_forcing.audio.io import load_audio
    from avatar_forcing.media.image import load_image
    from avatar_forcing.motion.renderer import default_portrait

    if args.seconds <= 0 or args.rest_seconds <= 0:
        raise InputError("--seconds and --rest-seconds must be positive")
    cfg = PortraitsConfig(seconds=args.seconds, rest_seconds=args.rest_seconds, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    videos = REAL_DIR / "videos"

    portraits: list[tuple[str, Path | None]] = [] if args.no_builtin else [(BUILTIN_NAME, None)]
    if args.portraits != "none":
        folder = Path(args.portraits)
        if folder.is_dir():
            files = portrait_files(folder)[: args.limit_portraits]
            portraits += [(p.stem, p) for p in files]
        else:
            print(f"no portrait folder at {folder}: skipping it")
    if not portraits:
        raise InputError("no portraits to evaluate (no folder and --no-builtin)")

    audio_files = [Path(a) for a in args.audio] if args.audio else default_audio_files(videos)
    if not audio_files:
        print(f"no audio files (none given, none with audio in {videos}): SPEECH is skipped")
    audios = load_speech(audio_files, cfg, load_audio)
    audio_files = [p for p in audio_files if p.stem in audios]
    speakers = {p.stem: speaker_reference(p, audios[p.stem], cfg)
                for p in tqdm(audio_files, desc="real speakers")}

    if args.listen_video == "none":
        listen_video = None
    elif args.listen_video == "auto":
        listen_video = default_listen_video(videos, cfg)
        if listen_video is None:
            print(f"no video with a face and audio in {videos}: LISTENING is skipped")
    else:
        listen_video = Path(args.listen_video)
        if not listen_video.is_file():
            raise InputError(f"listening video not found: {listen_video}")

    results = []
    for name, path in tqdm(portraits, desc="portraits"):
        image = default_portrait() if path is None else load_image(path)
        results.append(evaluate_portrait(name, image, audios, speakers, listen_video, out, cfg,
                                         args.checkpoint))

    summary = summarize([r.row for r in results if r.status == "ok"])
    table = markdown_table(results, summary)
    notes = (f"{len(results)} portraits; audios: {', '.join(audios) or 'none'} ({cfg.seconds:g} s each); "
             f"rest {cfg.rest_seconds:g} s; listening: {listen_video.name if listen_video else 'none'}; "
             f"seed {cfg.seed}. Mouth = width / face width as a ratio of the portrait's own; calm speakers: "
             f"{', '.join(cfg.calm_speakers)}.")
    md = f"# eval portraits\n\n{notes}\n\n{table}\n\n## Real speakers\n\n{speaker_table(speakers, cfg)}\n"
    (out / "table.md").write_text(md)
    (out / "table.json").write_text(json.dumps(_jsonable({
        "config": {"seconds": cfg.seconds, "rest_seconds": cfg.rest_seconds, "seed": cfg.seed,
                   "audios": [str(p) for p in audio_files],
                   "listen_video": str(listen_video) if listen_video else None,
                   "checkpoint": args.checkpoint},
        "portraits": [{"name": r.name, "status": r.status, "shape": list(r.shape), "rest": r.rest,
                       "speech": r.speech, "listen": r.listen, "row": r.row} for r in results],
        "summary": summary,
        "speakers": {k: {"mouth_p1": s.mouth_p1, "frames": s.frames} for k, s in speakers.items()},
    }), indent=1))
    print(table)
    print(f"wrote {out / 'table.md'}, {out / 'table.json'} and {len(results)} contact sheets in {out}")
    return 0

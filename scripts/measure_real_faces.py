"""What MediaPipe reads on real talking people: the units of the synthetic corpus and the rig's gains.

Every video in ``--videos`` is tracked with ``track_video`` (25 fps, the project's motion vector) and its
478 landmarks are kept from a second pass over the very same resampled frames. Motion is taken relative
to the video's own rest (``motion.neutral.rest_of_track``). Reported per video, pooled over the frames
of all videos, and as the mean of the per-video values (so one long clip cannot dominate):

* relative motion percentiles and std of the mouth/eye/brow/cheek channels and the pose, and each
  video's rest (the person's resting offsets, all 58 channels);
* blinks (rate, duration), head motion (std, Welch power per band), tracker jitter (2nd differences);
* face geometry from landmarks in the face frame (roll removed, lengths in 2-D face widths): mouth
  width ratio, inner lip gap, corner lift, eye opening, brow height, and their slopes against the
  blendshapes that should drive them (what a 2-D warp rig's gains should be).

    .venv/bin/python scripts/measure_real_faces.py   # ../shared/real/videos -> docs/benchmarks/...
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from avatar_forcing.errors import AvatarForcingError
from avatar_forcing.media.video import probe, read_video
from avatar_forcing.motion.neutral import RestConfig, rest_of_track, to_relative
from avatar_forcing.motion.tracker import NUM_LANDMARKS, FaceTracker, _resample, track_video
from avatar_forcing.motion.vector import FPS, MOTION_NAMES, POSE_NAMES, idx

Tree = dict[str, Any]

MEASURED_CHANNELS: tuple[str, ...] = (
    "jawOpen", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthSmileRight", "mouthClose",
    "mouthStretchLeft", "mouthStretchRight", "mouthPressLeft", "mouthPressRight", "mouthRollLower",
    "mouthUpperUpLeft", "mouthUpperUpRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthFrownLeft", "mouthFrownRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "browInnerUp", "browDownLeft", "browDownRight",
    "browOuterUpLeft", "browOuterUpRight", "cheekSquintLeft", "cheekSquintRight",
) + POSE_NAMES
ROTATIONS: tuple[str, ...] = ("pitch", "yaw", "roll")


@dataclass(frozen=True)
class Landmarks:
    """MediaPipe face-mesh indices used for the geometry (R/L = the subject's own sides)."""

    face: tuple[int, int] = (234, 454)  # right -> left cheek: the face frame's x axis and unit length
    mouth_corners: tuple[int, int] = (61, 291)
    inner_lips: tuple[int, int] = (13, 14)  # upper / lower inner lip, centre
    lip_centre: tuple[int, int] = (0, 17)  # upper / lower outer lip, centre
    nose_base: int = 2  # below the nose tip: fixed to the skull, the upper lip's reference
    right_eye: tuple[int, int, int, int] = (159, 145, 33, 133)  # upper lid, lower lid, corners
    left_eye: tuple[int, int, int, int] = (386, 374, 263, 362)
    brows: tuple[int, int] = (105, 334)  # right / left brow, middle of the upper contour


@dataclass(frozen=True)
class MeasureConfig:
    fps: float = FPS
    motion_percentiles: tuple[float, ...] = (1, 5, 50, 90, 95, 99)
    geometry_percentiles: tuple[float, ...] = (1, 5, 50, 95, 99)
    # Blink: the mean of eyeBlinkLeft/Right (absolute, as MediaPipe reads it) crosses this upward; the
    # event ends when it falls below blink_release (hysteresis); duration = full width at half height.
    blink_threshold: float = 0.5
    blink_release: float = 0.35
    max_blink_s: float = 1.0  # longer closures are counted apart (eyes shut, looking down), not blinks
    # Head motion spectrum: Welch segments of ~5 s (0.2 Hz resolution at 25 fps), bands in Hz.
    welch_segment_frames: int = 128
    band_edges_hz: tuple[float, float] = (0.5, 2.0)
    noise_channels: tuple[str, ...] = POSE_NAMES + ("jawOpen",)
    mad_to_std: float = 1.4826  # a normal variable's std per median absolute deviation
    # Rest mouth width: frames where jawOpen, mouthPucker and mouthFunnel are all below this quantile
    # (mouth closed and unrounded); fewer than min_rest_frames -> jawOpen alone decides.
    rest_mouth_quantile: float = 0.3
    rest_mouth_channels: tuple[str, ...] = ("jawOpen", "mouthPucker", "mouthFunnel")
    min_rest_frames: int = 10
    min_fit_frames: int = 10
    min_regressor_span: float = 0.1  # p95 - p5 of a blendshape below this: too still to fit a slope
    open_jaw: float = 0.1  # relative jawOpen above which the lips are apart (the lip gap's hinge)
    eps: float = 1e-6
    landmarks: Landmarks = field(default_factory=Landmarks)
    rest: RestConfig = field(default_factory=RestConfig)
    # Plot
    hist_bins: int = 32  # coarse enough that nine step outlines stay apart
    hist_channels: tuple[str, ...] = ("jawOpen", "mouthFunnel", "mouthPucker", "mouthSmile", "width_ratio")
    scatter_max_points: int = 4000
    figure_size: tuple[float, float] = (16.0, 9.5)
    dpi: int = 110


@dataclass
class Video:
    name: str
    motion: np.ndarray  # (T, 58) absolute, gaps filled
    mask: np.ndarray  # (T,) observed
    landmarks: np.ndarray  # (T, 478, 3) pixels, NaN where no face
    source_fps: float
    has_audio: bool
    tracker_mismatch: float  # max |motion of track_video - motion of the landmark pass|


# ---------------------------------------------------------------------------------------------- tracking


def track(path: Path, cfg: MeasureConfig, cache: Path | None = None) -> Video:
    """track_video's motion, plus the landmarks of the same frames (track_video keeps only motion).

    With ``cache``, the tracked arrays are kept there as ``<name>.npz`` and reused on the next run.
    """
    cached = cache / f"{path.stem}.npz" if cache is not None else None
    if cached is not None and cached.is_file():
        with np.load(cached) as d:
            return Video(path.stem, d["motion"], d["mask"], d["landmarks"], float(d["source_fps"]),
                         bool(d["has_audio"]), float(d["mismatch"]))
    track_ = track_video(path, fps=cfg.fps)
    landmarks: list[np.ndarray] = []
    motion: list[np.ndarray] = []
    missing = np.full((NUM_LANDMARKS, 3), np.nan, np.float32)
    with FaceTracker(mode="video") as tracker:
        # track_video's own (private) nearest-in-time resampling, so frame k is the same picture; the
        # motion of both passes is compared below (tracker_pass_mismatch, 0 when they agree).
        for rgb, time_s, n_out in _resample(read_video(path), cfg.fps):
            obs = tracker.track_frame(rgb, int(round(time_s * 1000)))
            landmarks.extend([missing if obs is None else obs.landmarks] * n_out)
            motion.extend([np.full(len(MOTION_NAMES), np.nan) if obs is None else obs.motion] * n_out)
    if len(landmarks) != len(track_):
        raise RuntimeError(f"{path.name}: landmark pass has {len(landmarks)} frames, track {len(track_)}")
    second = np.stack(motion)
    mismatch = float(np.nanmax(np.abs(second[track_.mask] - track_.values[track_.mask])))
    info = probe(path)
    video = Video(path.stem, track_.values, track_.mask, np.stack(landmarks), info.fps, info.has_audio,
                  mismatch)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, motion=video.motion, mask=video.mask, landmarks=video.landmarks,
                 source_fps=video.source_fps, has_audio=video.has_audio, mismatch=mismatch)
    return video


# ----------------------------------------------------------------------------------------------- helpers


def percentiles(x: np.ndarray, qs: tuple[float, ...]) -> Tree:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {f"p{q:g}": None for q in qs}
    return {f"p{q:g}": float(v) for q, v in zip(qs, np.percentile(x, qs), strict=True)}


def fit(y: np.ndarray, columns: dict[str, np.ndarray], cfg: MeasureConfig) -> Tree:
    """Least squares y ~ intercept + sum(coef * column) over the finite frames: coefficients, R^2.

    A regressor that barely moves in these frames (p95 - p5 below ``min_regressor_span``) would get an
    arbitrary slope, so it is left out of the fit (its coefficient is None, named in ``dropped``).
    """
    x = np.stack(list(columns.values()), axis=1)
    ok = np.isfinite(y) & np.isfinite(x).all(1)
    n = int(ok.sum())
    span = np.percentile(x[ok], 95, axis=0) - np.percentile(x[ok], 5, axis=0) if n else np.zeros(x.shape[1])
    used = [i for i in range(x.shape[1]) if span[i] >= cfg.min_regressor_span]
    dropped = [name for i, name in enumerate(columns) if i not in used]
    if n < cfg.min_fit_frames or not used:
        return {"n": n, "coef": None, "intercept": None, "r2": None, "dropped": dropped}
    design = np.concatenate([x[ok][:, used], np.ones((n, 1))], axis=1)
    beta, *_ = np.linalg.lstsq(design, y[ok], rcond=None)
    resid = y[ok] - design @ beta
    total = float(((y[ok] - y[ok].mean()) ** 2).sum())
    coef = dict.fromkeys(columns)
    coef.update({list(columns)[i]: float(b) for i, b in zip(used, beta[:-1], strict=True)})
    return {"n": n, "coef": coef, "intercept": float(beta[-1]),
            "r2": 1.0 - float((resid**2).sum()) / total if total > 0 else None, "dropped": dropped}


def mean_tree(trees: list[Any]) -> Any:
    """The mean of the numeric leaves of same-shaped trees, over the trees where a leaf is not None."""
    present = [t for t in trees if t is not None]
    if not present:
        return None
    if isinstance(present[0], dict):
        return {k: mean_tree([t.get(k) for t in present]) for k in present[0]}
    if all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in present):
        return float(np.mean(present))
    return None


def closures(x: np.ndarray, base: float, cfg: MeasureConfig) -> list[float]:
    """Durations in seconds of the eye closures in x (the mean eyeBlink, absolute; ``base`` = its rest).

    A closure is a run above ``blink_release`` that reaches ``blink_threshold`` (the hysteresis keeps
    a flicker around the threshold, e.g. eyes half shut while looking down, one event). Its duration
    is the full width at half height between ``base`` and its peak, interpolated between frames, so
    it does not depend on the threshold; at 25 fps a one-frame blink reads ~40 ms. A run cut by the
    clip's start or end has no measurable duration and is left out.
    """
    above = x > cfg.blink_release
    starts = np.flatnonzero(~above[:-1] & above[1:]) + 1  # first frame of each run
    ends = np.flatnonzero(above[:-1] & ~above[1:])  # last frame of each run
    out = []
    for a in starts:
        later = ends[ends >= a]
        if len(later) == 0 or x[a:later[0] + 1].max() <= cfg.blink_threshold:
            continue
        peak = a + int(np.argmax(x[a:later[0] + 1]))
        half = (base + x[peak]) / 2
        below = np.flatnonzero(x <= half)
        left, right = below[below < peak], below[below > peak]
        if len(left) == 0 or len(right) == 0:
            continue
        i, j = left[-1], right[0]  # x[i] <= half < x[i + 1] ... x[j - 1] > half >= x[j]
        t0 = i + (half - x[i]) / (x[i + 1] - x[i])
        t1 = j - 1 + (x[j - 1] - half) / (x[j - 1] - x[j])
        out.append((t1 - t0) / cfg.fps)
    return out


# ------------------------------------------------------------------------------------------- measurement


def relative_motion(video: Video, cfg: MeasureConfig) -> tuple[np.ndarray, np.ndarray]:
    """(rest (58,), relative motion (T, 58)) against the video's own rest."""
    rest = rest_of_track(video.motion[video.mask], cfg.rest)
    return rest, to_relative(video.motion, rest)


def motion_stats(rel: np.ndarray, cfg: MeasureConfig) -> Tree:
    out = {}
    for name in MEASURED_CHANNELS:
        x = rel[:, idx(name)].astype(np.float64)
        out[name] = {**percentiles(x, cfg.motion_percentiles), "std": float(np.std(x))}
    return out


def blink_stats(motion: np.ndarray, rest: np.ndarray, cfg: MeasureConfig) -> Tree:
    pair = [idx("eyeBlinkLeft"), idx("eyeBlinkRight")]
    blink = motion[:, pair].astype(np.float64).mean(1)
    durations = np.array(closures(blink, float(rest[pair].mean()), cfg))
    blinks = durations[durations <= cfg.max_blink_s]
    minutes = len(motion) / cfg.fps / 60
    return {"count": int(len(blinks)), "long_closures": int(len(durations) - len(blinks)),
            "minutes": minutes, "rate_per_min": len(blinks) / minutes,
            "duration_ms_median": float(np.median(blinks) * 1000) if len(blinks) else None,
            "duration_ms_mean": float(np.mean(blinks) * 1000) if len(blinks) else None,
            "durations_ms": [round(float(d) * 1000, 1) for d in blinks],
            "blink_p50": float(np.median(blink)), "blink_p99": float(np.percentile(blink, 99))}


def band_power(x: np.ndarray, cfg: MeasureConfig) -> np.ndarray:
    """Power of x in the bands (below, between, above band_edges_hz), from Welch's PSD."""
    from scipy.signal import welch

    freqs, psd = welch(x, fs=cfg.fps, nperseg=min(cfg.welch_segment_frames, len(x)), detrend="constant")
    lo, hi = cfg.band_edges_hz
    df = freqs[1] - freqs[0]
    return np.array([psd[freqs < lo].sum(), psd[(freqs >= lo) & (freqs <= hi)].sum(),
                     psd[freqs > hi].sum()]) * df


def jaw_coupling(motions: list[np.ndarray], name: str) -> float:
    """Correlation of frame-to-frame changes of a head angle and of jawOpen.

    Real head motion and speech are nearly independent at frame scale; a strong correlation means the
    tracker reads the moving jaw as head rotation (the high-frequency part of that angle is artefact).
    """
    da = np.concatenate([np.diff(m[:, idx(name)]) for m in motions])
    dj = np.concatenate([np.diff(m[:, idx("jawOpen")]) for m in motions])
    return float(np.corrcoef(da, dj)[0, 1])


def head_stats(motion: np.ndarray, cfg: MeasureConfig) -> Tree:
    lo, hi = cfg.band_edges_hz
    out = {}
    for name in ROTATIONS:
        deg = np.degrees(motion[:, idx(name)].astype(np.float64))
        power = band_power(deg, cfg)
        frac = power / max(power.sum(), cfg.eps)
        out[name] = {"std_deg": float(np.std(deg)), "power_deg2": power.tolist(),
                     f"frac_below_{lo:g}Hz": float(frac[0]), f"frac_{lo:g}_{hi:g}Hz": float(frac[1]),
                     f"frac_above_{hi:g}Hz": float(frac[2]), "jaw_coupling": jaw_coupling([motion], name)}
    return out


def second_differences(video: Video, cfg: MeasureConfig) -> dict[str, np.ndarray]:
    """Per noise channel, the 2nd differences over runs of three observed frames (degrees for angles)."""
    ok = video.mask[2:] & video.mask[1:-1] & video.mask[:-2]
    out = {}
    for name in cfg.noise_channels:
        x = video.motion[:, idx(name)].astype(np.float64)
        x = np.degrees(x) if name in ROTATIONS else x
        out[name] = np.diff(x, 2)[ok]
    return out


def noise_stats(d2: dict[str, np.ndarray], cfg: MeasureConfig) -> Tree:
    # For white tracker noise of std s, the 2nd difference has std sqrt(6) s; real motion adds to it,
    # so s_upper = std / sqrt(6) bounds the jitter from above; the MAD version ignores speech peaks.
    out = {}
    for name, d in d2.items():
        std = float(np.std(d))
        mad = float(cfg.mad_to_std * np.median(np.abs(d - np.median(d))))
        out[name] = {"d2_std": std, "d2_robust_std": mad, "jitter_upper": std / math.sqrt(6),
                     "jitter_robust": mad / math.sqrt(6), "unit": "deg" if name in ROTATIONS else "native"}
    return out


def face_frame(lms: np.ndarray, cfg: MeasureConfig) -> np.ndarray:
    """(T, 478, 2) landmarks in the face frame: x along the right->left cheek, y down, in face widths.

    Rotating into this frame removes head roll; dividing by the same frame's 2-D face width removes
    scale, so every length is in the person's own units.
    """
    a, b = cfg.landmarks.face
    xy = lms[..., :2].astype(np.float64)
    axis = xy[:, b] - xy[:, a]
    width = np.linalg.norm(axis, axis=1)
    u = axis / np.maximum(width, cfg.eps)[:, None]
    v = np.stack([-u[:, 1], u[:, 0]], axis=1)  # u turned 90 deg: image-down for an upright face
    centred = xy - ((xy[:, a] + xy[:, b]) / 2)[:, None]
    frame = np.stack([(centred * u[:, None]).sum(-1), (centred * v[:, None]).sum(-1)], axis=-1)
    return frame / np.maximum(width, cfg.eps)[:, None, None]


def dist(p: np.ndarray, i: int, j: int) -> np.ndarray:
    return np.linalg.norm(p[:, i] - p[:, j], axis=1)


def geometry_signals(video: Video, cfg: MeasureConfig) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-frame geometry (NaN where no face), each relative to the person's rest, and those rests."""
    lm = cfg.landmarks
    p = face_frame(video.landmarks, cfg)
    mouth = dist(p, *lm.mouth_corners)
    # Rest mouth: closed, unrounded frames (low jawOpen, pucker and funnel together).
    closed = video.mask.copy()
    for name in cfg.rest_mouth_channels:
        x = video.motion[:, idx(name)]
        closed &= x <= np.quantile(x[video.mask], cfg.rest_mouth_quantile)
    if closed.sum() < cfg.min_rest_frames:
        x = video.motion[:, idx("jawOpen")]
        closed = video.mask & (x <= np.quantile(x[video.mask], cfg.rest_mouth_quantile))
    rest_mouth = float(np.nanmedian(mouth[closed]))
    corners = (p[:, lm.mouth_corners[0], 1] + p[:, lm.mouth_corners[1], 1]) / 2
    centre = (p[:, lm.lip_centre[0], 1] + p[:, lm.lip_centre[1], 1]) / 2
    r_up, r_lo, r_c0, r_c1 = lm.right_eye
    l_up, l_lo, l_c0, l_c1 = lm.left_eye
    eye = (dist(p, r_up, r_lo) / dist(p, r_c0, r_c1) + dist(p, l_up, l_lo) / dist(p, l_c0, l_c1)) / 2
    eye_centre_y = p[:, [r_c0, r_c1, l_c0, l_c1], 1].mean(1)
    brow = eye_centre_y - p[:, list(lm.brows), 1].mean(1)  # up positive (the frame's y points down)
    upper_lip = (p[:, lm.nose_base, 1] - p[:, lm.inner_lips[0], 1]) / rest_mouth  # up positive
    rests = {"mouth_width_face_widths": rest_mouth, "lip_gap_rest_mouth_widths":
             float(np.nanmedian(dist(p, *lm.inner_lips)[closed])) / rest_mouth,
             "eye_opening": float(np.nanmedian(eye[video.mask])),
             "brow_height_face_widths": float(np.nanmedian(brow[video.mask]))}
    signals = {
        "width_ratio": mouth / rest_mouth,
        "lip_gap": dist(p, *lm.inner_lips) / rest_mouth,  # rest mouth widths
        "corner_lift": (centre - corners) / rest_mouth,  # rest mouth widths, up positive
        "eye_ratio": eye / rests["eye_opening"],  # lid gap over eye width, relative to its rest
        "brow_lift": brow - rests["brow_height_face_widths"],  # face widths above the rest brow
        "upper_lip_rise": upper_lip - float(np.nanmedian(upper_lip[closed])),  # rest mouth widths
    }
    return signals, rests


def blend_columns(rel: np.ndarray) -> dict[str, np.ndarray]:
    """The relative blendshapes the geometry is fit against (L/R pairs averaged)."""
    def pair(name: str) -> np.ndarray:
        return (rel[:, idx(name + "Left")] + rel[:, idx(name + "Right")]) / 2

    return {"jawOpen": rel[:, idx("jawOpen")], "mouthPucker": rel[:, idx("mouthPucker")],
            "mouthFunnel": rel[:, idx("mouthFunnel")], "mouthSmile": pair("mouthSmile"),
            "mouthStretch": pair("mouthStretch"), "mouthUpperUp": pair("mouthUpperUp"),
            "eyeBlink": pair("eyeBlink"),
            "eyeSquint": pair("eyeSquint"), "browInnerUp": rel[:, idx("browInnerUp")]}


def geometry_stats(s: dict[str, np.ndarray], cfg: MeasureConfig) -> Tree:
    """Percentiles of the geometry and its fits against the relative blendshapes (both in ``s``)."""
    qs = cfg.geometry_percentiles
    jaw_open = np.where(s["jawOpen"] > cfg.open_jaw, s["jawOpen"], np.nan)
    width_inputs = {k: s[k] for k in ("mouthPucker", "mouthFunnel", "mouthSmile", "mouthStretch", "jawOpen")}
    return {
        "width_ratio": {**percentiles(s["width_ratio"], qs),
                        "fit": fit(s["width_ratio"] - 1, width_inputs, cfg)},
        "lip_gap": {**percentiles(s["lip_gap"], qs),
                    "fit_jawOpen": fit(s["lip_gap"], {"jawOpen": s["jawOpen"]}, cfg),
                    # lips closed, the gap stays 0 while jawOpen moves a little: the slope past the hinge
                    "fit_jawOpen_open": fit(s["lip_gap"], {"jawOpen": jaw_open}, cfg)},
        "corner_lift": {
            **percentiles(s["corner_lift"], qs),
            "fit_smile": fit(s["corner_lift"], {"mouthSmile": s["mouthSmile"]}, cfg),
            # the lip-centre reference drops with the jaw, so the smile slope is also given with jaw held
            "fit_smile_jaw": fit(s["corner_lift"], {"mouthSmile": s["mouthSmile"], "jawOpen": s["jawOpen"]},
                                 cfg)},
        "eye_ratio": {
            **percentiles(s["eye_ratio"], qs),
            "fit_blink": fit(s["eye_ratio"] - 1, {"eyeBlink": s["eyeBlink"]}, cfg),
            "fit_squint": fit(s["eye_ratio"] - 1, {"eyeSquint": s["eyeSquint"]}, cfg),
            "fit_blink_squint": fit(s["eye_ratio"] - 1, {"eyeBlink": s["eyeBlink"],
                                                         "eyeSquint": s["eyeSquint"]}, cfg)},
        "brow_lift": {**percentiles(s["brow_lift"], qs),
                      "fit_browInnerUp": fit(s["brow_lift"], {"browInnerUp": s["browInnerUp"]}, cfg)},
        # the upper lip against the skull: jaw and smile held, since they move with mouthUpperUp
        "upper_lip_rise": {**percentiles(s["upper_lip_rise"], qs),
                           "fit_upper_up": fit(s["upper_lip_rise"], {k: s[k] for k in (
                               "mouthUpperUp", "jawOpen", "mouthSmile")}, cfg)},
    }


def pooled_head(videos: list[Video], cfg: MeasureConfig) -> Tree:
    lo, hi = cfg.band_edges_hz
    out = {}
    for r in ROTATIONS:
        # About each video's own rest (median), so differing resting poses add no spread; band power is
        # summed over videos weighted by their length.
        centred = np.concatenate([np.degrees(v.motion[:, idx(r)] - np.median(v.motion[v.mask, idx(r)]))
                                  for v in videos])
        power = sum(band_power(np.degrees(v.motion[:, idx(r)].astype(np.float64)), cfg) * len(v.motion)
                    for v in videos)
        frac = power / max(power.sum(), cfg.eps)
        out[r] = {"std_deg": float(np.std(centred)), f"frac_below_{lo:g}Hz": float(frac[0]),
                  f"frac_{lo:g}_{hi:g}Hz": float(frac[1]), f"frac_above_{hi:g}Hz": float(frac[2]),
                  "jaw_coupling": jaw_coupling([v.motion for v in videos], r)}
    return out


def measure(videos: list[Video], cfg: MeasureConfig) -> tuple[Tree, dict[str, dict[str, np.ndarray]]]:
    """The report (per video, pooled over frames, mean of videos) and the per-video plot data."""
    per_video: Tree = {}
    plot_data: dict[str, dict[str, np.ndarray]] = {}
    rels, d2s, geo_rests = [], [], []
    for v in videos:
        rest, rel = relative_motion(v, cfg)
        geom, geo_rest = geometry_signals(v, cfg)
        d2 = second_differences(v, cfg)
        obs = v.mask
        signals = {k: x[obs] for k, x in {**geom, **blend_columns(rel)}.items()}
        per_video[v.name] = {
            "frames": len(v.motion), "observed_fraction": float(obs.mean()), "source_fps": v.source_fps,
            "has_audio": v.has_audio, "tracker_pass_mismatch": v.tracker_mismatch,
            "rest": dict(zip(MOTION_NAMES, map(float, rest), strict=True)),
            "relative": motion_stats(rel[obs], cfg), "blink": blink_stats(v.motion, rest, cfg),
            "head": head_stats(v.motion, cfg), "noise": noise_stats(d2, cfg),
            "geometry": {"rest": geo_rest, **geometry_stats(signals, cfg)},
        }
        rels.append(rel[obs])
        d2s.append(d2)
        geo_rests.append(geo_rest)
        plot_data[v.name] = signals
    keys = plot_data[videos[0].name]
    pooled_signals = {k: np.concatenate([d[k] for d in plot_data.values()]) for k in keys}
    blinks = [per_video[n]["blink"] for n in per_video]
    count, minutes = sum(b["count"] for b in blinks), sum(b["minutes"] for b in blinks)
    durations = np.concatenate([b["durations_ms"] for b in blinks])
    pooled = {
        "frames": int(sum(len(r) for r in rels)), "videos": len(videos),
        "relative": motion_stats(np.concatenate(rels), cfg),
        "blink": {"count": count, "long_closures": sum(b["long_closures"] for b in blinks),
                  "minutes": minutes, "rate_per_min": count / minutes,
                  "duration_ms_median": float(np.median(durations)) if len(durations) else None,
                  "duration_ms_p10_p90": np.percentile(durations, [10, 90]).tolist() if len(durations)
                  else None},
        "head": pooled_head(videos, cfg),
        "noise": noise_stats({k: np.concatenate([d[k] for d in d2s]) for k in cfg.noise_channels}, cfg),
        "geometry": {"rest": {k: float(np.median([r[k] for r in geo_rests])) for k in geo_rests[0]},
                     **geometry_stats(pooled_signals, cfg)},
    }
    means = mean_tree([{k: t[k] for k in ("rest", "relative", "blink", "head", "noise", "geometry")}
                       for t in per_video.values()])
    rest_spread = {n: float(np.std([t["rest"][n] for t in per_video.values()])) for n in MOTION_NAMES}
    notes = {
        "relative": "motion minus the video's rest (rest_of_track); pose: radians, face widths, log ratio",
        "pooled": "observed frames of all videos together; mean_of_videos: mean of the per-video values",
        "fits": "a blendshape with p95 - p5 < min_regressor_span in a video is left out of its fits "
                "(coef None, listed in dropped); mean_of_videos averages the videos that have a value",
        "pooled_geometry_rest": "median over people of the per-video rests",
        "mean_of_videos_rest_std": "std over people of the rest values (how much resting faces differ)",
    }
    report = {"notes": notes, "config": asdict(cfg), "pooled": pooled,
              "mean_of_videos": {**means, "rest_std": rest_spread}, "videos": per_video}
    return report, plot_data


# -------------------------------------------------------------------------------------------------- plot


def plot(plot_data: dict[str, dict[str, np.ndarray]], path: Path, cfg: MeasureConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {"jawOpen": "relative jawOpen", "mouthFunnel": "relative mouthFunnel",
              "mouthPucker": "relative mouthPucker", "mouthSmile": "relative mouthSmile (L+R)/2",
              "width_ratio": "mouth width / rest mouth width"}
    names = list(plot_data)
    colours = plt.get_cmap("tab10")(np.arange(len(names)) % 10)
    fig, axes = plt.subplots(2, 3, figsize=cfg.figure_size)
    for ax, key in zip(axes.flat, cfg.hist_channels, strict=False):
        pooled = np.concatenate([plot_data[n][key] for n in names])
        pooled = pooled[np.isfinite(pooled)]
        lo, hi = np.percentile(pooled, [0.1, 99.9])
        bins = np.linspace(lo, hi, cfg.hist_bins)
        ax.hist(pooled, bins=bins, density=True, color="0.8", label=f"pooled ({len(pooled)} fr)")
        for n, c in zip(names, colours, strict=True):
            ax.hist(plot_data[n][key], bins=bins, density=True, histtype="step", color=c, lw=1.6, label=n)
        ax.set_yscale("log")
        ax.set_title(f"{titles[key]}: p50 {np.median(pooled):.3f}, p99 {np.percentile(pooled, 99):.3f}")
        ax.set_ylabel("density (log)")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8, ncol=2)
    ax = axes.flat[len(cfg.hist_channels)]
    rng = np.random.default_rng(0)
    for n, c in zip(names, colours, strict=True):
        x, y = plot_data[n]["mouthPucker"], plot_data[n]["width_ratio"]
        keep = rng.permutation(len(x))[: cfg.scatter_max_points // len(names)]
        ax.scatter(x[keep], y[keep], s=5, color=c, alpha=0.5, label=n)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xlabel("relative mouthPucker")
    ax.set_ylabel("mouth width / rest")
    ax.set_title("mouth width ratio vs pucker (colours as in the legend)")
    ax.grid(alpha=0.3)
    fig.suptitle("What MediaPipe reads on the real videos (relative to each person's rest, 25 fps)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=cfg.dpi)
    plt.close(fig)


# -------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=Path("../shared/real/videos"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/real_faces.json"))
    parser.add_argument("--plot", type=Path, default=Path("docs/images/real_faces.png"))
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep the tracked motion and landmarks here (outside the repo) and reuse them")
    args = parser.parse_args(argv)
    if not args.videos.is_dir():
        print(f"no real videos at {args.videos}: nothing to measure (skipped)")
        return 0
    paths = sorted(args.videos.glob("*.mp4"), key=lambda p: (len(p.stem), p.stem))
    if not paths:
        print(f"no .mp4 files in {args.videos}: nothing to measure (skipped)")
        return 0
    cfg = MeasureConfig()
    videos = []
    for path in tqdm(paths, desc="videos", unit="video"):
        try:
            videos.append(track(path, cfg, args.cache))
        except AvatarForcingError as exc:  # no face, unreadable file: report it, measure the rest
            tqdm.write(f"skipped {path.name}: {exc}")
    if not videos:
        print("no video could be tracked: nothing to measure")
        return 1
    report, plot_data = measure(videos, cfg)
    report["command"] = shlex.join(["python", "scripts/measure_real_faces.py",
                                    *(argv if argv is not None else sys.argv[1:])])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    plot(plot_data, args.plot, cfg)
    p = report["pooled"]
    print(f"wrote {args.out} and {args.plot}: {p['frames']} frames of {p['videos']} videos, "
          f"{p['blink']['rate_per_min']:.1f} blinks/min")
    return 0


if __name__ == "__main__":
    sys.exit(main())

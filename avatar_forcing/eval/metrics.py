"""Interaction metrics (FD, P-FD, SID, Var, rPCC) and reaction probes (lip sync, nods, smile mirroring).

The interaction metrics follow the DIM reference definitions in ``METRICS.md`` (beside DESIGN.md);
where papers disagree the variant is a parameter and is named in every result key. Notation:
``x`` = the other person's (the user's) motion, ``gt`` = the avatar's ground truth, ``pred`` = the
generated motion; each is a list of clips of shape (T, D). Expression = the 52 blendshapes, pose =
the 6 pose numbers (:func:`expression` / :func:`pose` split a (T, 58) array).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg
import scipy.signal

from avatar_forcing.errors import InputError
from avatar_forcing.motion.smile_onsets import SmileOnsetConfig, smile, smile_onsets
from avatar_forcing.motion.tracker import fill_gaps
from avatar_forcing.motion.vector import BLENDSHAPE_NAMES, BLENDSHAPE_SLICE, FPS, POSE_SLICE, idx

Clips = Sequence[np.ndarray]
FD_EPS = 1e-6  # added to both covariances when the matrix square root is not finite
SID_EPS = 1e-6  # inside the log of the Shannon index, as in DIM
MOUTH_NAMES = tuple(n for n in BLENDSHAPE_NAMES if n.startswith(("mouth", "jaw")))


def expression(motion: np.ndarray) -> np.ndarray:
    """The blendshape columns of a (..., 58) motion array."""
    return np.asarray(motion)[..., BLENDSHAPE_SLICE]


def pose(motion: np.ndarray) -> np.ndarray:
    """The 6 pose columns (pitch, yaw, roll, tx, ty, log_scale) of a (..., 58) motion array."""
    return np.asarray(motion)[..., POSE_SLICE]


def _clips(clips: Clips, what: str) -> list[np.ndarray]:
    out = [np.asarray(c, np.float64) for c in clips]
    if not out:
        raise InputError(f"{what}: no clips")
    for c in out:
        if c.ndim != 2:
            raise InputError(f"{what}: clips must be (frames, dims), got {c.shape}")
    if len({c.shape[1] for c in out}) != 1:
        raise InputError(f"{what}: clips have different numbers of dimensions")
    return out


def _paired(a: Clips, b: Clips, what: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    a, b = _clips(a, what), _clips(b, what)
    if len(a) != len(b) or any(p.shape != q.shape for p, q in zip(a, b, strict=True)):
        raise InputError(f"{what}: the two sets of clips must have the same shapes")
    return a, b


# ---- Fréchet distance ----

def _sqrtm(m: np.ndarray) -> np.ndarray:
    out = scipy.linalg.sqrtm(m)
    return out[0] if isinstance(out, tuple) else out  # SciPy < 1.17 may return (sqrtm, error)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FD between the frame distributions of two (T, D) clips (mean + covariance with T - 1)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1 = np.atleast_2d(np.cov(a, rowvar=False))
    s2 = np.atleast_2d(np.cov(b, rowvar=False))
    root = _sqrtm(s1 @ s2)
    if not np.isfinite(root).all():
        eye = FD_EPS * np.eye(len(s1))
        root = _sqrtm((s1 + eye) @ (s2 + eye))
    root = np.real(root)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(root))


def fd(gt: Clips, pred: Clips) -> float:
    """FD per clip, averaged over clips (DIM)."""
    gt, pred = _paired(gt, pred, "FD")
    return float(np.mean([frechet_distance(g, p) for g, p in zip(gt, pred, strict=True)]))


def pfd(x: Clips, gt: Clips, pred: Clips) -> float:
    """P-FD: FD of the per-frame concatenation [x, gt] against [x, pred], per clip, averaged."""
    x, gt = _paired(x, gt, "P-FD")
    _, pred = _paired(gt, pred, "P-FD")
    return float(np.mean([frechet_distance(np.concatenate([u, g], 1), np.concatenate([u, p], 1))
                          for u, g, p in zip(x, gt, pred, strict=True)]))


# ---- diversity and variance ----

def shannon_index(labels: np.ndarray, k: int) -> float:
    """-sum p log2(p + eps) of the histogram of cluster labels over k clusters."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=k).astype(np.float64)
    p = counts / counts.sum()
    return float(-np.sum(p * np.log2(p + SID_EPS)))


def sid(gt: Clips, pred: Clips, k: int) -> float:
    """SID: k-means fitted on all ground-truth frames, Shannon index of the predicted frames' clusters."""
    from sklearn.cluster import KMeans

    gt_all = np.concatenate(_clips(gt, "SID"))
    pred_all = np.concatenate(_clips(pred, "SID"))
    if len(gt_all) < k:
        raise InputError(f"SID with k={k} needs at least {k} ground-truth frames, got {len(gt_all)}")
    km = KMeans(n_clusters=k, random_state=0, n_init="auto").fit(gt_all)
    return shannon_index(km.predict(pred_all), k)


VarVariant = Literal["flat", "mean_dim", "sum_dim"]


def var(clips: Clips, variant: VarVariant = "flat") -> float:
    """Variance over all frames: ``flat`` = all dims together (DIM); ``mean_dim`` / ``sum_dim`` =
    mean / sum of the per-dimension variances (DualTalk, lm-listener). ddof 0."""
    frames = np.concatenate(_clips(clips, "Var"))
    if variant == "flat":
        return float(np.var(frames))
    per_dim = np.var(frames, axis=0)
    if variant == "mean_dim":
        return float(per_dim.mean())
    if variant == "sum_dim":
        return float(per_dim.sum())
    raise ValueError(f"unknown Var variant {variant!r}")


# ---- reactiveness ----

def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def pcc_flat(a: Clips, b: Clips) -> float:
    """Pearson correlation of all clips concatenated and raveled (DIM)."""
    a, b = _paired(a, b, "PCC")
    return pearson(np.concatenate(a), np.concatenate(b))


def pcc_per_dim(a: Clips, b: Clips) -> float:
    """Per-dimension Pearson correlation over time (clips concatenated), averaged over dimensions.
    Dimensions that are constant in either input have no correlation and are skipped."""
    a, b = _paired(a, b, "PCC")
    a, b = np.concatenate(a), np.concatenate(b)
    rs = [pearson(a[:, d], b[:, d]) for d in range(a.shape[1])]
    rs = [r for r in rs if np.isfinite(r)]
    return float(np.mean(rs)) if rs else float("nan")


RpccVariant = Literal["flat", "per_dim"]


def rpcc(x: Clips, gt: Clips, pred: Clips, variant: RpccVariant = "flat") -> float:
    """rPCC = |r(gt, x) - r(pred, x)|; ``flat`` (DIM) or ``per_dim`` (lm-listener)."""
    if variant not in ("flat", "per_dim"):
        raise ValueError(f"unknown rPCC variant {variant!r}")
    r = pcc_flat if variant == "flat" else pcc_per_dim
    return abs(r(gt, x) - r(pred, x))


@dataclass(frozen=True)
class InteractionConfig:
    sid_k_exp: int = 40  # DIM; Avatar Forcing reports K = 15
    sid_k_pose: int = 20  # DIM; Avatar Forcing reports K = 9
    var_variant: VarVariant = "flat"


def interaction_metrics(x: Clips, gt: Clips, pred: Clips, cfg: InteractionConfig = InteractionConfig()
                        ) -> dict[str, float]:
    """All interaction metrics for (T, 58) clips, with the variant in every key."""
    out: dict[str, float] = {}
    for part, split, k in (("exp", expression, cfg.sid_k_exp), ("pose", pose, cfg.sid_k_pose)):
        xs, gs, ps = [split(c) for c in x], [split(c) for c in gt], [split(c) for c in pred]
        out[f"fd_{part}"] = fd(gs, ps)
        out[f"pfd_{part}"] = pfd(xs, gs, ps)
        out[f"rpcc_flat_{part}"] = rpcc(xs, gs, ps, "flat")
        out[f"rpcc_per_dim_{part}"] = rpcc(xs, gs, ps, "per_dim")
        out[f"sid_k{k}_{part}"] = sid(gs, ps, k)
        out[f"sid_k{k}_{part}_gt"] = sid(gs, gs, k)
        out[f"var_{cfg.var_variant}_{part}"] = var(ps, cfg.var_variant)
        out[f"var_{cfg.var_variant}_{part}_gt"] = var(gs, cfg.var_variant)
    return out


# ---- lip sync ----

@dataclass(frozen=True)
class LipSyncConfig:
    sample_rate: int = 16000
    fps: float = FPS
    max_lag_s: float = 0.4  # search window for the audio -> mouth lag, both directions


def audio_envelope(pcm: np.ndarray, cfg: LipSyncConfig = LipSyncConfig()) -> np.ndarray:
    """RMS of the audio per motion frame: (T,) for T = len(pcm) // samples_per_frame."""
    hop = int(round(cfg.sample_rate / cfg.fps))
    pcm = np.asarray(pcm, np.float64).ravel()
    frames = len(pcm) // hop
    return np.sqrt(np.mean(pcm[: frames * hop].reshape(frames, hop) ** 2, axis=1))


def lagged_correlation(lead: np.ndarray, follow: np.ndarray, lags: Sequence[int]) -> tuple[float, int]:
    """Best Pearson correlation of ``follow[t + lag]`` with ``lead[t]`` over ``lags`` (frames)."""
    lead, follow = np.asarray(lead, np.float64), np.asarray(follow, np.float64)
    n = min(len(lead), len(follow))
    best = (-np.inf, 0)
    for lag in lags:
        if lag >= 0:
            a, b = lead[: n - lag], follow[lag:n]
        else:
            a, b = lead[-lag:n], follow[: n + lag]
        if len(a) < 3:
            continue
        r = pearson(a, b)
        if np.isfinite(r) and r > best[0]:
            best = (r, lag)
    if not np.isfinite(best[0]):
        return float("nan"), 0
    return float(best[0]), int(best[1])


@dataclass
class LipSyncScore:
    correlation: float  # Pearson(audio envelope, jawOpen) at the best lag
    lag_s: float  # positive = the mouth moves after the sound
    mouth_mae: float | None  # mean |pred - gt| of the mouth blendshapes, when gt is given


def lip_sync(pcm: np.ndarray, motion: np.ndarray, gt: np.ndarray | None = None,
             cfg: LipSyncConfig = LipSyncConfig()) -> LipSyncScore:
    """Lip-sync proxy: the avatar audio's envelope against mouth opening (jawOpen)."""
    env = audio_envelope(pcm, cfg)
    jaw = np.asarray(motion)[:, idx("jawOpen")]
    max_lag = int(round(cfg.max_lag_s * cfg.fps))
    r, lag = lagged_correlation(env, jaw, range(-max_lag, max_lag + 1))
    mae = None
    if gt is not None:
        cols = [idx(n) for n in MOUTH_NAMES]
        n = min(len(motion), len(gt))
        mae = float(np.mean(np.abs(np.asarray(motion)[:n, cols] - np.asarray(gt)[:n, cols])))
    return LipSyncScore(r, lag / cfg.fps, mae)


# ---- seams between streamed blocks ----

@dataclass(frozen=True)
class SeamConfig:
    first: int = 50  # frames of a session's first block (ModelConfig.window, first_block "full")
    block: int = 10  # frames of every later block (ModelConfig.block_size)
    channels: tuple[str, ...] = ("pitch", "yaw", "roll")


def head_speed(motion: np.ndarray, cfg: SeamConfig = SeamConfig()) -> np.ndarray:
    """(T - 1,) radians a frame over `cfg.channels`: entry k is the step from frame k to k + 1."""
    rot = np.asarray(motion, np.float64)[:, [idx(n) for n in cfg.channels]]
    return np.linalg.norm(np.diff(rot, axis=0), axis=1)


def block_profile(motion: np.ndarray, cfg: SeamConfig = SeamConfig()) -> np.ndarray:
    """(block,) mean head speed (`head_speed`) into each frame position of the blocks after the first:
    entry 0 is the step across a block boundary, from the last frame of one block."""
    speed = head_speed(motion, cfg)
    frame = np.arange(1, len(speed) + 1)
    after = frame >= cfg.first
    position = (frame - cfg.first) % cfg.block
    return np.array([speed[after & (position == p)].mean() if (after & (position == p)).any() else np.nan
                     for p in range(cfg.block)])


def block_seam(motion: np.ndarray, cfg: SeamConfig = SeamConfig()) -> float:
    """Head speed across streaming block boundaries over the speed inside blocks: about 1 for motion without
    seams (the ground truth); above 1, the head jumps at every boundary, 25 / block times a second."""
    return seam_ratio(block_profile(motion, cfg))


def seam_ratio(profile: np.ndarray) -> float:
    """A `block_profile`'s speed into position 0 over its mean speed into the others (nan if undefined)."""
    inside = np.nanmean(profile[1:]) if np.isfinite(profile[1:]).any() else np.nan
    return float(profile[0] / inside) if np.isfinite(profile[0]) and inside > 0 else float("nan")


def block_modulation(profile: np.ndarray) -> float:
    """How much a `block_profile` varies with the position in a block: its std over its mean (about 0 for
    the ground truth). Unlike `seam_ratio` it also counts a slow-down before the boundary: the head that
    slows, then jumps, 2.5 times a second, stutters."""
    mean = np.nanmean(profile)
    return float(np.nanstd(profile) / mean) if mean > 0 else float("nan")


# ---- nods ----

@dataclass(frozen=True)
class NodConfig:
    fps: float = FPS
    band_hz: tuple[float, float] = (0.5, 4.0)  # a nod lasts ~0.25-1 s; slower drifts are posture
    filter_order: int = 2
    min_velocity: float = 0.25  # rad/s of downward pitch speed (a 5 deg nod in 0.3 s peaks ~0.45)
    min_gap_s: float = 0.5  # two detections closer than this are one nod
    window_s: float = 1.5  # a nod counts for an event if it starts within this long after it


def head_dips(pitch: np.ndarray, starts: np.ndarray, cfg: NodConfig = NodConfig()) -> np.ndarray:
    """The largest head-down pitch change (positive pitch = down) within cfg.window_s after each start frame,
    relative to the pitch there; starts whose window runs past the end are left out. A nod too small for
    `detect_nods` still shows in its mean."""
    pitch = np.asarray(pitch, np.float64).ravel()
    w = round(cfg.window_s * cfg.fps)
    starts = [a for a in np.asarray(starts, int) if a + w <= len(pitch)]
    return np.array([pitch[a: a + w].max() - pitch[a] for a in starts])


def detect_nods(pitch: np.ndarray, cfg: NodConfig = NodConfig()) -> np.ndarray:
    """Times (s) of nods: peaks of the band-passed downward pitch velocity (positive pitch = down)."""
    pitch = np.asarray(pitch, np.float64).ravel()
    nyquist = cfg.fps / 2
    band = [cfg.band_hz[0] / nyquist, min(cfg.band_hz[1] / nyquist, 0.99)]
    sos = scipy.signal.butter(cfg.filter_order, band, btype="band", output="sos")
    padlen = min(len(pitch) - 1, 3 * (2 * len(sos) + 1))
    if padlen < 1:
        return np.zeros(0)
    smooth = scipy.signal.sosfiltfilt(sos, pitch, padlen=padlen)
    velocity = np.gradient(smooth) * cfg.fps
    peaks, _ = scipy.signal.find_peaks(velocity, height=cfg.min_velocity,
                                       distance=max(1, int(round(cfg.min_gap_s * cfg.fps))))
    return peaks / cfg.fps


@dataclass
class NodScore:
    recall: float  # events followed by a nod within the window
    mean_latency_s: float  # event -> first nod, over the events that got one (nan if none)
    precision: float  # nods that answer some event
    events: int
    nods: int


def nod_response(pitch: np.ndarray, event_times_s: Sequence[float], cfg: NodConfig = NodConfig()) -> NodScore:
    """How often and how fast the head nods after given events (e.g. the user's phrase ends)."""
    nods = detect_nods(pitch, cfg)
    events = np.asarray(event_times_s, np.float64)
    latencies = []
    answering = np.zeros(len(nods), bool)
    for e in events:
        inside = (nods >= e) & (nods <= e + cfg.window_s)
        answering |= inside
        if inside.any():
            latencies.append(nods[inside][0] - e)
    return NodScore(
        recall=len(latencies) / len(events) if len(events) else float("nan"),
        mean_latency_s=float(np.mean(latencies)) if latencies else float("nan"),
        precision=float(answering.mean()) if len(nods) else float("nan"),
        events=len(events), nods=len(nods))


# ---- smile mirroring ----

@dataclass(frozen=True)
class MirrorConfig:
    fps: float = FPS
    min_lag_s: float = 0.3  # people mirror a smile after a short delay, not instantly
    max_lag_s: float = 1.0


def smile_mirroring(user: np.ndarray, avatar: np.ndarray, cfg: MirrorConfig = MirrorConfig()
                    ) -> tuple[float, float]:
    """(correlation, lag in s) of the avatar's smile following the user's, best lag in the window."""
    lo, hi = int(round(cfg.min_lag_s * cfg.fps)), int(round(cfg.max_lag_s * cfg.fps))
    r, lag = lagged_correlation(smile(user), smile(avatar), range(lo, hi + 1))
    return r, lag / cfg.fps


MAX_LAG_S = 1.6  # the longest a reaction may follow its cause: the smile lag and a smile's answer


@dataclass(frozen=True)
class AnswerConfig:
    """When a smile is answered: the user's smile begins (``SmileOnsetConfig``), the avatar does not smile
    yet (below `not_yet` over the `before_s` before), and the avatar's smile reaches `answered_at` of the
    user's level within `within_s` (MAX_LAG_S). By this rule the corpus' listeners answer 88 % of such
    smiles, after a median 0.64 s (docs/EVALUATION.md, round 9)."""

    smile: SmileOnsetConfig = SmileOnsetConfig()
    not_yet: float = 0.1
    before_s: float = 0.2
    answered_at: float = 0.5
    within_s: float = MAX_LAG_S
    horizon_s: float = 3.0  # how long to wait for a late answer (its latency; inf after)


def filled(x: np.ndarray) -> np.ndarray:
    """A 1-D signal with its NaN (untracked) frames interpolated; all NaN if fewer than 2 are finite."""
    x = np.asarray(x, np.float64)
    ok = np.isfinite(x)
    if ok.sum() < 2:
        return np.full_like(x, np.nan)
    return fill_gaps(x[:, None], ok)[:, 0]


def smile_answers(user_smile: np.ndarray, avatar_smile: np.ndarray, cfg: AnswerConfig = AnswerConfig()
                  ) -> np.ndarray:
    """Seconds from each of the user's smiles to the avatar's answer (inf: none within cfg.horizon_s), for
    the smiles whose whole answer window is inside the clip; untracked frames are interpolated."""
    theirs, mine = filled(user_smile), filled(avatar_smile)
    n = min(len(theirs), len(mine))
    if not (np.isfinite(theirs[:n]).all() and np.isfinite(mine[:n]).all()):  # untracked throughout
        return np.zeros(0)
    theirs, mine = theirs[:n], mine[:n]
    before_n, within_n = (round(x * FPS) for x in (cfg.before_s, cfg.within_s))
    times = []
    for t, level in smile_onsets(theirs, cfg.smile):
        if t + within_n > n or mine[max(0, t - before_n):t + 1].max() >= cfg.not_yet:
            continue
        hits = np.flatnonzero(mine[t:t + round(cfg.horizon_s * FPS)] >= cfg.answered_at * level)
        times.append(hits[0] / FPS if len(hits) else math.inf)
    return np.array(times)


def answer_scores(user_smile: np.ndarray, avatar_smile: np.ndarray, cfg: AnswerConfig = AnswerConfig()
                  ) -> dict[str, float]:
    times = smile_answers(user_smile, avatar_smile, cfg)
    answered = times[times <= cfg.within_s]
    return {"smiles": float(len(times)),
            "smiles_answered": float(len(answered) / len(times)) if len(times) else math.nan,
            "answer_s": float(np.median(answered)) if len(answered) else math.nan}

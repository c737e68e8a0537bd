"""The listening avatar on real people: each real video plays the USER (its frames as the webcam, its
audio as the microphone) while the avatar stays silent; MediaPipe re-tracks the rendered frames (what a
viewer sees) and the avatar's reactions are measured against the user's own tracked face and voice.

    avatar-forcing eval reactions [--videos DIR] [--portrait FILE] [--model CHECKPOINT] [--baseline]
                                  [--seconds S] [-o out/eval_reactions]

Per video (all at 25 fps on one timeline, user and avatar frame k at k / 25 s):
  * smile_range: p90 - p10 of the avatar's re-tracked smile (mean of mouthSmileLeft/Right);
    smile_lag_r: the best Pearson r of the avatar's smile against the user's over lags 0..1.6 s (the
    avatar following), with its lag smile_lag_s; asked_smile_range: the same range of the smile the model
    asked the renderer for (what the avatar meant to show; far above smile_range = lost in rendering);
    smiles / smiles_answered / answer_s: the user's smiles that meet an avatar not smiling yet
    (``AnswerConfig``), the fraction the avatar answers in time, and the median seconds it takes;
  * yaw_ratio, roll_ratio: the avatar's re-tracked yaw / roll std over the user's tracked std;
  * nods after the user's phrase ends: phrase ends from the user's audio (``phrase_ends``), nods from the
    re-tracked pitch (metrics.detect_nods); nod_precision = nods starting within the response window after
    some phrase end, nod_recall = phrase ends answered by a nod; *_chance = the same for nods placed at
    random times at the same rate (see ``chance_scores``);
  * longest_freeze_s: the longest run of frames whose re-tracked landmarks move less than
    ``freeze_motion`` face widths per frame (flagged when >= ``freeze_flag_s``).
``--baseline`` runs the talking-only condition too: the same model and portrait with no user input at all
(no webcam, no microphone), so every block is generated with the user condition dropped. Its output does
not depend on the video, so it is generated once, for the longest video, and each video is scored on its
prefix (the session reseeds its noise at every reset: the prefix is what a run of that length gives).
Writes table.md, table.json, sheet.png (per video: the user at their calmest and broadest smile, each
beside the avatar 0.8 s later), and per video a plot (PNG) and a side-by-side video (user | avatar, MP4
with the user's audio).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avatar_forcing.errors import InputError
from avatar_forcing.eval.metrics import (
    MAX_LAG_S,
    AnswerConfig,
    LipSyncConfig,
    NodConfig,
    answer_scores,
    audio_envelope,
    detect_nods,
    filled,
    lagged_correlation,
    nod_response,
    smile,
)
from avatar_forcing.eval.portraits import (
    REAL_DIR,
    SAMPLE_RATE,
    PortraitsConfig,
    Recorder,
    Retracked,
    _cell,
    _jsonable,
    _natural,
    drain,
    face_view,
    face_width_2d,
    listen_metrics,
    percentile_range,
    rest_phase,
    tile,
    video_frames,
    write_sheet,
)
from avatar_forcing.motion.vector import FPS, MOTION_DIM, idx
from avatar_forcing.stream.options import SessionOptions, settle_after

MODEL, BASELINE = "model", "baseline"


@dataclass(frozen=True)
class ReactionsConfig:
    seconds: float | None = None        # per video; None: the whole video
    seed: int = 0
    max_lag_s: float = MAX_LAG_S        # the avatar's smile may follow the user's by up to this
    # voice activity on the user's RMS envelope (40 ms frames): a frame is voiced when its RMS is above
    # both an absolute floor (silent tracks: portraits.PortraitsConfig.silent_rms) and a point between the
    # clip's quiet and loud levels (so neither a quiet recording nor a noisy room has a fixed threshold;
    # a fraction of the loud level alone put the pauses of the real videos, at ~0.05 RMS, above it)
    vad_floor_rms: float = 0.005
    vad_quiet_percentile: float = 5.0   # the clip's background
    vad_loud_percentile: float = 95.0   # its loud speech
    vad_relative: float = 0.3           # voiced above 30 % of the way from quiet to loud
    min_pause_s: float = 0.3            # a phrase ends where speech is followed by at least this silence
    min_phrase_s: float = 0.3           # shorter voiced bursts (clicks, breaths) are not phrases
    nod: NodConfig = field(default_factory=NodConfig)  # nod peaks and the 1.5 s response window
    answer: AnswerConfig = field(default_factory=AnswerConfig)  # when a user's smile counts as answered
    # a frame is still when its landmarks move less than this on average (face widths per frame:
    # 2e-4 = 0.5 % of the face per second; a listening avatar's median is ~5e-4)
    freeze_motion: float = 2e-4
    freeze_flag_s: float = 2.0
    portraits: PortraitsConfig = field(default_factory=PortraitsConfig)  # thumbnails, smile percentiles
    video_label: str = "user | avatar"
    sheet_response_s: float = 0.8  # the contact sheet shows the avatar this long after the user's moment


# ---- signals -------------------------------------------------------------------------------------------

def smile_lag(user_smile: np.ndarray, avatar_smile: np.ndarray, cfg: ReactionsConfig = ReactionsConfig()
              ) -> tuple[float, float]:
    """(best r, its lag in s) of avatar_smile[t + lag] against user_smile[t], lag 0..max_lag_s."""
    n = min(len(user_smile), len(avatar_smile))
    lags = range(min(round(cfg.max_lag_s * FPS), n - 3) + 1)  # a lag past the clip has no overlap to judge
    r, lag = lagged_correlation(filled(user_smile), filled(avatar_smile), lags)
    return r, lag / FPS


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of every run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def voiced_segments(pcm: np.ndarray, cfg: ReactionsConfig = ReactionsConfig()) -> list[tuple[float, float]]:
    """(start, end) seconds of the user's phrases: voiced frames, pauses shorter than min_pause_s bridged,
    phrases shorter than min_phrase_s dropped."""
    env = audio_envelope(pcm, LipSyncConfig(sample_rate=SAMPLE_RATE, fps=FPS))
    if not len(env):
        return []
    quiet, loud = np.percentile(env, [cfg.vad_quiet_percentile, cfg.vad_loud_percentile])
    level = max(cfg.vad_floor_rms, float(quiet + cfg.vad_relative * (loud - quiet)))
    voiced = env >= level
    for a, b in _runs(~voiced):
        if a > 0 and b < len(voiced) and (b - a) / FPS < cfg.min_pause_s:  # a pause inside a phrase
            voiced[a:b] = True
    return [(a / FPS, b / FPS) for a, b in _runs(voiced) if (b - a) / FPS >= cfg.min_phrase_s]


def phrase_ends(pcm: np.ndarray, cfg: ReactionsConfig = ReactionsConfig()) -> np.ndarray:
    """Times (s) where a phrase is followed by at least min_pause_s of silence inside the clip."""
    duration = len(pcm) / SAMPLE_RATE
    return np.array([end for _, end in voiced_segments(pcm, cfg) if end + cfg.min_pause_s <= duration])


def chance_scores(events: np.ndarray, nods: int, duration: float, window: float) -> tuple[float, float]:
    """(precision, recall) of `nods` nods at independent uniform times: a nod answers with the probability
    that it lands in the union of the windows after the events; an event is answered unless all nods miss
    its window."""
    if not len(events) or duration <= 0:
        return float("nan"), float("nan")
    covered, reach = 0.0, 0.0  # the union of [e, e + window] within the clip, events in order
    for e in np.sort(events):
        a, b = max(float(e), reach), min(float(e) + window, duration)
        covered += max(0.0, b - a)
        reach = max(reach, b)
    recall = 1.0 - (1.0 - min(1.0, window / duration)) ** nods
    return covered / duration, float(recall)


def nod_scores(pitch: np.ndarray, ends: np.ndarray, cfg: ReactionsConfig = ReactionsConfig()
               ) -> dict[str, float]:
    """Nods in the re-tracked pitch against the phrase ends whose whole response window is in the clip;
    precision and recall are NaN without such an event (nothing to answer)."""
    duration = len(pitch) / FPS
    events = np.asarray(ends, np.float64)
    events = events[events <= duration - cfg.nod.window_s]
    pitch = filled(pitch)
    if not np.isfinite(pitch).all():
        return dict(nod_precision=math.nan, nod_recall=math.nan, nods=math.nan,
                    phrase_ends=float(len(events)), nod_precision_chance=math.nan, nod_recall_chance=math.nan)
    score = nod_response(pitch, events, cfg.nod)
    precision_chance, recall_chance = chance_scores(events, score.nods, duration, cfg.nod.window_s)
    judged = len(events) > 0
    return dict(nod_precision=score.precision if judged else math.nan, nod_recall=score.recall,
                nods=float(score.nods), phrase_ends=float(len(events)),
                nod_precision_chance=precision_chance, nod_recall_chance=recall_chance)


def landmark_motion(landmarks: np.ndarray) -> np.ndarray:
    """(T - 1,) mean displacement of the landmarks from each frame to the next, in face widths (NaN where
    either frame is untracked)."""
    lm = np.asarray(landmarks, np.float64)
    if len(lm) < 2:
        return np.zeros(0)
    step = np.linalg.norm(np.diff(lm[:, :, :2], axis=0), axis=2).mean(1)
    widths = np.array([face_width_2d(f) for f in lm[1:]])
    return step / widths


def longest_freeze(landmarks: np.ndarray, cfg: ReactionsConfig = ReactionsConfig()) -> tuple[float, float]:
    """(seconds, start s) of the longest run of still frames (an untracked frame breaks a run)."""
    motion = landmark_motion(landmarks)
    still = np.isfinite(motion) & (motion < cfg.freeze_motion)
    runs = _runs(still)
    if not runs:
        return 0.0, 0.0
    a, b = max(runs, key=lambda r: r[1] - r[0])
    return (b - a + 1) / FPS, a / FPS  # b - a steps span b - a + 1 frames


def reaction_metrics(user: Retracked, avatar: Retracked, ends: np.ndarray,
                     cfg: ReactionsConfig = ReactionsConfig()) -> dict[str, float]:
    """The avatar's reactions to one user (both (T, 58) on one 25 fps timeline)."""
    n = min(len(user), len(avatar))
    user, avatar = prefix(user, n), prefix(avatar, n)
    mine, theirs = listen_metrics(avatar, cfg.portraits), listen_metrics(user, cfg.portraits)
    user_smile, avatar_smile = smile(user.motion), smile(avatar.motion)
    r, lag = smile_lag(user_smile, avatar_smile, cfg)
    freeze, freeze_at = longest_freeze(avatar.landmarks, cfg)

    def ratio(key: str) -> float:
        return mine[key] / theirs[key] if theirs[key] > 0 else math.nan

    asked = smile(avatar.asked) if len(avatar.asked) else np.full(1, np.nan)
    return {
        "smile_range": mine["smile_range"], "smile_lag_r": r, "smile_lag_s": lag,
        "asked_smile_range": percentile_range(asked, cfg.portraits.listen_low_high),
        **answer_scores(user_smile, avatar_smile, cfg.answer),
        "yaw_ratio": ratio("yaw_std_deg"), "roll_ratio": ratio("roll_std_deg"),
        **nod_scores(avatar.motion[:, idx("pitch")], ends, cfg),
        "longest_freeze_s": freeze, "freeze_at_s": freeze_at, "frozen": float(freeze >= cfg.freeze_flag_s),
        "tracked": avatar.tracked,
    }


def user_summary(user: Retracked, ends: np.ndarray, cfg: ReactionsConfig) -> dict[str, float]:
    theirs = listen_metrics(user, cfg.portraits)
    return {"smile_range": theirs["smile_range"], "yaw_std_deg": theirs["yaw_std_deg"],
            "roll_std_deg": theirs["roll_std_deg"], "phrase_ends": float(len(ends)), "tracked": user.tracked}


# ---- running the session -------------------------------------------------------------------------------

def webcam(video: Path, seconds: float) -> Iterator[tuple[np.ndarray, float]]:
    """The video as a 25 fps webcam: at tick k (k / 25 s) the latest frame shown by then, up to `seconds`
    (a 30 fps video drops one frame in six), so user and avatar share one timeline."""
    total = round(seconds * FPS)
    k, last = 0, None
    for rgb, t in video_frames(video, seconds):
        while last is not None and k < total and k / FPS < t:
            yield last, k / FPS
            k += 1
        last = rgb
    while last is not None and k < total:  # the last frame stays on screen until the video's end
        yield last, k / FPS
        k += 1


def listen_to(session, video: Path, pcm: np.ndarray, seconds: float, cfg: ReactionsConfig
              ) -> tuple[Retracked, Retracked]:
    """(user, avatar) re-tracked: each webcam frame with the microphone up to its time, generating whatever
    is due as a live session would; the avatar says nothing."""
    total = round(seconds * FPS)
    user = Recorder(total, cfg.portraits, thumbs=True)
    avatar = Recorder(total, cfg.portraits, thumbs=True, view=face_view(session, cfg.portraits))
    session.reset()
    pushed = 0
    with tqdm(total=total, desc=f"  {video.stem} listening", unit="frame", leave=False) as bar:
        for rgb, t in webcam(video, seconds):
            user.add(rgb)
            upto = min(len(pcm), round(t * SAMPLE_RATE))
            if upto > pushed:
                session.push_user_audio(pcm[pushed:upto], SAMPLE_RATE)
                pushed = upto
            session.push_user_frame(rgb, t)
            drain(session, avatar, bar)
        if pushed < len(pcm):
            session.push_user_audio(pcm[pushed:], SAMPLE_RATE)
        session.advance_to(seconds)
        session.finish()
        drain(session, avatar, bar)
    return user.close(), avatar.close()


def talking_only(session, seconds: float, cfg: ReactionsConfig) -> Retracked:
    """No user input at all (no webcam, no microphone) and a silent avatar: every block drops the user
    condition. This is the portraits eval's REST phase, for `seconds`."""
    return rest_phase(session, replace(cfg.portraits, rest_seconds=seconds))


def prefix(seq: Retracked, frames: int) -> Retracked:
    return Retracked(seq.motion[:frames], seq.landmarks[:frames], asked=seq.asked[:frames])



# ---- pictures ------------------------------------------------------------------------------------------

def write_plot(path: Path, name: str, pcm: np.ndarray, ends: np.ndarray, user: Retracked,
               avatars: dict[str, Retracked], cfg: ReactionsConfig) -> None:
    """User vs avatar(s) over time: audio envelope with phrases, smile, yaw, roll, pitch with nods."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env = audio_envelope(pcm, LipSyncConfig(sample_rate=SAMPLE_RATE, fps=FPS))
    t = np.arange(len(user)) / FPS
    colours = {MODEL: "tab:red", BASELINE: "tab:grey"}
    fig, axes = plt.subplots(5, 1, figsize=(12, 10), sharex=True)
    axes[0].plot(np.arange(len(env)) / FPS, env, color="black", lw=0.8)
    for a, b in voiced_segments(pcm, cfg):
        axes[0].axvspan(a, b, color="tab:blue", alpha=0.15)
    axes[0].set_ylabel("user audio RMS\n(phrases shaded)")
    axes[1].plot(t, smile(user.motion), color="tab:blue", label="user")
    for key, seq in avatars.items():
        axes[1].plot(t[: len(seq)], smile(seq.motion), color=colours[key], label=f"avatar ({key})")
        if len(seq.asked):
            axes[1].plot(t[: len(seq.asked)], smile(seq.asked), color=colours[key], ls="--", lw=0.8,
                         label=f"asked of the renderer ({key})")
    axes[1].set_ylabel("smile\n(re-tracked; dashed: asked)")
    for ax, channel in zip(axes[2:], ("yaw", "roll", "pitch"), strict=True):
        user_deg = np.degrees(user.motion[:, idx(channel)])
        ax.plot(t, user_deg - np.nanmedian(user_deg), color="tab:blue", label="user")
        for key, seq in avatars.items():
            deg = np.degrees(seq.motion[:, idx(channel)])
            ax.plot(t[: len(seq)], deg - np.nanmedian(deg), color=colours[key], label=f"avatar ({key})")
        ax.set_ylabel(f"{channel} deg\n(minus median)")
    for key, seq in avatars.items():
        nods = detect_nods(filled(seq.motion[:, idx("pitch")]), cfg.nod) if len(seq) > 1 else []
        for n in nods:
            axes[4].axvline(n, color=colours[key], ls=":", lw=1.2)
    for ax in axes:
        for e in ends:
            ax.axvline(e, color="tab:green", lw=1.0, alpha=0.7)
    axes[1].legend(loc="upper right", fontsize=8)
    axes[4].set_xlabel("s (green: user phrase ends; dotted: avatar nods)")
    fig.suptitle(f"{name}: the avatar listening to a real user")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_side_by_side(path: Path, user: Retracked, avatar: Retracked, pcm: np.ndarray,
                       cfg: ReactionsConfig) -> None:
    """user | avatar (its face), one frame per 25 fps tick, with the user's audio."""
    from avatar_forcing.media.video import VideoWriter

    frames = min(len(user.thumbs), len(avatar.thumbs))
    audio = pcm[: round(frames / FPS * SAMPLE_RATE)]
    with VideoWriter(path, fps=FPS, audio=audio, sample_rate=SAMPLE_RATE) as writer:
        for k in range(frames):
            left = tile(user.thumbs[k], f"user {k / FPS:.1f}s", cfg.portraits)
            right = tile(avatar.thumbs[k], "avatar", cfg.portraits)
            gap = np.full((left.shape[0], cfg.portraits.tile_gap, 3), cfg.portraits.background, np.uint8)
            writer.write(np.concatenate([left, gap, right], 1))


def sheet_row(name: str, user: Retracked, avatar: Retracked, cfg: ReactionsConfig) -> list[np.ndarray]:
    """One video's row of the contact sheet: the user at their calmest and at their broadest smile, each
    beside the avatar `sheet_response_s` later (when an answer is due)."""
    user_smile, avatar_smile = filled(smile(user.motion)), filled(smile(avatar.motion))
    frames = min(len(user.thumbs), len(avatar.thumbs))
    if frames == 0 or not np.isfinite(user_smile[:frames]).any():
        return []
    lag = round(cfg.sheet_response_s * FPS)
    row = []
    for k in (int(np.nanargmin(user_smile[:frames])), int(np.nanargmax(user_smile[:frames]))):
        answer = min(k + lag, frames - 1)
        row += [tile(user.thumbs[k], f"{name} user {k / FPS:.1f}s smile {user_smile[k]:.2f}", cfg.portraits),
                tile(avatar.thumbs[answer], f"avatar {answer / FPS:.1f}s smile {avatar_smile[answer]:.2f}",
                     cfg.portraits)]
    return row


def save_signals(path: Path, pcm: np.ndarray, user: Retracked, avatars: dict[str, Retracked]) -> None:
    """The tracked signals behind a video's numbers (to re-score without re-running the model)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"user_audio": pcm, "user_motion": user.motion, "user_landmarks": user.landmarks}
    for key, seq in avatars.items():
        arrays |= {f"{key}_motion": seq.motion, f"{key}_landmarks": seq.landmarks, f"{key}_asked": seq.asked}
    np.savez_compressed(path, **{k: np.asarray(v, np.float32) for k, v in arrays.items()})


# ---- table ---------------------------------------------------------------------------------------------

COLUMNS: tuple[tuple[str, str, str], ...] = (  # key, header, format
    ("smile_range", "smile p90-p10", ".3f"),
    ("asked_smile_range", "asked smile p90-p10", ".3f"),
    ("smile_lag_r", "smile lag r", ".2f"),
    ("smile_lag_s", "lag s", ".2f"),
    ("smiles", "user smiles", ".0f"),
    ("smiles_answered", "answered in time", ".2f"),
    ("answer_s", "answer s", ".2f"),
    ("yaw_ratio", "yaw std / user's", ".2f"),
    ("roll_ratio", "roll std / user's", ".2f"),
    ("phrase_ends", "phrase ends", ".0f"),
    ("nods", "nods", ".0f"),
    ("nod_precision", "nod precision", ".2f"),
    ("nod_recall", "nod recall", ".2f"),
    ("nod_precision_chance", "precision at chance", ".2f"),
    ("nod_recall_chance", "recall at chance", ".2f"),
    ("longest_freeze_s", "longest freeze s", ".2f"),
    ("tracked", "tracked", ".2f"),
)


# A freeze anywhere is a failure, so the summary row takes the worst video's, not the mean.
WORST_OF_VIDEOS = ("longest_freeze_s", "frozen")


def overall(rows: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each number over the videos where it is finite (the worst for WORST_OF_VIDEOS)."""
    out = {}
    for key in rows[0] if rows else ():
        values = [r[key] for r in rows if np.isfinite(r[key])]
        summary = np.max if key in WORST_OF_VIDEOS else np.mean
        out[key] = float(summary(values)) if values else math.nan
    return out


def markdown_table(videos: list[dict], summary: dict[str, dict[str, float]], cfg: ReactionsConfig) -> str:
    lines = ["| video | run | " + " | ".join(h for _, h, _ in COLUMNS) + " |",
             "|---|---|" + "---:|" * len(COLUMNS)]

    def row(label: str, run: str, m: dict[str, float]) -> str:
        cells = [_cell(m[k], f) for k, _, f in COLUMNS]
        if m["longest_freeze_s"] >= cfg.freeze_flag_s:
            cells[-2] += " FROZEN"
        return f"| {label} | {run} | " + " | ".join(cells) + " |"

    for v in videos:
        for run in (MODEL, BASELINE):
            if run in v:
                lines.append(row(v["name"], run, v[run]))
    for run, m in summary.items():
        lines.append(row("**mean**", run, m))
    return "\n".join(lines)


# ---- command -------------------------------------------------------------------------------------------

def video_seconds(path: Path, cap: float | None) -> float:
    """The video's length (its frames over its rate when declared), at most `cap`."""
    from avatar_forcing.media.video import probe

    info = probe(path)
    length = info.frames / info.fps if info.frames and info.fps else info.duration_s
    if length <= 0:  # undeclared: count the frames
        length = sum(1 for _ in webcam(path, math.inf)) / FPS if cap is None else cap
    return length if cap is None else min(length, cap)


def user_audio(path: Path, seconds: float) -> np.ndarray:
    """The video's audio track for `seconds`, zero-padded; silence for a video without one."""
    from avatar_forcing.audio.io import load_audio
    from avatar_forcing.media.video import probe

    samples = round(seconds * SAMPLE_RATE)
    pcm = load_audio(path)[:samples] if probe(path).has_audio else np.zeros(0, np.float32)
    return np.pad(pcm, (0, samples - len(pcm))).astype(np.float32)


def reactions_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--videos", default=str(REAL_DIR / "videos"),
                        help="folder of real videos to play the user (each .mp4)")
    parser.add_argument("--limit-videos", type=int, default=None, metavar="N", help="only the first N videos")
    parser.add_argument("--portrait", default=None, metavar="FILE",
                        help="the avatar's portrait (default: the built-in portrait)")
    parser.add_argument("--model", default=None, metavar="CHECKPOINT",
                        help="checkpoint directory (default: the shipped model)")
    parser.add_argument("--baseline", action="store_true",
                        help="also run the talking-only condition (no user input at all) as chance level")
    parser.add_argument("--seconds", type=float, default=None, help="at most this much of each video")
    parser.add_argument("--seed", type=int, default=ReactionsConfig.seed)
    parser.add_argument("--cfg-user", type=float, default=None,
                        help="w_u, the guidance towards the user (default: the session's, as served live)")
    parser.add_argument("--history-noise", type=float, default=None,
                        help="flow time of the generated past (default: the session's, as served live)")
    parser.add_argument("--pose-guidance", type=float, default=None,
                        help="the head pose's share of the guidance (default: the session's, as served live)")
    parser.add_argument("--overlap", type=int, default=None,
                        help="frames sampled past each block and dropped (default: the session's)")
    parser.add_argument("--guidance-interval", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                        help="flow times of the guided Euler steps (default: the session's, all)")
    parser.add_argument("--settle-after", type=settle_after, default=SessionOptions.settle_after_s,
                        metavar="S|off", help="silence after which the head settles (default: as served)")
    parser.add_argument("-o", "--out", default="out/eval_reactions", help="output directory")
    parser.add_argument("--rescore", action="store_true",
                        help="score again from the signals/ an earlier run saved in --out (no model run)")


def reactions_run(args: argparse.Namespace) -> int:
    from avatar_forcing.stream.session import AvatarSession

    if args.seconds is not None and args.seconds <= 0:
        raise InputError("--seconds must be positive")
    cfg = ReactionsConfig(seconds=args.seconds, seed=args.seed,
                          portraits=replace(PortraitsConfig(), seed=args.seed))
    out = Path(args.out)
    if args.rescore:
        videos = rescore(out, cfg)
        if not videos:
            raise InputError(f"--rescore: no signals/*.npz in {out} (run without --rescore first)")
        write_tables(out, videos, cfg, args, [v["name"] for v in videos])
        return 0
    folder = Path(args.videos)
    if not folder.is_dir():
        print(f"no video folder at {folder}: nothing to evaluate (eval reactions needs real videos)")
        return 0
    paths = sorted(folder.glob("*.mp4"), key=_natural)[: args.limit_videos]
    if not paths:
        print(f"no .mp4 videos in {folder}: nothing to evaluate")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    lengths = {p: video_seconds(p, cfg.seconds) for p in paths}

    options = SessionOptions(seed=cfg.seed)
    if args.cfg_user is not None:
        options.cfg_user = args.cfg_user
    if args.history_noise is not None:
        options.history_noise = args.history_noise
    if args.pose_guidance is not None:
        options.pose_guidance = args.pose_guidance
    if args.overlap is not None:
        options.overlap = args.overlap
    if args.guidance_interval is not None:
        options.guidance_interval = tuple(args.guidance_interval)
    options.settle_after_s = args.settle_after
    session = AvatarSession(args.model, args.portrait, options)
    videos: list[dict] = []
    sheet: list[list[np.ndarray]] = []
    try:
        if session.renderer is None:
            raise InputError("eval reactions needs the rig backend (this checkpoint decodes another motion)")
        base = None
        if args.baseline:  # independent of the user: one run, each video scored on its prefix
            print(f"talking-only baseline: {max(lengths.values()):.1f} s")
            base = talking_only(session, max(lengths.values()), cfg)
        for path in tqdm(paths, desc="videos"):
            pcm = user_audio(path, lengths[path])
            user, avatar = listen_to(session, path, pcm, lengths[path], cfg)
            avatars = {MODEL: avatar} | ({} if base is None else {BASELINE: prefix(base, len(user))})
            write_side_by_side(out / f"{path.stem}.mp4", user, avatar, pcm, cfg)
            sheet.append(sheet_row(path.stem, user, avatar, cfg))
            save_signals(out / "signals" / f"{path.stem}.npz", pcm, user, avatars)
            videos.append(score_video(path.stem, pcm, user, avatars, out, cfg))
            del user, avatar, avatars  # the thumbnails of a long video are large
    finally:
        session.close()
    if any(sheet):
        write_sheet(out / "sheet.png", [row for row in sheet if row], cfg.portraits)
    write_tables(out, videos, cfg, args, [str(p) for p in paths])
    return 0


def score_video(name: str, pcm: np.ndarray, user: Retracked, avatars: dict[str, Retracked], out: Path,
                cfg: ReactionsConfig) -> dict:
    """One video's entry of table.json, and its plot."""
    ends = phrase_ends(pcm, cfg)
    entry = {"name": name, "seconds": len(user) / FPS, "phrase_end_times": ends.tolist(),
             "user": user_summary(user, ends, cfg)}
    entry |= {run: reaction_metrics(user, seq, ends, cfg) for run, seq in avatars.items()}
    write_plot(out / f"{name}.png", name, pcm, ends, user, avatars, cfg)
    return entry


def rescore(out: Path, cfg: ReactionsConfig) -> list[dict]:
    """Every video's entry again from the signals a previous run saved in `out` (the model is not run;
    the side-by-side videos are left as they are)."""
    videos = []
    for path in sorted((out / "signals").glob("*.npz"), key=_natural):
        with np.load(path) as z:
            arrays = {k: z[k].astype(np.float64) for k in z.files}
        user = Retracked(arrays["user_motion"], arrays["user_landmarks"])
        avatars = {run: Retracked(arrays[f"{run}_motion"], arrays[f"{run}_landmarks"],
                                  asked=arrays.get(f"{run}_asked", np.zeros((0, MOTION_DIM))))
                   for run in (MODEL, BASELINE) if f"{run}_motion" in arrays}
        videos.append(score_video(path.stem, arrays["user_audio"], user, avatars, out, cfg))
    return videos


def write_tables(out: Path, videos: list[dict], cfg: ReactionsConfig, args: argparse.Namespace,
                 sources: list[str]) -> None:
    """table.md and table.json (and the table printed)."""
    folder = args.videos
    summary = {run: overall([v[run] for v in videos]) for run in (MODEL, BASELINE) if run in videos[0]}
    table = markdown_table(videos, summary, cfg)
    w_user = "default" if args.cfg_user is None else f"{args.cfg_user:g}"
    noise = "" if args.history_noise is None else f"; history noise {args.history_noise:g}"
    noise += "" if args.pose_guidance is None else f"; pose guidance {args.pose_guidance:g}"
    noise += "" if args.overlap is None else f"; overlap {args.overlap}"
    noise += "; settle off" if args.settle_after is None else f"; settle after {args.settle_after:g} s"
    noise += "" if args.guidance_interval is None else "; guidance interval {:g}-{:g}".format(
        *args.guidance_interval)
    notes = (f"{len(videos)} videos of {folder} as the user; portrait: {args.portrait or 'built-in'}; model: "
             f"{args.model or 'shipped default'}; seed {cfg.seed}; w_u {w_user}{noise}; "
             f"{'whole videos' if cfg.seconds is None else f'at most {cfg.seconds:g} s each'}. "
             f"baseline = the same model with no user input (talking only). Freeze: landmarks moving < "
             f"{cfg.freeze_motion:g} face widths per frame; FROZEN marks >= {cfg.freeze_flag_s:g} s; "
             "the mean row's longest freeze is the worst video's.")
    if args.rescore:
        notes += " Re-scored from the signals of an earlier run (signals/)."
    (out / "table.md").write_text(f"# eval reactions\n\n{notes}\n\n{table}\n")
    (out / "table.json").write_text(json.dumps(_jsonable({
        "config": {"videos": sources, "rescored": args.rescore, "portrait": args.portrait,
                   "model": args.model,
                   "baseline": args.baseline, "seconds": cfg.seconds, "seed": cfg.seed,
                   "cfg_user": args.cfg_user, "history_noise": args.history_noise,
                   "pose_guidance": args.pose_guidance, "overlap": args.overlap,
                   "guidance_interval": args.guidance_interval, "settle_after_s": args.settle_after,
                   "max_lag_s": cfg.max_lag_s, "min_pause_s": cfg.min_pause_s,
                   "min_phrase_s": cfg.min_phrase_s, "vad_relative": cfg.vad_relative,
                   "nod_window_s": cfg.nod.window_s,
                   "freeze_motion": cfg.freeze_motion, "freeze_flag_s": cfg.freeze_flag_s},
        "videos": videos,
        "overall": summary,
    }), indent=1))
    print(table)
    print(f"wrote {out / 'table.md'}, {out / 'table.json'} and a plot and a video per video in {out}")


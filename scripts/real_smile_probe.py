"""Which part of a real user's face does the model answer? (issue 16)

Each real video is tracked as the webcam would be (MediaPipe, the user's online rest) and its motion is
fed straight to a motion-only session (no renderer, no re-tracking, silent microphone) in variants: the
whole face, the smile channels alone, and the smile plus one group of other channels. Prints the p90 - p10
range of the smile the model asks for in each. A model that answers "smile alone" but not "whole face"
reads a real smile as something else because of what comes with it.

    .venv/bin/python scripts/real_smile_probe.py runs/x/dpo/latest [--videos ../shared/real/videos]
        [--names d9,d10] [--cfg-user 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avatar_forcing.eval.portraits import _natural
from avatar_forcing.eval.reactions import video_seconds, webcam
from avatar_forcing.motion.neutral import OnlineRest
from avatar_forcing.motion.tracker import FaceTracker
from avatar_forcing.motion.vector import BLENDSHAPE_NAMES, FPS, POSE_SLICE, idx
from avatar_forcing.stream.inputs import SAMPLE_RATE
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession

SMILE = [idx("mouthSmileLeft"), idx("mouthSmileRight")]
GROUPS = {
    "head pose": list(range(58))[POSE_SLICE],
    **{name: [idx(name)] for name in ("pitch", "yaw", "roll")},
    "eyes": [idx(n) for n in BLENDSHAPE_NAMES if n.startswith("eye")],
    "brows": [idx(n) for n in BLENDSHAPE_NAMES if n.startswith("brow")],
    "jaw + mouth": [idx(n) for n in BLENDSHAPE_NAMES
                    if n.startswith(("jaw", "mouth")) and n not in ("mouthSmileLeft", "mouthSmileRight")],
}
PERCENTILES = (10, 90)


def tracked_user(video: Path) -> np.ndarray:
    """(T, 58) the video's face relative to its online rest, untracked frames dropped."""
    rest, rows = OnlineRest(), []
    with FaceTracker(mode="video") as tracker:
        for k, (rgb, _) in enumerate(webcam(video, video_seconds(video, None))):
            obs = tracker.track_frame(rgb, timestamp_ms=round(1000 * k / FPS))
            if obs is not None:
                rows.append(rest.update(obs.motion))
    return np.stack(rows)


def asked_smile_range(checkpoint: str, user: np.ndarray, cfg_user: float) -> float:
    session = AvatarSession(checkpoint, None, SessionOptions(render=False, seed=0, cfg_user=cfg_user))
    session.push_user_motion(user, 0.0)
    session.push_user_audio(np.zeros(round(len(user) / FPS * SAMPLE_RATE), np.float32), SAMPLE_RATE)
    session.finish()
    blocks = []
    while (block := session.step()) is not None:
        blocks.append(block.motion)
    session.close()
    smile = np.concatenate(blocks)[: len(user), SMILE].mean(1)
    low, high = np.percentile(smile, PERCENTILES)
    return float(high - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--videos", default="../shared/real/videos")
    parser.add_argument("--names", default=None, help="comma-separated video stems (default: all)")
    parser.add_argument("--cfg-user", type=float, default=SessionOptions.cfg_user)
    args = parser.parse_args()
    folder = Path(args.videos)
    if not folder.is_dir():
        print(f"no video folder at {folder}: nothing to probe")
        return
    paths = sorted(folder.glob("*.mp4"), key=_natural)
    if args.names:
        paths = [p for p in paths if p.stem in args.names.split(",")]
    for path in paths:
        user = tracked_user(path)
        smile_only = np.zeros_like(user)
        smile_only[:, SMILE] = user[:, SMILE]
        variants = {"whole face": user, "smile alone": smile_only}
        for name, channels in GROUPS.items():
            variant = smile_only.copy()
            variant[:, channels] = user[:, channels]
            variants[f"smile + {name}"] = variant
        user_low, user_high = np.percentile(user[:, SMILE].mean(1), PERCENTILES)
        ranges = {k: asked_smile_range(args.checkpoint, v, args.cfg_user) for k, v in variants.items()}
        print(f"{path.stem} (user smile range {user_high - user_low:.2f}): "
              + " | ".join(f"{k} {r:.3f}" for k, r in ranges.items()), flush=True)


if __name__ == "__main__":
    main()

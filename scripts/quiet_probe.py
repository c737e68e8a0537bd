"""Does a checkpoint rest when nobody speaks? (issues 15 and 16)

In the corpus a listener nods 0.2-0.6 s after the speaker's phrase ends, and when nobody has spoken for a
while both faces settle at rest. Two measures of the avatar's head in silence, against that:

* **held-out silences**: held-out conversations streamed as `eval model` does (the other participant as
  the user); in the stretches where both voices have been quiet for at least --quiet-s, the nods a
  minute (`metrics.detect_nods`) and the pitch's standard deviation, of the generated motion and of the
  ground truth;
* **rest**: a session with no input at all for --seconds (what `eval portraits` renders as the resting
  avatar, and a live avatar before anyone speaks), over --seeds: the same two numbers.

    .venv/bin/python scripts/quiet_probe.py avatar_forcing/assets/default_model runs/x/dpo/latest \\
        --data runs/data_v12
"""

from __future__ import annotations

import argparse

import numpy as np

from avatar_forcing.eval.evaluate import EvalConfig, heldout_clips, load_eval_model, parse_spec, stream_clip
from avatar_forcing.eval.metrics import detect_nods
from avatar_forcing.motion.vector import FPS, idx
from avatar_forcing.stream.inputs import FRAME_SAMPLES
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession

VOICED_RMS = 0.01  # the corpus speaks into digital silence: any sound above this is a voice
PITCH = idx("pitch")


def voiced(pcm: np.ndarray) -> np.ndarray:
    """Per 25 fps frame: is there a voice."""
    n = len(pcm) // FRAME_SAMPLES
    frames = pcm[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES).astype(np.float64)
    return np.sqrt((frames**2).mean(1)) > VOICED_RMS


def quiet_since(voice: np.ndarray, frames: int) -> np.ndarray:
    """Frames that come after at least `frames` frames without a voice."""
    run, out = 0, np.zeros(len(voice), bool)
    for t, v in enumerate(voice):
        run = 0 if v else run + 1
        out[t] = run > frames
    return out


def head_in(motion: np.ndarray, where: np.ndarray) -> tuple[int, float]:
    """(nods that start where `where` holds, pitch std in degrees there)."""
    pitch = motion[:, PITCH]
    nods = detect_nods(pitch)
    count = sum(int(where[min(int(round(t * FPS)), len(where) - 1)]) for t in nods)
    return count, float(np.degrees(pitch[where].std())) if where.any() else float("nan")


def heldout_silences(spec: str, args: argparse.Namespace) -> str:
    cfg = EvalConfig(clips=args.clips, seconds=None, history_noise=args.history_noise)
    model = load_eval_model(spec)
    totals = {"gt": [0, []], "pred": [0, []]}
    quiet_frames = 0
    for i, clip in enumerate(heldout_clips(args.data, cfg)):
        pred = stream_clip(model, clip, cfg, seed=i)
        voice = voiced(clip.avatar_audio) | voiced(clip.user_audio)
        n = min(len(voice), len(pred))
        quiet = quiet_since(voice[:n], round(args.quiet_s * FPS))
        quiet_frames += int(quiet.sum())
        for key, motion in (("gt", clip.gt[:n]), ("pred", pred[:n])):
            nods, std = head_in(motion, quiet)
            totals[key][0] += nods
            if quiet.any():
                totals[key][1].append(std)
    minutes = quiet_frames / FPS / 60
    gt, pred = ((totals[k][0] / minutes, np.mean(totals[k][1])) for k in ("gt", "pred"))
    return (f"held-out silences ({quiet_frames / FPS:.0f} s): nods/min {pred[0]:.1f} "
            f"(ground truth {gt[0]:.1f}), pitch std {pred[1]:.2f} deg (ground truth {gt[1]:.2f})")


def rest(spec: str, args: argparse.Namespace) -> str:
    _, path = parse_spec(spec)
    nods, stds = 0, []
    for seed in range(args.seeds):
        options = SessionOptions(seed=seed, render=False, history_noise=args.history_noise)
        session = AvatarSession(path, None, options)
        try:
            session.advance_to(args.seconds)
            session.finish()
            blocks = []
            while (block := session.step()) is not None:
                blocks.append(block.motion)
        finally:
            session.close()
        motion = np.concatenate(blocks)
        count, std = head_in(motion, np.ones(len(motion), bool))
        nods += count
        stds.append(std)
    minutes = args.seeds * args.seconds / 60
    return (f"rest ({args.seeds} x {args.seconds:g} s, no input): nods/min {nods / minutes:.1f}, "
            f"pitch std {np.mean(stds):.2f} deg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="checkpoint folders (LABEL=DIR to name one)")
    parser.add_argument("--data", help="corpus with a held-out split (without: the rest measure only)")
    parser.add_argument("--clips", type=int, default=6, help="held-out conversations (whole)")
    parser.add_argument("--quiet-s", type=float, default=2.0, help="a silence counts after this long")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--history-noise", type=float, default=SessionOptions.history_noise)
    parser.add_argument("--seconds", type=float, default=12.0, help="rest: seconds per seed (0: skip it)")
    args = parser.parse_args()
    for spec in args.checkpoints:
        print(spec)
        if args.data:
            print("  " + heldout_silences(spec, args), flush=True)
        if args.seconds > 0:
            print("  " + rest(spec, args), flush=True)


if __name__ == "__main__":
    main()

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
from dataclasses import dataclass

import numpy as np

from avatar_forcing.eval.evaluate import EvalConfig, heldout_clips, load_eval_model, parse_spec, stream_clip
from avatar_forcing.eval.metrics import audio_envelope, detect_nods
from avatar_forcing.motion.vector import FPS, idx
from avatar_forcing.stream.options import SessionOptions, settle_after
from avatar_forcing.stream.session import AvatarSession

VOICED_RMS = 0.01  # the corpus speaks into digital silence: any sound above this is a voice
PITCH = idx("pitch")
PLOT_MIN_LIMIT_DEG = 12.0
GT_COLOUR = "0.45"


def voiced(pcm: np.ndarray) -> np.ndarray:
    """Per 25 fps frame: is there a voice."""
    return audio_envelope(pcm) > VOICED_RMS


def silent_frames(voice: np.ndarray) -> np.ndarray:
    """Per frame: how many frames, up to and including it, have had no voice."""
    run, out = 0, np.zeros(len(voice), int)
    for t, v in enumerate(voice):
        run = 0 if v else run + 1
        out[t] = run
    return out


def quiet_since(voice: np.ndarray, frames: int) -> np.ndarray:
    """Frames that come after at least `frames` frames without a voice."""
    return silent_frames(voice) > frames


def head_in(pitch: np.ndarray, where: np.ndarray) -> tuple[list[float], float]:
    """(start times of the nods that start where `where` holds, pitch std in degrees there); pitch in
    radians."""
    starts = [t for t in detect_nods(pitch) if where[min(int(round(t * FPS)), len(where) - 1)]]
    return starts, float(np.degrees(pitch[where].std())) if where.any() else float("nan")


@dataclass
class Trace:
    """The clip with the most quiet frames, for the picture (the same clip for every checkpoint)."""

    voice: np.ndarray
    quiet: np.ndarray
    gt: np.ndarray  # pitch, degrees
    pred: np.ndarray


def heldout_silences(spec: str, history_noise: float, settle: float | None, args: argparse.Namespace
                     ) -> tuple[str, Trace | None]:
    cfg = EvalConfig(clips=args.clips, seconds=None, history_noise=history_noise, settle_after_s=settle)
    model = load_eval_model(spec)
    totals = {"gt": [0, []], "pred": [0, []]}
    quiet_frames, trace = 0, None
    for i, clip in enumerate(heldout_clips(args.data, cfg)):
        pred = stream_clip(model, clip, cfg, seed=i)
        voice = voiced(clip.avatar_audio) | voiced(clip.user_audio)
        n = min(len(voice), len(pred))
        quiet = quiet_since(voice[:n], round(args.quiet_s * FPS))
        quiet_frames += int(quiet.sum())
        if trace is None or quiet.sum() > trace.quiet.sum():
            trace = Trace(voice[:n], quiet, *(np.degrees(m[:n, PITCH]) for m in (clip.gt, pred)))
        for key, motion in (("gt", clip.gt[:n]), ("pred", pred[:n])):
            starts, std = head_in(motion[:, PITCH], quiet)
            totals[key][0] += len(starts)
            if quiet.any():
                totals[key][1].append(std)
    minutes = quiet_frames / FPS / 60
    gt, pred = ((totals[k][0] / minutes, np.mean(totals[k][1])) for k in ("gt", "pred"))
    return (f"held-out silences ({quiet_frames / FPS:.0f} s): nods/min {pred[0]:.1f} "
            f"(ground truth {gt[0]:.1f}), pitch std {pred[1]:.2f} deg (ground truth {gt[1]:.2f})"), trace


def plot(traces: dict[str, Trace], path: str, quiet_s: float) -> None:
    """Pitch around the longest held-out silence: the ground truth, and each checkpoint over it, with the
    nods counted in the silences marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(traces.values()))
    t = np.arange(len(first.gt)) / FPS
    rows = [("ground truth (the corpus)", first.gt)] + [(label, tr.pred) for label, tr in traces.items()]
    limit = max(PLOT_MIN_LIMIT_DEG, 1.05 * max(np.abs(pitch).max() for _, pitch in rows))
    quiet_seconds = first.quiet.sum() / FPS
    fig, axes = plt.subplots(len(rows), 1, figsize=(11, 1.8 * len(rows) + 0.7), sharex=True, sharey=True)
    for ax, (label, pitch) in zip(axes, rows, strict=True):
        ax.fill_between(t, -limit, limit, where=first.voice, color="0.88", step="mid",
                        label="someone speaking (either voice)")
        ax.fill_between(t, -limit, limit, where=first.quiet, color="#d8ecd8", step="mid",
                        label=f"nobody has spoken for {quiet_s:g} s or more (where nods are counted)")
        is_gt = pitch is first.gt
        if not is_gt:
            ax.plot(t, first.gt, color=GT_COLOUR, lw=0.8)
        ax.plot(t, pitch, color=GT_COLOUR if is_gt else "C3", lw=1, label=None if is_gt else "generated")
        starts, std = head_in(np.radians(pitch), first.quiet)
        ax.plot(starts, [0.9 * limit] * len(starts), "v", color="k", ms=5,
                label="a nod counted (its start)" if not is_gt else None)
        ax.set_title(f"{label}: {len(starts)} nods in the {quiet_seconds:.0f} s of green "
                     f"({len(starts) / quiet_seconds * 60:.0f} / min), pitch std there {std:.1f} deg",
                     fontsize=9, loc="left")
        ax.set_ylim(-limit, limit)
        ax.set_ylabel("pitch, deg\n(head down +)")
    axes[0].plot([], [], color=GT_COLOUR, label="ground truth (also drawn under each model)")
    handles, labels = [], []
    for ax in axes[:2]:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            if text not in labels:
                handles.append(handle)
                labels.append(text)
    fig.legend(handles, labels, loc="upper right", ncol=3, fontsize=8, frameon=False)
    axes[-1].set_xlabel("seconds into a held-out conversation (the avatar's head)")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def rest(spec: str, history_noise: float, settle: float | None, args: argparse.Namespace) -> str:
    _, path = parse_spec(spec)
    nods, stds = 0, []
    for seed in range(args.seeds):
        options = SessionOptions(seed=seed, render=False, history_noise=history_noise,
                                 settle_after_s=settle)
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
        starts, std = head_in(motion[:, PITCH], np.ones(len(motion), bool))
        nods += len(starts)
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
    parser.add_argument("--history-noise", type=float, nargs="+", default=[SessionOptions.history_noise],
                        help="SessionOptions.history_noise: one value, or one per checkpoint")
    parser.add_argument("--settle-after", type=settle_after, nargs="+",
                        default=[SessionOptions.settle_after_s], metavar="S|off",
                        help="SessionOptions.settle_after_s: one value, or one per checkpoint")
    parser.add_argument("--plot", metavar="PNG", help="pitch around the longest held-out silence")
    parser.add_argument("--seconds", type=float, default=12.0, help="rest: seconds per seed (0: skip it)")
    args = parser.parse_args()
    per_checkpoint = {}
    for name in ("history_noise", "settle_after"):
        values = getattr(args, name)
        values = values * len(args.checkpoints) if len(values) == 1 else values
        if len(values) != len(args.checkpoints):
            parser.error(f"--{name.replace('_', '-')} takes one value or one per checkpoint")
        per_checkpoint[name] = values
    traces: dict[str, Trace] = {}
    for spec, noise, settle in zip(args.checkpoints, *per_checkpoint.values(), strict=True):
        settling = "off" if settle is None else f"after {settle:g} s"
        print(f"{spec} (history noise {noise:g}, settle {settling})")
        if args.data:
            text, trace = heldout_silences(spec, noise, settle, args)
            print("  " + text, flush=True)
            if trace is not None:
                traces[parse_spec(spec)[0]] = trace
        if args.seconds > 0:
            print("  " + rest(spec, noise, settle, args), flush=True)
    if args.plot and traces:
        plot(traces, args.plot, args.quiet_s)


if __name__ == "__main__":
    main()

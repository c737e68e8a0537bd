"""Does the head jump where one streaming block ends and the next begins? (docs/EVALUATION.md, round 12)

Held-out conversations are streamed as `eval model` does, each checkpoint with the block's context frames
clean (served) and, with --noised-too, noised (the sampler before round 12), and with each --pose-guidance
(the head pose's share of the guidance). Printed per run: the mean head speed (pitch, yaw, roll) into each
frame position of a block and over all of them (the corpus' is about 0.33 deg / frame), and the seam
(`metrics.block_seam`: the speed into position 0, across the boundary, over the mean speed into positions
1-9; the ground truth's is about 1). `--plot` draws the profiles and a few seconds of the first
checkpoint's head speed. `--block-size` streams blocks of another size (a divisor of the 50-frame window);
`--overlap` samples frames past each block and drops them (SessionOptions.overlap).

    .venv/bin/python scripts/seam_probe.py v13=avatar_forcing/assets/default_model --noised-too \
        --data runs/data_v12 --plot docs/images/seams_round12.png
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from itertools import product

import numpy as np

from avatar_forcing.eval import metrics as M
from avatar_forcing.eval.evaluate import EvalConfig, heldout_clips, load_eval_model, stream_clip
from avatar_forcing.motion.vector import FPS

TRACE_S = (11.0, 14.0)  # the stretch of the first clip drawn beside the profiles
GROUND_TRUTH = "ground truth"


def head_speed_deg(motion: np.ndarray, cfg: M.SeamConfig) -> np.ndarray:
    return np.degrees(M.head_speed(motion, cfg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="checkpoint folders (LABEL=DIR to name one)")
    parser.add_argument("--noised-too", action="store_true", help="also stream with a noised context")
    parser.add_argument("--data", default="runs/data_v12", help="corpus with a held-out split")
    parser.add_argument("--clips", type=int, default=6, help="held-out conversations (whole)")
    parser.add_argument("--pose-guidance", type=float, nargs="+", default=[EvalConfig.pose_guidance])
    parser.add_argument("--cfg", type=float, nargs=2, metavar=("W_A", "W_U"),
                        default=(EvalConfig.cfg_audio, EvalConfig.cfg_user), help="guidance (served)")
    parser.add_argument("--block-size", type=int, help="frames per streamed block (default: the model's)")
    parser.add_argument("--guidance-interval", type=float, nargs=2, metavar=("LO", "HI"),
                        default=EvalConfig.guidance_interval, help="flow times of the guided Euler steps")
    parser.add_argument("--overlap", type=int, nargs="+", default=[EvalConfig.overlap],
                        help="frames sampled past each block and dropped (SessionOptions.overlap)")
    parser.add_argument("--plot", metavar="PNG")
    parser.add_argument("--profile-only", action="store_true",
                        help="plot the profiles only (runs whose noise differs, e.g. --overlap, are not "
                             "comparable frame by frame)")
    args = parser.parse_args()
    seam = M.SeamConfig(block=args.block_size or M.SeamConfig.block)
    base = EvalConfig(clips=args.clips, seconds=None, cfg_audio=args.cfg[0], cfg_user=args.cfg[1],
                      block_size=args.block_size, seam=seam, guidance_interval=tuple(args.guidance_interval))
    clips = list(heldout_clips(args.data, base))
    per_clip = {GROUND_TRUTH: [M.block_profile(c.gt, base.seam) for c in clips]}
    traces = {GROUND_TRUTH: head_speed_deg(clips[0].gt, base.seam)}
    first, lookahead = "", 0
    for number, spec in enumerate(args.checkpoints):
        model = load_eval_model(spec)
        for clean, guidance, overlap in product((True, False) if args.noised_too else (True,),
                                                args.pose_guidance, args.overlap):
            label = model.label + (f", {'clean' if clean else 'noised'} context" if args.noised_too else "")
            if len(args.pose_guidance) > 1:
                label += f", pose guidance {guidance:g}"
            if len(args.overlap) > 1:
                label += f", overlap {overlap}"
            cfg = replace(base, clean_context=clean, pose_guidance=guidance, overlap=overlap)
            motions = [stream_clip(model, c, cfg, seed=i) for i, c in enumerate(clips)]
            per_clip[label] = [M.block_profile(m, base.seam) for m in motions]
            if number == 0:  # frame by frame, one checkpoint is enough to see the seams
                traces[label], first = head_speed_deg(motions[0], base.seam), model.label
                lookahead = model.model.cfg.lookahead
    profiles = {label: np.nanmean(rows, axis=0) for label, rows in per_clip.items()}
    seams = {label: [M.seam_ratio(row) for row in rows] for label, rows in per_clip.items()}
    spread = {label: (min(values), max(values)) for label, values in seams.items()}
    print(f"{len(clips)} held-out clips of {args.data}; head speed (deg / frame) into block positions "
          f"0..{base.seam.block - 1} (0 = across the boundary)")
    for label, profile in profiles.items():
        lo, hi = spread[label]
        speed = np.degrees(np.mean(profile))
        print(f"  {label:32s} mean speed {speed:.3f}, seam {M.seam_ratio(profile):.2f}, "
              f"modulation {M.block_modulation(profile):.3f} "
              f"(clips {lo:.2f}-{hi:.2f}): " + " ".join(f"{np.degrees(v):.3f}" for v in profile))
    if args.plot:
        plot(per_clip, None if args.profile_only else traces, first, base.seam, lookahead, args.plot)
        print(f"wrote {args.plot}")


def plot(per_clip: dict[str, list[np.ndarray]], traces: dict[str, np.ndarray] | None, first: str,
         cfg: M.SeamConfig, lookahead: int, path: str) -> None:
    """Left: the mean profile per run with its standard error over clips, the step across the boundary
    and the block's last `lookahead` frames (no look-ahead when streamed without an overlap) shaded.
    Right (unless `traces` is None): a few seconds of the first clip, frame by frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = dict(zip(per_clip, ["black", "tab:blue", "tab:red", "tab:green", "tab:purple"], strict=False))
    if traces is None:
        fig, left = plt.subplots(figsize=(7.5, 5.6))
    else:
        fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.4), gridspec_kw={"width_ratios": [1, 1.6]})
    positions = np.arange(cfg.block)
    left.axvspan(-0.4, 0.4, color="#fff3d1", zorder=0)  # colours of no curve: the bands mark positions only
    left.axvspan(cfg.block - lookahead - 0.4, cfg.block - 0.6, color="#eeeaf6", zorder=0)
    for label, rows in per_clip.items():
        rows = np.degrees(np.asarray(rows))
        mean, error = np.nanmean(rows, 0), np.nanstd(rows, 0) / np.sqrt(len(rows))
        left.fill_between(positions, mean - error, mean + error, color=colours[label], alpha=0.15, lw=0)
        profile = np.radians(mean)
        left.plot(positions, mean, "o-", color=colours[label], label=f"{label} (seam "
                  f"{M.seam_ratio(profile):.2f}, modulation {M.block_modulation(profile):.3f})")
    low, high = left.get_ylim()
    left.text(0, high, "across the\nboundary", ha="center", va="top", fontsize=7.5, color="#8a6d1f")
    left.text(cfg.block - 1 - (lookahead - 1) / 2, high, "nothing ahead when\nstreamed (overlap 0)",
              ha="center", va="top", fontsize=7.5, color="#5b4a8a")
    left.set_ylim(low, high + (high - low) * 0.12)
    left.set_xticks(positions)
    left.set_xlim(-0.5, cfg.block - 0.5)
    left.set_xlabel("frame position in a 0.4 s block (0: the step from the previous block's last frame)")
    left.set_ylabel("head speed: L2 norm of the change in\n(pitch, yaw, roll), degrees per frame")
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    left.set_title(f"head speed by position in the block, mean ± s.e. over {len(rows)} held-out clips\n"
                   "(y axis not from 0)", fontsize=10)
    if traces is None:
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        return
    a, b = (round(s * FPS) for s in TRACE_S)
    t = np.arange(a, b) / FPS
    for label, trace in traces.items():
        truth = label == GROUND_TRUTH
        right.plot(t, trace[a - 1:b - 1], color=colours[label], lw=0.9 if truth else 1.3,
                   ls="--" if truth else "-",
                   label=f"{label} (another motion, for scale)" if truth else label)
    for frame in range(cfg.first, b, cfg.block):
        if frame >= a:
            right.axvline(frame / FPS, color="0.8", lw=0.8, zorder=0)
    right.set_xlabel("seconds into the first held-out clip (grey lines: block boundaries)")
    right.set_ylabel("head speed: L2 norm of the change in\n(pitch, yaw, roll), degrees per frame")
    right.set_title(f"{first}, frame by frame", fontsize=10)
    right.legend(fontsize=7.5, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()

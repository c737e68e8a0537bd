"""Does the head jump where one streaming block ends and the next begins? (docs/EVALUATION.md, round 12)

Held-out conversations are streamed as `eval model` does, with the block's context frames clean (served) and
noised (the sampler before round 12). Printed per setting: the mean head speed (pitch, yaw, roll) into each
frame position of a block, and the seam ratio (`metrics.block_seam`: speed across a boundary over the speed
inside; the ground truth's is about 1). `--plot` draws the profiles and a few seconds of pitch.

    .venv/bin/python scripts/seam_probe.py avatar_forcing/assets/default_model --data runs/data_v12 \
        --plot docs/images/seams_round12.png
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from avatar_forcing.eval import metrics as M
from avatar_forcing.eval.evaluate import EvalConfig, heldout_clips, load_eval_model, stream_clip
from avatar_forcing.motion.vector import FPS, idx

SETTINGS = {"clean context (served)": True, "noised context (before)": False}
TRACE_S = (11.0, 14.0)  # the stretch of the first clip drawn beside the profiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--data", default="runs/data_v12", help="corpus with a held-out split")
    parser.add_argument("--clips", type=int, default=6, help="held-out conversations (whole)")
    parser.add_argument("--plot", metavar="PNG")
    args = parser.parse_args()
    model = load_eval_model(args.checkpoint)
    base = EvalConfig(clips=args.clips, seconds=None)
    clips = list(heldout_clips(args.data, base))
    seam = base.seam
    profiles, traces = {}, {}
    truth = np.nanmean([M.block_profile(c.gt, seam) for c in clips], axis=0)
    profiles["ground truth"] = truth
    for label, clean in SETTINGS.items():
        cfg = replace(base, clean_context=clean)
        motions = [stream_clip(model, c, cfg, seed=i) for i, c in enumerate(clips)]
        profiles[label] = np.nanmean([M.block_profile(m, seam) for m in motions], axis=0)
        traces[label] = motions[0][:, idx("pitch")]
    print(f"{args.checkpoint}, {len(clips)} held-out clips of {args.data}; head speed (deg / frame) "
          f"into block positions 0..{seam.block - 1} (0 = across the boundary)")
    for label, profile in profiles.items():
        ratio = profile[0] / np.nanmean(profile[1:])
        print(f"  {label:24s} seam {ratio:.2f}: " + " ".join(f"{np.degrees(v):.3f}" for v in profile))
    if args.plot:
        plot(profiles, traces, seam, args.plot)
        print(f"wrote {args.plot}")


def plot(profiles: dict[str, np.ndarray], traces: dict[str, np.ndarray], seam: M.SeamConfig,
         path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"ground truth": "0.45", "clean context (served)": "tab:blue",
               "noised context (before)": "tab:red"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1, 2]})
    for label, profile in profiles.items():
        ratio = profile[0] / np.nanmean(profile[1:])
        left.plot(range(seam.block), np.degrees(profile), "o-", color=colours[label],
                  label=f"{label}: seam {ratio:.2f}")
    left.set_xticks(range(seam.block))
    left.set_xlabel("frame position in a 0.4 s block (0: the step from the previous block)")
    left.set_ylabel("head speed, degrees per frame")
    left.set_ylim(bottom=0)
    left.legend(fontsize=8, loc="lower left")
    left.set_title("mean head speed by position in the block")
    a, b = (round(s * FPS) for s in TRACE_S)
    t = np.arange(a, b) / FPS
    for label, trace in traces.items():
        right.plot(t, np.degrees(trace[a:b]), color=colours[label], lw=1.4, label=label)
    for frame in range(seam.first, b, seam.block):
        if frame >= a:
            right.axvline(frame / FPS, color="0.85", lw=0.8, zorder=0)
    right.set_xlabel("seconds (grey lines: block boundaries)")
    right.set_ylabel("pitch, degrees")
    right.set_title("the first held-out clip, the same noise in both: pitch")
    right.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()

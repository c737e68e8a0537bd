"""What the flat rPCC-Pose of a model is made of: per-channel offsets and spread of its head pose.

    python scripts/pose_diagnostic.py a=runs/ablation5/a/pretrain/latest b=runs/ablation5/bc/pretrain/latest \
        --data data/synth --seed 1

Streams every checkpoint over all held-out clips (20 s, as `eval model --clips 0 --seconds 20 --seed S`)
and prints, per model: flat rPCC-Pose, the flat r(pred, user) it compares with the ground truth's, the same
rPCC after removing each channel's mean (so per-dimension offsets cannot drive it), the per-dim variant,
and per pose channel the mean offset and the standard deviation relative to the ground truth.
"""

from __future__ import annotations

import argparse

import numpy as np

from avatar_forcing.eval import metrics as M
from avatar_forcing.eval.evaluate import EvalConfig, heldout_clips, load_eval_model, stream_clip
from avatar_forcing.motion.vector import POSE_NAMES, POSE_SLICE


def centered(clips: list[np.ndarray]) -> list[np.ndarray]:
    mean = np.concatenate(clips).mean(0)
    return [c - mean for c in clips]


def describe(label: str, pred: list[np.ndarray], gt: list[np.ndarray], user: list[np.ndarray]) -> str:
    p, g = np.concatenate(pred), np.concatenate(gt)
    offsets = " ".join(f"{n} {d:+.4f}" for n, d in zip(POSE_NAMES, p.mean(0) - g.mean(0), strict=True))
    spread = " ".join(f"{n} {r:.2f}" for n, r in zip(POSE_NAMES, p.std(0) / g.std(0), strict=True))
    return (
        f"{label}: rPCC flat {M.rpcc(user, gt, pred):.3f} (r(pred, user) {M.pcc_flat(pred, user):+.3f}), "
        f"centered {M.rpcc(centered(user), centered(gt), centered(pred)):.3f}, "
        f"per-dim {M.rpcc(user, gt, pred, 'per_dim'):.3f}\n"
        f"    mean offset vs ground truth: {offsets}\n    std / ground truth's: {spread}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", help="LABEL=DIR")
    p.add_argument("--data", default="data/synth")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    cfg = EvalConfig(clips=None, seconds=args.seconds, seed=args.seed)
    clips = heldout_clips(args.data, cfg)
    user = [c.user_motion[:, POSE_SLICE] for c in clips]
    gt = [c.gt[:, POSE_SLICE] for c in clips]
    print(describe("ground truth", gt, gt, user))
    for spec in args.checkpoints:
        m = load_eval_model(spec)
        pred = [stream_clip(m, c, cfg, cfg.seed + i)[:, POSE_SLICE] for i, c in enumerate(clips)]
        print(describe(m.label, pred, gt, user), flush=True)


if __name__ == "__main__":
    main()

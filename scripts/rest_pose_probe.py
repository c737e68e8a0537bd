"""Where does a checkpoint's silent avatar rest? (issue 15)

A motion-only session (no renderer, no user) is fed seconds of silence; prints the mean and std of the
generated head pose and the largest mean blendshapes. A resting avatar should sit at zero: a mean pitch
of -0.03 rad is a head raised by 1.7 deg, which the rest PSNR of `eval portraits` sees as a shifted face.

    .venv/bin/python scripts/rest_pose_probe.py avatar_forcing/assets/default_model runs/x/dpo/latest
"""

from __future__ import annotations

import argparse

import numpy as np

from avatar_forcing.motion.vector import BLENDSHAPE_NAMES, FPS, NUM_BLENDSHAPES, POSE_NAMES
from avatar_forcing.stream.inputs import SAMPLE_RATE
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession

TOP_BLENDSHAPES = 6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frames = round(args.seconds * FPS)
    for checkpoint in args.checkpoints:
        session = AvatarSession(checkpoint, None, SessionOptions(render=False, seed=args.seed))
        session.push_avatar_audio(np.zeros(frames * SAMPLE_RATE // FPS, np.float32), SAMPLE_RATE)
        session.finish()
        motion = np.concatenate([block.motion for block in iter(session.step, None)])[:frames]
        session.close()
        pose = motion[:, NUM_BLENDSHAPES:]
        blend = motion[:, :NUM_BLENDSHAPES].mean(0)
        top = np.argsort(-np.abs(blend))[:TOP_BLENDSHAPES]
        print(checkpoint)
        for label, values in (("mean", pose.mean(0)), ("std ", pose.std(0))):
            named = zip(POSE_NAMES, values, strict=True)
            print(f"  pose {label} " + " ".join(f"{n} {v:+.4f}" for n, v in named))
        print("  blendshapes " + " ".join(f"{BLENDSHAPE_NAMES[i]} {blend[i]:+.3f}" for i in top), flush=True)


if __name__ == "__main__":
    main()

"""Does a checkpoint's mouth follow real speech? (issue 15)

A motion-only session (no renderer, no user) speaks the first seconds of each real video's audio; prints
the best lagged correlation of the jawOpen it generates with the speech's RMS envelope, per clip and on
average: `eval portraits`' "asked jaw r" (`jaw_envelope_r`) without rendering a portrait.

    .venv/bin/python scripts/real_jaw_probe.py avatar_forcing/assets/default_model runs/x/dpo/latest
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avatar_forcing.audio.io import load_audio
from avatar_forcing.eval.portraits import jaw_envelope_r
from avatar_forcing.motion.vector import idx
from avatar_forcing.stream.inputs import SAMPLE_RATE
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession


def jaw_r(checkpoint: str, pcm: np.ndarray, seed: int) -> float:
    session = AvatarSession(checkpoint, None, SessionOptions(render=False, seed=seed))
    session.push_avatar_audio(pcm, SAMPLE_RATE)
    session.finish()
    motion = np.concatenate([block.motion for block in iter(session.step, None)])
    session.close()
    return jaw_envelope_r(pcm, motion[:, idx("jawOpen")])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--videos", default="../shared/real/videos")
    parser.add_argument("--names", default="d6,d10,d11", help="comma-separated video stems with speech")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = Path(args.videos)
    if not folder.is_dir():
        print(f"no video folder at {folder}: nothing to probe")
        return
    names = args.names.split(",")
    samples = round(args.seconds * SAMPLE_RATE)
    clips = {n: load_audio(folder / f"{n}.mp4", SAMPLE_RATE)[:samples] for n in names}
    for checkpoint in args.checkpoints:
        rs = {n: jaw_r(checkpoint, pcm, args.seed) for n, pcm in clips.items()}
        print(f"{checkpoint}: " + " ".join(f"{n} {r:+.2f}" for n, r in rs.items())
              + f" | mean {np.mean(list(rs.values())):+.3f}", flush=True)


if __name__ == "__main__":
    main()

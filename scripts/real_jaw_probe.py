"""Does a checkpoint's mouth follow real speech? (issue 15)

A motion-only session (no renderer, no user) speaks the first seconds of each real video's audio; prints
the best lagged correlation of the jawOpen it generates with the speech's RMS envelope, per clip and on
average: `eval portraits`' "asked jaw r" (`jaw_envelope_r`) without rendering a portrait; and the 90th
percentile of the mouthPucker it asks (the real calm speakers' own: 0.4-0.7), which narrows the mouth.

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

PUCKER_PERCENTILE = 90


def spoken_motion(checkpoint: str | None, pcm: np.ndarray, seed: int, overlap: int = SessionOptions.overlap
                  ) -> np.ndarray:
    """The motion a motion-only session (no user) generates while it speaks `pcm` (16 kHz)."""
    session = AvatarSession(checkpoint, None, SessionOptions(render=False, seed=seed, overlap=overlap))
    session.push_avatar_audio(pcm, SAMPLE_RATE)
    session.finish()
    motion = np.concatenate([block.motion for block in iter(session.step, None)])
    session.close()
    return motion


def jaw_r_and_pucker(checkpoint: str, pcm: np.ndarray, seed: int, overlap: int = SessionOptions.overlap
                     ) -> tuple[float, float]:
    motion = spoken_motion(checkpoint, pcm, seed, overlap)
    pucker = float(np.percentile(motion[:, idx("mouthPucker")], PUCKER_PERCENTILE))
    return jaw_envelope_r(pcm, motion[:, idx("jawOpen")])[0], pucker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--videos", default="../shared/real/videos")
    parser.add_argument("--names", default="d6,d10,d11,d14,d20", help="comma-separated stems with speech")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overlap", type=int, default=SessionOptions.overlap,
                        help="frames sampled past each block and dropped (SessionOptions.overlap)")
    args = parser.parse_args()
    folder = Path(args.videos)
    if not folder.is_dir():
        print(f"no video folder at {folder}: nothing to probe")
        return
    names = args.names.split(",")
    samples = round(args.seconds * SAMPLE_RATE)
    clips = {n: load_audio(folder / f"{n}.mp4", SAMPLE_RATE)[:samples] for n in names}
    for checkpoint in args.checkpoints:
        rs = {n: jaw_r_and_pucker(checkpoint, pcm, args.seed, args.overlap) for n, pcm in clips.items()}
        print(f"{checkpoint}: jaw r " + " ".join(f"{n} {r:+.2f}" for n, (r, _) in rs.items())
              + f" | mean {np.mean([r for r, _ in rs.values()]):+.3f}", flush=True)
        print(f"{' ' * len(checkpoint)}  pucker p{PUCKER_PERCENTILE} "
              + " ".join(f"{n} {p:.2f}" for n, (_, p) in rs.items())
              + f" | mean {np.mean([p for _, p in rs.values()]):.2f}", flush=True)


if __name__ == "__main__":
    main()

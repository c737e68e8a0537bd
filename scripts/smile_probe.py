"""Controlled reaction probe (issue 16): does a checkpoint's avatar smile back at a user who smiles?

Through the live session path (no tracker, no renderer): the user's motion, relative to the user's rest, is
neutral for 4 s, smiles `amp` (with a little cheek squint) from 4 s to 9 s, then rests again; the user's
microphone is silent (or, with --talking, carries the demo user's synthetic speech throughout: a user who
smiles while talking) and the avatar has no speech. Prints the avatar's generated smile per phase,
averaged over seeds.

    .venv/bin/python scripts/smile_probe.py avatar_forcing/assets/default_model runs/x/dpo/latest [--talking]
"""

from __future__ import annotations

import argparse

import numpy as np

from avatar_forcing.audio.io import load_audio
from avatar_forcing.demo import DEMO_DIR
from avatar_forcing.motion.vector import FPS, MOTION_DIM, idx
from avatar_forcing.stream.inputs import FRAME_SAMPLES, SAMPLE_RATE
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession

SMILE = [idx("mouthSmileLeft"), idx("mouthSmileRight")]
CHEEK = [idx("cheekSquintLeft"), idx("cheekSquintRight")]
CHEEK_PER_SMILE = 0.4
PHASES_S = (0.0, 4.0, 9.0, 14.0)  # rest, smile, rest


def user_voice(frames: int, talking: bool) -> np.ndarray:
    """The user's microphone: silence, or the demo user's speech looped to the probe's length."""
    samples = frames * FRAME_SAMPLES
    if not talking:
        return np.zeros(samples, np.float32)
    speech = load_audio(DEMO_DIR / "user.wav", SAMPLE_RATE)
    return np.resize(speech, samples).astype(np.float32)


def generated_smile(checkpoint: str, amp: float, seed: int, cfg_user: float, talking: bool) -> np.ndarray:
    a, b, end = (int(t * FPS) for t in PHASES_S[1:])
    user = np.zeros((end, MOTION_DIM), np.float32)
    user[a:b, SMILE] = amp
    user[a:b, CHEEK] = amp * CHEEK_PER_SMILE
    session = AvatarSession(checkpoint, None, SessionOptions(render=False, seed=seed, cfg_user=cfg_user))
    session.push_user_motion(user, 0.0)
    session.push_user_audio(user_voice(end, talking), SAMPLE_RATE)
    session.finish()
    blocks = []
    while (block := session.step()) is not None:
        blocks.append(block.motion)
    session.close()
    return np.concatenate(blocks)[:end, SMILE].mean(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--amps", default="0,0.5,0.9")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cfg-user", type=float, default=SessionOptions.cfg_user)
    parser.add_argument("--talking", action="store_true", help="the user talks while smiling")
    args = parser.parse_args()
    a, b = (int(t * FPS) for t in PHASES_S[1:3])
    for checkpoint in args.checkpoints:
        for amp in (float(x) for x in args.amps.split(",")):
            runs = [generated_smile(checkpoint, amp, seed, args.cfg_user, args.talking)
                    for seed in range(args.seeds)]
            smile = np.mean(runs, 0)
            print(f"{checkpoint} user smile {amp}: avatar smile before {smile[:a].mean():.3f}, during "
                  f"{smile[a:b].mean():.3f} (max {smile[a:b].max():.3f}), after {smile[b:].mean():.3f}")


if __name__ == "__main__":
    main()

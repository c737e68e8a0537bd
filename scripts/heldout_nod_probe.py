"""Where do a checkpoint's nods come from? (issue 16)

Streams held-out corpus conversations through a motion-only session (participant 0 the avatar, 1 the user)
and prints the mean head dip within 1.5 s (`metrics.head_dips`) after each labelled nod's cause (a user
phrase end) against the dip after any frame, beside the corpus' own; `--mute` leaves out the avatar's
voice, the user's motion or both, to see which input the nods ride on.

    .venv/bin/python scripts/heldout_nod_probe.py avatar_forcing/assets/default_model --data runs/data_v11
"""

from __future__ import annotations

import argparse

import numpy as np

from avatar_forcing.data.shards import Corpus
from avatar_forcing.eval.metrics import head_dips
from avatar_forcing.motion.vector import FPS, idx
from avatar_forcing.stream.inputs import FRAME_SAMPLES, SAMPLE_RATE
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--data", required=True, help="a corpus from `avatar-forcing data synth`")
    parser.add_argument("--conversations", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--mute", choices=("none", "avatar", "motion", "both"), default="none")
    args = parser.parse_args()
    corpus = Corpus(args.data)
    for checkpoint in args.checkpoints:
        after, anywhere, truth = [], [], []
        for ref in corpus.conversations("heldout")[: args.conversations]:
            conv = corpus.load(ref, audio=True)
            avatar, user = conv.participants
            n = min(len(avatar.motion), round(args.seconds * FPS))
            session = AvatarSession(checkpoint, None, SessionOptions(render=False, seed=0))
            voice = avatar.audio[: n * FRAME_SAMPLES]
            session.push_avatar_audio(voice * 0 if args.mute in ("avatar", "both") else voice, SAMPLE_RATE)
            session.push_user_audio(user.audio[: n * FRAME_SAMPLES], SAMPLE_RATE)
            if args.mute not in ("motion", "both"):
                session.push_user_motion(user.motion[:n])
            session.finish()
            pitch = np.concatenate([b.motion for b in iter(session.step, None)])[:n, idx("pitch")]
            session.close()
            nods = [e for e in conv.meta["events"][0] if e["type"] == "nod"]
            causes = sorted({round(e["cause_time"] * FPS) for e in nods})
            after.append(head_dips(pitch, causes))
            truth.append(head_dips(avatar.motion[:n, idx("pitch")], causes))
            anywhere.append(head_dips(pitch, np.arange(0, n, 5)))
        after, anywhere, truth = (np.concatenate(x) for x in (after, anywhere, truth))
        print(f"{checkpoint} (mute {args.mute}): {len(after)} nod causes, head dip after them "
              f"{np.degrees(np.mean(after)):.2f} deg, after any frame "
              f"{np.degrees(np.mean(anywhere)):.2f} deg; "
              f"the corpus after them {np.degrees(np.mean(truth)):.2f} deg", flush=True)


if __name__ == "__main__":
    main()

"""What does the denoiser expect right after a user's smile begins? (issue 16)

Held-out windows of a corpus placed so that one of the user's smiles begins at frame `ONSET` (the rule of
motion/smile_onsets.py), where the avatar is not smiling yet. The avatar's own motion is clean up to
`--clean` frames (its past, as a stream has it) and noised to flow time `NOISE` after it, so the model's
estimate of the clean motion there (x0 = x_s - s v) is what it expects from the conditions and its past: the
conditional mean, for an L2-trained model. Printed: the avatar's smile over 0.5-1 s after the onset, as the
corpus holds it and as each checkpoint expects it with the user's smile scaled by 0, 1 and 2, and with the
user condition dropped.

    .venv/bin/python scripts/onset_probe.py runs/v13/pretrain/latest runs/v13/dpo/latest --data runs/data
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from avatar_forcing.data.loader import heldout_conversations, make_sample
from avatar_forcing.model.checkpoint import load_checkpoint
from avatar_forcing.motion.smile_onsets import SMILE_CHANNELS as SMILE
from avatar_forcing.motion.smile_onsets import smile, smile_onsets
from avatar_forcing.motion.vector import FPS

WINDOW, ONSET = 50, 25  # frames: the window, and where in it the user's smile begins
NOT_YET = 0.1  # the avatar's smile over the frames before the onset stays below this
BEFORE = 5
ANSWER = (ONSET + round(0.5 * FPS), WINDOW)  # the frames scored: 0.5-1.0 s after the onset
NOISE = 0.98  # flow time of the frames after the clean past
SCALES = (0.0, 1.0, 2.0)


def onset_windows(data: str, conversations: int) -> list[tuple]:
    """(conversation, avatar, start) with a user's smile beginning at frame ONSET of the window."""
    windows = []
    for conv in heldout_conversations(data, limit=conversations, audio=False):
        for avatar in (0, 1):
            me, you = conv.participants[avatar], conv.participants[1 - avatar]
            for t, _ in smile_onsets(smile(you.motion)):
                start = t - ONSET
                fits = start >= 0 and start + WINDOW <= conv.frames
                if fits and smile(me.motion[t - BEFORE:t + 1]).max() < NOT_YET:
                    windows.append((conv, avatar, start))
    return windows


@torch.no_grad()
def expected_smiles(checkpoint: str, windows: list[tuple], clean: int, seed: int) -> tuple[float, dict]:
    """(the corpus' smile, {condition: the model's expected smile}) over the ANSWER frames."""
    model, _, stats = load_checkpoint(checkpoint)  # normalized with the checkpoint's own statistics
    samples = [make_sample(conv, avatar, start, WINDOW, stats) for conv, avatar, start in windows]
    batch = {k: torch.from_numpy(np.stack([s[k] for s in samples])) for k in samples[0]}
    n, frames = batch["motion"].shape[:2]
    corpus = float(stats.denormalize(batch["motion"].numpy())[:, slice(*ANSWER)][..., SMILE].mean())
    users = np.stack([conv.participants[1 - avatar].motion[start:start + WINDOW]
                      for conv, avatar, start in windows])
    s = torch.zeros(n, frames)
    s[:, clean:] = NOISE
    x = (1 - s[..., None]) * batch["motion"] + s[..., None] * torch.randn(
        batch["motion"].shape, generator=torch.Generator().manual_seed(seed))
    expected = {}
    conditions = [(f"user smile x{scale:g}", scale, False) for scale in SCALES] + [("no user", 1.0, True)]
    for name, scale, drop in conditions:
        user = users.copy()
        user[..., SMILE] *= scale
        user_motion = torch.from_numpy(np.stack([stats.normalize_condition(u) for u in user]))
        v = model(x, s, batch["avatar_audio"], batch["user_audio"], user_motion, batch["reference"],
                  torch.zeros(n, dtype=torch.bool), torch.full((n,), drop))
        x0 = stats.denormalize((x - s[..., None] * v).numpy())
        expected[name] = round(float(x0[:, slice(*ANSWER)][..., SMILE].mean()), 3)
    return corpus, expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--data", required=True, help="corpus with a held-out split")
    parser.add_argument("--conversations", type=int, default=16)
    parser.add_argument("--clean", type=int, default=ONSET + BEFORE,
                        help="frames of the avatar's clean past (default: 0.2 s past the onset, before any "
                             "answer of the corpus; 0: none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    windows = onset_windows(args.data, args.conversations)
    print(f"{len(windows)} windows; the avatar's past clean for {args.clean} frames, the smile scored over "
          f"frames {ANSWER[0]}-{ANSWER[1]} (onset at {ONSET})")
    for checkpoint in args.checkpoints:
        corpus, expected = expected_smiles(checkpoint, windows, args.clean, args.seed)
        conditions = ", ".join(f"{k} {v:.3f}" for k, v in expected.items())
        print(f"{checkpoint}: corpus {corpus:.3f}; expected {conditions}")


if __name__ == "__main__":
    main()

"""Does a checkpoint's denoiser expect a listening avatar to smile back? (issue 16)

Held-out windows of a corpus where the avatar is silent in the second half and the user smiles (at least
`--user-smile`, mean over frames 20-40): every frame is noised to flow time s and the model's estimate of the
clean motion (x0 = x_s - s v) is read for the avatar's smile over frames 30-50, with the user condition and
with it dropped, beside the smile the corpus holds there. At s near 1 the estimate is what the model
expects from the conditions alone: the conditional mean for an L2-trained model, something closer to the
median for an L1-trained one (docs/TRAINING.md).

    .venv/bin/python scripts/listening_probe.py avatar_forcing/assets/default_model --data runs/data
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from avatar_forcing.data.loader import heldout_conversations, make_sample
from avatar_forcing.model.checkpoint import load_checkpoint
from avatar_forcing.motion.vector import idx

SMILE = [idx("mouthSmileLeft"), idx("mouthSmileRight")]
WINDOW, STRIDE = 50, 25
SILENT_PERCENTILE = 35  # a frame is silent when its mean log-mel is in the speaker's quietest 35 %
KEYS = ("motion", "avatar_audio", "user_audio", "user_motion", "reference")


def listening_windows(data: str, user_smile: float, limit: int, conversations: int) -> list[tuple]:
    """(conversation, avatar, start) of the windows to probe."""
    windows = []
    for conv in heldout_conversations(data, limit=conversations, audio=False):
        for avatar in (0, 1):
            me, you = conv.participants[avatar], conv.participants[1 - avatar]
            quiet = np.percentile(me.features.mean(1), SILENT_PERCENTILE)
            for start in range(0, conv.frames - WINDOW, STRIDE):
                silent = (me.features[start + 20 : start + WINDOW].mean(1) <= quiet).all()
                if silent and you.motion[start + 20 : start + 40, SMILE].mean() >= user_smile:
                    windows.append((conv, avatar, start))
    return windows[:limit]


@torch.no_grad()
def probe(checkpoint: str, windows: list[tuple], times: list[float], seed: int) -> dict:
    model, _, stats = load_checkpoint(checkpoint)  # normalized with the checkpoint's own statistics
    samples = [make_sample(conv, avatar, start, WINDOW, stats) for conv, avatar, start in windows]
    batch = {k: torch.from_numpy(np.stack([w[k] for w in samples])) for k in KEYS}
    n = len(windows)
    truth = float(stats.denormalize(batch["motion"].numpy())[:, 30:, SMILE].mean())
    generator = torch.Generator().manual_seed(seed)
    rows = {}
    for s in times:
        noise = torch.randn(batch["motion"].shape, generator=generator)
        x = (1 - s) * batch["motion"] + s * noise
        t = torch.full(x.shape[:2], s)
        row = {}
        for name, drop in (("with_user", False), ("without_user", True)):
            conds = (batch[k] for k in ("avatar_audio", "user_audio", "user_motion", "reference"))
            v = model(x, t, *conds, torch.zeros(n, dtype=torch.bool), torch.full((n,), drop))
            row[name] = round(float(stats.denormalize((x - s * v).numpy())[:, 30:, SMILE].mean()), 4)
        rows[str(s)] = row
    return {"checkpoint": checkpoint, "windows": n, "corpus_smile": round(truth, 4), "estimates": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--data", required=True, help="corpus with a held-out split")
    parser.add_argument("--user-smile", type=float, default=0.3)
    parser.add_argument("--windows", type=int, default=64)
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--times", default="0.3,0.6,0.9")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    windows = listening_windows(args.data, args.user_smile, args.windows, args.conversations)
    times = [float(t) for t in args.times.split(",")]
    for checkpoint in args.checkpoints:
        print(json.dumps(probe(checkpoint, windows, times, args.seed)))


if __name__ == "__main__":
    main()

"""Does a model answer a laugh with an open mouth? The held-out answers of a corpus, model against truth.

For every `laugh_response` event of the held-out conversations (the avatar answers its partner's laugh,
docs/DATA.md), stream the conversation through the model as served (`eval model`'s streaming session) and
compare the largest jawOpen, mouthUpperUp and mouthSmile over the 1.5 s after the answer's onset with the
ground truth's. Answers during which the avatar's own voice is silent are also reported apart: there the
open mouth can only come from the answer (else it may be the avatar's own "ha ha").

    .venv/bin/python scripts/laugh_probe.py b=runs/v17/pretrain/latest c=runs/v17/dpo/latest \
        --data runs/data_v17
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from avatar_forcing.data.loader import heldout_conversations
from avatar_forcing.eval.evaluate import EvalConfig, clips_from_conversation, load_eval_model, stream_clip
from avatar_forcing.motion.vector import FPS, idx
from avatar_forcing.stream.inputs import FRAME_SAMPLES

CHANNELS = {"jaw": idx("jawOpen"), "upper lip": idx("mouthUpperUpLeft"), "smile": idx("mouthSmileLeft")}


@dataclass(frozen=True)
class ProbeConfig:
    window_s: float = 1.5  # after the answer's onset
    silent_peak: float = 0.01  # the avatar's own audio stays below this peak: a silent answer
    conversations: int = 40
    clips: int = 10  # of those with an answer
    cfg_user: float = 3.0  # as served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="label=checkpoint")
    parser.add_argument("--data", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = ProbeConfig()
    eval_cfg = EvalConfig(seconds=None, cfg_user=cfg.cfg_user, threads=1)
    items = []
    for conv in heldout_conversations(args.data, limit=cfg.conversations, audio=True):
        for avatar, clip in enumerate(clips_from_conversation(conv, eval_cfg)):
            onsets = [e["time"] for e in conv.meta["events"][avatar] if e["type"] == "laugh_response"]
            if onsets:
                items.append((clip, onsets))
    items = items[: cfg.clips]
    window = round(cfg.window_s * FPS)
    for spec in args.models:
        model = load_eval_model(spec)
        rows = []
        for clip, onsets in items:
            pred = stream_clip(model, clip, eval_cfg, args.seed)
            for t in onsets:
                a = int(t * FPS)
                if a + window > clip.frames:
                    continue
                own = np.abs(clip.avatar_audio[a * FRAME_SAMPLES : (a + window) * FRAME_SAMPLES]).max()
                peaks = [(clip.gt[a : a + window, c].max(), pred[a : a + window, c].max())
                         for c in CHANNELS.values()]
                rows.append((own < cfg.silent_peak, peaks))
        for name, keep in (("all answers", lambda s: True), ("silent answers", lambda s: s)):
            chosen = np.array([p for s, p in rows if keep(s)])
            if not len(chosen):
                continue
            cells = ", ".join(f"{ch} {chosen[:, i, 0].mean():.2f} / {chosen[:, i, 1].mean():.2f}"
                              for i, ch in enumerate(CHANNELS))
            print(f"{spec}: {name} ({len(chosen)}), largest in {cfg.window_s:g} s, truth / model: {cells}")


if __name__ == "__main__":
    main()

"""Can a model preset learn a lagged reaction at all? A controlled probe (issue 16).

A toy corpus where the only thing that happens is a user who smiles now and then and an avatar that
smiles back `--lag` seconds later (at a fraction of the user's smile); both are silent, everything else is
tracker-like noise. Train the preset briefly on it, then stream a user who smiles at a known time and
read the avatar's smile before, during and after: a preset that can carry the user's past to the avatar
answers; one that cannot stays flat. The smile comes after 4 s of a still user (two training windows), so
the probe also shows whether the streaming engine keeps listening once its cache holds a whole window
(`--history-noise`, SessionOptions.history_noise).

    .venv/bin/python scripts/reaction_probe.py --preset tiny --steps 1500 --out runs/probe_tiny
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar_forcing.audio.features import log_mel
from avatar_forcing.data.shards import Conversation, Participant, write_index, write_shard
from avatar_forcing.motion.vector import FPS, MOTION_DIM, idx

SMILE = (idx("mouthSmileLeft"), idx("mouthSmileRight"))
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class ProbeConfig:
    conversations: int = 24
    seconds: float = 60.0
    smile_every: tuple[float, float] = (3.0, 8.0)  # seconds between the user's smile onsets
    smile_hold: tuple[float, float] = (1.0, 3.0)
    smile_level: tuple[float, float] = (0.3, 0.9)
    answer_gain: float = 0.8                        # the avatar's smile over the user's
    noise: float = 0.01                             # tracker-like jitter on every channel
    hiss: float = 1e-3                              # the microphones' noise floor (silence is not zero)
    probe_on: float = 4.0                           # the probe user smiles from here ...
    probe_off: float = 7.0                          # ... to here, at probe_level
    probe_level: float = 0.7
    probe_seconds: float = 11.0


def smile_track(rng: np.random.Generator, frames: int, cfg: ProbeConfig) -> np.ndarray:
    smile = np.zeros(frames, np.float32)
    t = rng.uniform(*cfg.smile_every)
    while t * FPS < frames:
        a, b = int(t * FPS), int((t + rng.uniform(*cfg.smile_hold)) * FPS)
        smile[a:b] = rng.uniform(*cfg.smile_level)
        t += rng.uniform(*cfg.smile_every)
    return np.convolve(smile, np.ones(5) / 5, mode="same").astype(np.float32)  # 0.2-s onsets, not steps


def participant(rng: np.random.Generator, smile: np.ndarray, cfg: ProbeConfig) -> Participant:
    frames = len(smile)
    motion = (cfg.noise * rng.standard_normal((frames, MOTION_DIM))).astype(np.float32)
    motion[:, list(SMILE)] += smile[:, None]
    pcm = (cfg.hiss * rng.standard_normal(frames * SAMPLE_RATE // FPS)).astype(np.float32)
    return Participant(motion, log_mel(pcm).astype(np.float16), np.ones(frames, bool),
                       np.zeros(MOTION_DIM, np.float32))


def write_corpus(root: Path, cfg: ProbeConfig, lag: float) -> None:
    frames, shift = int(cfg.seconds * FPS), int(round(lag * FPS))
    for split, count in (("train", cfg.conversations), ("heldout", 2)):
        convs = []
        for i in range(count):
            rng = np.random.default_rng([i, split == "heldout"])
            user = smile_track(rng, frames, cfg)
            answer = cfg.answer_gain * np.concatenate([np.zeros(shift, np.float32), user[: frames - shift]])
            convs.append(Conversation(f"probe-{split}-{i}", split,
                                      [participant(rng, user, cfg), participant(rng, answer, cfg)]))
        write_shard(root, f"{split}-0", convs)
    write_index(root)


def probe(checkpoint: Path, cfg: ProbeConfig, history_noise: float) -> dict[str, float]:
    """The avatar's mean smile in each phase, for a smiling user and a still one (the difference is the
    reaction)."""
    from avatar_forcing.stream.options import SessionOptions
    from avatar_forcing.stream.session import AvatarSession

    frames = int(cfg.probe_seconds * FPS)
    on, off = int(cfg.probe_on * FPS), int(cfg.probe_off * FPS)
    user = np.zeros((frames, MOTION_DIM), np.float32)
    user[on:off, list(SMILE)] = cfg.probe_level
    silence = np.zeros(frames * SAMPLE_RATE // FPS, np.float32)
    smiles = {}
    for name, motion in (("smiling", user), ("still", np.zeros_like(user))):
        options = SessionOptions(render=False, history_noise=history_noise)
        with AvatarSession(checkpoint, options=options) as session:
            session.push_user_motion(motion, 0.0)
            session.push_user_audio(silence, SAMPLE_RATE, 0.0)
            session.push_avatar_audio(silence, SAMPLE_RATE)
            session.finish()
            blocks = []
            while (block := session.step()) is not None:
                blocks.append(block.motion)
        smiles[name] = np.concatenate(blocks)[:frames][:, list(SMILE)].mean(1)
    reaction = smiles["smiling"] - smiles["still"]
    half = int(1.0 * FPS)  # the first second after onset holds the lag
    return {
        "before": float(reaction[:on].mean()),
        "first_second": float(reaction[on : on + half].mean()),
        "during": float(reaction[on + half : off].mean()),
        "after": float(reaction[off + half :].mean()),
        "asked": cfg.answer_gain * cfg.probe_level,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lag", type=float, default=0.5, help="seconds from the user's smile to the answer")
    parser.add_argument("--out", type=Path, default=Path("runs/reaction_probe"))
    parser.add_argument("--history-noise", type=float, nargs="+", default=[0.0, 0.2, 0.4],
                        help="SessionOptions.history_noise values to probe with")
    args = parser.parse_args()
    cfg = ProbeConfig()
    data = args.out / "data"
    if not (data / "index.json").exists():
        write_corpus(data, cfg, args.lag)
    run = args.out / "model"
    subprocess.run([str(Path(sys.executable).with_name("avatar-forcing")), "train", "--preset", args.preset,
                    "--data", str(data), "--out", str(run), "--steps", str(args.steps), "--warmup", "40",
                    "--val-every", "0", "--ckpt-every", str(args.steps), "--resume"], check=True)
    result = {"preset": args.preset, "steps": args.steps, "lag": args.lag,
              "history_noise": {str(h): probe(run / "latest", cfg, h) for h in args.history_noise}}
    (args.out / "probe.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

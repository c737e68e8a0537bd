"""Fit the synthetic corpus's real-unit gains (avatar_forcing/data/synth/config.py: REAL_UNIT_GAINS).

For each motion channel: what MediaPipe reads on a typical real talking person (the median over the
videos with speech of each video's 95th percentile of relative motion; docs/benchmarks/real_faces.json,
written by scripts/measure_real_faces.py) over the corpus's own 95th percentile while its speakers talk,
with every gain at 1. Rotations are matched on their standard deviation (head motion is symmetric around
rest). The two sides of a paired channel share one gain (their mean), so the corpus stays symmetric; a
median over people keeps one expressive speaker from setting the units. Gains are clipped to a sane range;
channels the corpus never moves cannot be scaled and are listed. Prints the table and the dict to paste;
--check re-measures with the shipped gains.

    .venv/bin/python scripts/fit_synth_units.py [--conversations 6] [--check]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avatar_forcing.data.synth import PRESETS, generate_fresh
from avatar_forcing.data.synth.config import RealUnitsConfig
from avatar_forcing.motion.vector import FPS, POSE_NAMES, idx


@dataclass(frozen=True)
class FitConfig:
    quantile: float = 95.0
    seconds: float = 45.0  # per conversation
    min_synth: float = 0.02  # a channel below this p95 is not moved by the corpus: no gain
    gain_range: tuple[float, float] = (0.1, 4.0)
    rotations: tuple[str, ...] = ("pitch", "yaw", "roll")  # matched on std; translations follow them
    never_read: tuple[str, ...] = ("cheekSquintLeft", "cheekSquintRight")  # real p95 is 0: gain 0
    # Smiles are set where they are made (TalkingConfig.speaking_smile while talking; listening smiles
    # are reactions, whose strength the listening rules own): a gain here would weaken both alike.
    set_elsewhere: tuple[str, ...] = ("mouthSmileLeft", "mouthSmileRight")


def speaking_frames(conv, p: int) -> np.ndarray:
    act = np.zeros(conv.frames, bool)
    for turn in conv.meta["turns"]:
        if turn["speaker"] == p and turn["kind"] == "sentence":
            act[int(turn["start"] * FPS): int(turn["end"] * FPS)] = True
    return act


def corpus_motion(n: int, cfg: FitConfig, gains: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    base = PRESETS["default"]
    dialogue = dataclasses.replace(base.dialogue, duration=(cfg.seconds,) * 2)
    synth = dataclasses.replace(base, dialogue=dialogue, units=RealUnitsConfig(gains))
    motion, speaking = [], []
    for i in tqdm(range(n), desc="synth", unit="conv"):
        conv = generate_fresh(0, "train", i, synth)
        for p in range(2):
            motion.append(conv.participants[p].motion)
            speaking.append(speaking_frames(conv, p))
    return np.concatenate(motion), np.concatenate(speaking)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path, default=Path("docs/benchmarks/real_faces.json"))
    parser.add_argument("--conversations", type=int, default=6)
    parser.add_argument("--check", action="store_true", help="measure with the shipped gains instead of 1")
    args = parser.parse_args(argv)
    cfg = FitConfig()
    videos = [v for v in json.loads(args.real.read_text())["videos"].values() if v["has_audio"]]
    stat = {name: "std" if name in cfg.rotations else f"p{cfg.quantile:g}" for name in videos[0]["relative"]}
    real = {name: float(np.median([v["relative"][name][key] for v in videos])) for name, key in stat.items()}
    motion, speaking = corpus_motion(args.conversations, cfg, RealUnitsConfig().gains if args.check else {})
    gains: dict[str, float] = {}
    print(f"{len(videos)} real videos with speech; {len(motion) / FPS:.0f} s of synthetic motion")
    print(f"{'channel':20s} {'real':>7s} {'synth':>7s} {'gain':>6s}   (p{cfg.quantile:g}; rotations: std)")
    for name, want in real.items():
        if (name in POSE_NAMES and name not in cfg.rotations) or name in cfg.set_elsewhere:
            continue
        x = motion[speaking, idx(name)]
        have = float(x.std()) if name in cfg.rotations else float(np.percentile(x, cfg.quantile))
        if name in cfg.never_read:
            gain = 0.0
        elif have < cfg.min_synth:
            print(f"{name:20s} {want:7.3f} {have:7.3f}      -   the corpus does not move it")
            continue
        else:
            gain = float(np.clip(want / have, *cfg.gain_range))
        gains[name] = round(gain, 2)
        print(f"{name:20s} {want:7.3f} {have:7.3f} {gain:6.2f}")
    for name in [n for n in gains if n.endswith("Left")]:
        pair = name.removesuffix("Left") + "Right"
        if pair in gains:
            gains[name] = gains[pair] = round((gains[name] + gains[pair]) / 2, 2)
    if not args.check:
        print("REAL_UNIT_GAINS =", json.dumps(gains))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The DPO ablation of issue 6, trained and measured on one machine.

    python scripts/ablation.py --data data/synth --out runs/ablation [--steps 400] [--dpo-steps 100]
                               [--phase all|train|dpo|eval|video]

Three `tiny` models on the same data with the same pretraining budget:
  (a) the user condition always dropped (talking-only),
  (b) user audio + motion, no DPO,
  (c) (b) followed by DPO (losers = (b) itself with the user conditions dropped).
(a) and (b) train side by side (one thread each). Then `eval model` streams all three over the
held-out split, with the preference proxy of (c) against (b), and a side-by-side video of one held-out
conversation is rendered (user on the left) with a contact sheet of its frames.
Every phase skips work whose output already exists, so an interrupted run continues.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class AblationConfig:
    steps: int = 400  # stage-1 optimizer steps for (a) and (b) (batch 16, the tiny preset)
    warmup: int = 50
    dpo_steps: int = 100  # stage-2 steps for (c)
    dpo_beta: float = 1000.0
    dpo_lam: float = 0.1
    loser_nfe: int = 4  # Euler steps of the on-the-fly losers (cost of a DPO step)
    eval_clips: int = 8  # held-out conversations (x 2 roles)
    eval_seconds: float = 20.0
    eval_nfe: int = 10
    video_seconds: float = 12.0
    seed: int = 0


def cli(*args: str, log: Path | None = None, background: bool = False):
    cmd = [sys.executable, "-m", "avatar_forcing.cli", *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    print("$ avatar-forcing " + " ".join(args), flush=True)
    out = open(log, "w") if log else None  # noqa: SIM115 (closed by the OS when the child exits)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT if out else None)
    if background:
        return proc
    if proc.wait() != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(args)}" + (f"; see {log}" if log else ""))
    return proc


def train(cfg: AblationConfig, data: str, out: Path) -> None:
    procs = []
    for name, condition in (("a", "drop_always"), ("b", "normal")):
        if (out / name / "latest" / "config.json").is_file():
            continue
        procs.append((name, cli("train", "--preset", "tiny", "--data", data, "--out", str(out / name),
                                "--steps", str(cfg.steps), "--warmup", str(cfg.warmup), "--user-condition",
                                condition, "--val-every", "0", "--ckpt-every", str(cfg.steps),
                                "--seed", str(cfg.seed), log=out / f"train_{name}.log", background=True)))
    t0 = time.time()
    for name, p in procs:
        if p.wait() != 0:
            raise SystemExit(f"training ({name}) failed; see {out / f'train_{name}.log'}")
    if procs:
        print(f"stage 1: {len(procs)} models x {cfg.steps} steps in {(time.time() - t0) / 60:.1f} min")


def dpo(cfg: AblationConfig, data: str, out: Path) -> None:
    if (out / "c" / "latest" / "config.json").is_file():
        return
    t0 = time.time()
    cli("train", "dpo", "--preset", "tiny", "--from", str(out / "b" / "latest"), "--data", data,
        "--out", str(out / "c"), "--steps", str(cfg.dpo_steps), "--beta", str(cfg.dpo_beta),
        "--lam", str(cfg.dpo_lam), "--loser-nfe", str(cfg.loser_nfe), "--val-every", "0",
        "--ckpt-every", str(cfg.dpo_steps), "--seed", str(cfg.seed), log=out / "train_c.log")
    print(f"stage 2 (DPO): {cfg.dpo_steps} steps in {(time.time() - t0) / 60:.1f} min")


def evaluate(cfg: AblationConfig, data: str, out: Path) -> None:
    cli("eval", "model", *(f"{n}={out / n / 'latest'}" for n in "abc"), "--data", data,
        "--clips", str(cfg.eval_clips), "--seconds", str(cfg.eval_seconds), "--nfe", str(cfg.eval_nfe),
        "--seed", str(cfg.seed), "--threads", "2", "--preference", "c:b", "-o", str(out / "eval"))


def video(cfg: AblationConfig, data: str, out: Path, sheet: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from avatar_forcing.eval.sidebyside import side_by_side

    side_by_side({n: out / n / "latest" for n in "abc"}, data, out / "ablation.mp4", sheet,
                 seconds=cfg.video_seconds, nfe=cfg.eval_nfe, seed=cfg.seed)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/synth")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--phase", default="all", choices=("all", "train", "dpo", "eval", "video"))
    p.add_argument("--steps", type=int, default=AblationConfig.steps)
    p.add_argument("--dpo-steps", type=int, default=AblationConfig.dpo_steps)
    p.add_argument("--beta", type=float, default=AblationConfig.dpo_beta)
    p.add_argument("--lam", type=float, default=AblationConfig.dpo_lam)
    p.add_argument("--clips", type=int, default=AblationConfig.eval_clips)
    p.add_argument("--sheet", default="docs/images/ablation_frames.png")
    args = p.parse_args()
    cfg = AblationConfig(steps=args.steps, dpo_steps=args.dpo_steps, dpo_beta=args.beta, dpo_lam=args.lam,
                         eval_clips=args.clips)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    phases = ("train", "dpo", "eval", "video") if args.phase == "all" else (args.phase,)
    for phase in phases:
        if phase == "video":
            video(cfg, args.data, out, Path(args.sheet))
        else:
            {"train": train, "dpo": dpo, "eval": evaluate}[phase](cfg, args.data, out)


if __name__ == "__main__":
    main()

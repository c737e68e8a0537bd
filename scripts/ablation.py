"""The DPO ablation of issue 6, trained and measured on one machine.

    python scripts/ablation.py --data data/synth --out runs/ablation [--steps 600] [--dpo-steps 60]
                               [--phase all|train|dpo|eval|curves|video]

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
    steps: int = 600  # stage-1 optimizer steps for (a) and (b) (batch 16, the tiny preset)
    warmup: int = 50
    dpo_steps: int = 60  # stage-2 steps for (c) (~5 s each on a loaded 2-core CPU)
    dpo_lr: float = 1e-4  # the tiny DPO preset's 3e-5 barely moves the weights in so few steps
    dpo_warmup: int = 10
    dpo_beta: float = 1000.0
    dpo_lam: float = 0.1
    loser_nfe: int = 4  # Euler steps of the on-the-fly losers (cost of a DPO step)
    eval_clips: int = 6  # held-out conversations (x 2 roles)
    eval_seconds: float = 15.0
    eval_nfe: int = 10
    video_seconds: float = 12.0
    panel: int = 256  # rendered size of each of the four panels
    sheet_rows: int = 6  # frames on the contact sheet
    sheet_scale: float = 0.75  # the sheet is downscaled to keep the PNG in docs/ small
    seed: int = 0


def cli(*args: str, log: Path | None = None, background: bool = False):
    cmd = [sys.executable, "-c", "import sys; from avatar_forcing.cli import main; sys.exit(main())", *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    print("$ avatar-forcing " + " ".join(args), flush=True)
    out = open(log, "w") if log else None  # noqa: SIM115 (closed by the OS when the child exits)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT if out else None)
    if background:
        return proc
    if proc.wait() != 0:
        where = f"; see {log}" if log else ""
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(args)}{where}")
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
        "--out", str(out / "c"), "--steps", str(cfg.dpo_steps), "--lr", str(cfg.dpo_lr),
        "--warmup", str(cfg.dpo_warmup), "--beta", str(cfg.dpo_beta),
        "--lam", str(cfg.dpo_lam), "--loser-nfe", str(cfg.loser_nfe), "--val-every", "0",
        "--ckpt-every", str(cfg.dpo_steps), "--seed", str(cfg.seed), log=out / "train_c.log")
    print(f"stage 2 (DPO): {cfg.dpo_steps} steps in {(time.time() - t0) / 60:.1f} min")


def evaluate(cfg: AblationConfig, data: str, out: Path) -> None:
    cli("eval", "model", *(f"{n}={out / n / 'latest'}" for n in "abc"), "--data", data,
        "--clips", str(cfg.eval_clips), "--seconds", str(cfg.eval_seconds), "--nfe", str(cfg.eval_nfe),
        "--seed", str(cfg.seed), "--threads", "2", "--preference", "c:b", "-o", str(out / "eval"))


def video(cfg: AblationConfig, data: str, out: Path, sheet: Path) -> None:
    """One held-out conversation through the streaming engine with rendering on, for (a), (b), (c); the
    user (their ground-truth motion on the mirrored astronaut) on the left; a contact sheet of frames."""
    import numpy as np

    from avatar_forcing.eval.evaluate import EvalConfig, heldout_clips, load_eval_model
    from avatar_forcing.media.video import VideoWriter
    from avatar_forcing.motion.renderer import PortraitRenderer
    from avatar_forcing.stream.generate import default_portrait, mix
    from avatar_forcing.stream.inputs import SAMPLE_RATE
    from avatar_forcing.stream.options import SessionOptions
    from avatar_forcing.stream.session import AvatarSession

    clip = heldout_clips(data, EvalConfig(clips=1, seconds=cfg.video_seconds, roles=(0,)))[0]
    user = PortraitRenderer(default_portrait(mirrored=True), size=cfg.panel)
    panels = {"user": user.render_many(clip.user_motion)}
    for name in "abc":
        m = load_eval_model(f"{name}={out / name / 'latest'}")
        opts = SessionOptions(nfe=cfg.eval_nfe, seed=cfg.seed, output_size=cfg.panel, threads=2)
        session = AvatarSession(portrait=default_portrait(), options=opts, model=m.model, stats=m.stats)
        session.push_avatar_audio(clip.avatar_audio, SAMPLE_RATE)
        if not m.talking_only:
            session.push_user_audio(clip.user_audio, SAMPLE_RATE)
            session.push_user_motion(clip.user_motion.astype(np.float32))
        session.finish()
        frames = []
        while (block := session.step()) is not None:
            frames.append(block.frames)
        session.close()
        panels[f"({name}) " + LABELS[name]] = np.concatenate(frames)[: clip.frames]
    rows = [np.concatenate([_caption(panels[k][i], k) for k in panels], axis=1) for i in range(clip.frames)]
    with VideoWriter(out / "ablation.mp4", audio=mix(clip.avatar_audio, clip.user_audio)) as writer:
        for frame in rows:
            writer.write(frame)
    picks = np.linspace(0, clip.frames - 1, cfg.sheet_rows).round().astype(int)
    sheet.parent.mkdir(parents=True, exist_ok=True)
    import cv2

    grid = np.concatenate([_caption(rows[i], f"t={i / 25:.1f}s", corner="right") for i in picks], axis=0)
    grid = cv2.resize(grid, None, fx=cfg.sheet_scale, fy=cfg.sheet_scale, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(sheet), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {out / 'ablation.mp4'} ({clip.name}, {clip.frames} frames) and {sheet}")


LABELS = {"a": "no user", "b": "user, no DPO", "c": "user + DPO"}


def curves(cfg: AblationConfig, data: str, out: Path, path: Path) -> None:
    """Motion curves of one held-out clip (user, ground truth, (a), (b), (c)): head pitch with the
    labelled nod causes, jawOpen with the avatar's audio envelope, and the two smiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from avatar_forcing.eval import metrics as M
    from avatar_forcing.eval.evaluate import EvalConfig, heldout_clips, load_eval_model, stream_clip
    from avatar_forcing.motion.vector import idx

    ecfg = EvalConfig(clips=1, seconds=cfg.video_seconds, roles=(0,), nfe=cfg.eval_nfe, seed=cfg.seed)
    clip = heldout_clips(data, ecfg)[0]
    motions = {"ground truth": clip.gt}
    for name in "abc":
        motions[f"({name}) {LABELS[name]}"] = stream_clip(load_eval_model(f"{name}={out / name / 'latest'}"),
                                                        clip, ecfg, cfg.seed)
    t = np.arange(clip.frames) / 25
    fig, axes = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True)
    styles = {"ground truth": dict(color="k", lw=2)}
    for label, m in motions.items():
        st = styles.get(label, dict(lw=1.2))
        axes[0].plot(t, m[:, idx("pitch")], label=label, **st)
        axes[1].plot(t, m[:, idx("jawOpen")], **st)
        axes[2].plot(t, M.smile(m), **st)
    axes[0].plot(t, clip.user_motion[:, idx("pitch")], ":", color="grey", label="user")
    axes[2].plot(t, M.smile(clip.user_motion), ":", color="grey")
    env = M.audio_envelope(clip.avatar_audio)
    axes[1].fill_between(t[: len(env)], 0, env / max(env.max(), 1e-9) * 0.5, color="orange", alpha=0.25,
                         label="avatar audio envelope")
    for c in clip.nod_causes or []:
        axes[0].axvline(c, color="r", ls="--", lw=0.8)
    axes[0].set_ylabel("head pitch (rad, + = down)\nred: user phrase ends\nthe GT nodded after")
    axes[1].set_ylabel("jawOpen")
    axes[2].set_ylabel("smile (user dotted)")
    axes[2].set_xlabel("seconds")
    axes[0].legend(fontsize=8, ncol=3)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Held-out clip {clip.name}: streaming-engine motion of the three ablation models")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


def _caption(rgb, text: str, corner: str = "left"):
    import cv2

    img = rgb.copy()
    x = 6 if corner == "left" else img.shape[1] - 12 * len(text) - 6
    cv2.putText(img, text, (x, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (x, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/synth")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--phase", default="all", choices=("all", "train", "dpo", "eval", "curves", "video"))
    p.add_argument("--steps", type=int, default=AblationConfig.steps)
    p.add_argument("--dpo-steps", type=int, default=AblationConfig.dpo_steps)
    p.add_argument("--beta", type=float, default=AblationConfig.dpo_beta)
    p.add_argument("--lam", type=float, default=AblationConfig.dpo_lam)
    p.add_argument("--clips", type=int, default=AblationConfig.eval_clips)
    p.add_argument("--sheet", default="docs/images/ablation_frames.png")
    p.add_argument("--curves", default="docs/images/ablation_curves.png")
    args = p.parse_args()
    cfg = AblationConfig(steps=args.steps, dpo_steps=args.dpo_steps, dpo_beta=args.beta, dpo_lam=args.lam,
                         eval_clips=args.clips)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    phases = ("train", "dpo", "eval", "curves", "video") if args.phase == "all" else (args.phase,)
    for phase in phases:
        if phase == "curves":
            curves(cfg, args.data, out, Path(args.curves))
        elif phase == "video":
            video(cfg, args.data, out, Path(args.sheet))
        else:
            {"train": train, "dpo": dpo, "eval": evaluate}[phase](cfg, args.data, out)


if __name__ == "__main__":
    main()

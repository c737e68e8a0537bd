"""`avatar-forcing train [dpo]`: diffusion-forcing pretraining, or DPO fine-tuning of a stage-1 checkpoint.

    avatar-forcing train --preset tiny --data DIR [--out runs/X] [--steps N] [--resume]
                         [--user-condition drop_always|normal]
    avatar-forcing train dpo --from runs/X/latest --data DIR [--out runs/X-dpo] [--steps N] [--resume]

Under `torchrun --nproc_per_node K -m avatar_forcing.cli train ...` the same command trains data-parallel
(docs/TRAINING.md). Flags override the preset; `--config FILE` (JSON/YAML) replaces it first.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from avatar_forcing import config as config_io
from avatar_forcing.train.config import (
    CHANNEL_WEIGHTINGS,
    LOSER_FORMS,
    LOSER_MODES,
    LOSER_SOURCES,
    PRECISIONS,
    TRAIN_PRESETS,
    USER_CONDITIONS,
    DPOConfig,
    TrainConfig,
    dpo_preset,
    train_preset,
)

# CLI flag -> TrainConfig field (flags left unset keep the preset's value)
TRAIN_FLAGS = {
    "steps": "steps",
    "batch_size": "batch_size",
    "grad_accum": "grad_accum",
    "lr": "lr",
    "warmup": "warmup_steps",
    "user_condition": "user_condition",
    "p_drop_user": "p_drop_user",
    "precision": "precision",
    "val_every": "val_every",
    "ckpt_every": "ckpt_every",
    "workers": "num_workers",
    "device": "device",
    "seed": "seed",
}
DPO_FLAGS = {
    "beta": "beta",
    "lam": "lam",
    "loser_source": "loser_source",
    "loser_checkpoint": "loser_checkpoint",
    "loser_mode": "loser_mode",
    "loser_form": "loser_form",
    "channel_weighting": "channel_weighting",
    "phrase_end_pose": "phrase_end_pose",
    "loser_nfe": "loser_nfe",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "stage",
        nargs="?",
        choices=("pretrain", "dpo"),
        default="pretrain",
        help="pretrain (default): diffusion forcing; dpo: preference fine-tuning",
    )
    parser.add_argument("--preset", default="tiny", choices=sorted(TRAIN_PRESETS), help="training preset")
    parser.add_argument("--config", type=Path, default=None, help="JSON/YAML TrainConfig (DPOConfig for dpo)")
    parser.add_argument("--data", required=True, help="conversation corpus directory (`avatar-forcing data`)")
    parser.add_argument("--out", default=None, help="run directory (default: runs/<preset>[-dpo])")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/latest if it exists")
    parser.add_argument("--steps", type=int, help="optimizer steps in total")
    parser.add_argument("--batch-size", type=int, help="windows per process per micro-batch")
    parser.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--warmup", type=int, help="linear warm-up steps")
    parser.add_argument(
        "--user-condition",
        choices=USER_CONDITIONS,
        help="normal: CFG dropout at --p-drop-user; drop_always: the talking-only ablation model",
    )
    parser.add_argument("--p-drop-user", type=float, help="normal: how often the user condition is dropped")
    parser.add_argument("--precision", choices=PRECISIONS, help="auto: bf16 on CUDA, fp32 on the CPU")
    parser.add_argument("--val-every", type=int, help="steps between validation passes")
    parser.add_argument("--ckpt-every", type=int, help="steps between checkpoints")
    parser.add_argument("--workers", type=int, help="DataLoader workers per process")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--seed", type=int)
    dpo = parser.add_argument_group("dpo")
    dpo.add_argument("--from", dest="from_checkpoint", help="stage-1 checkpoint directory (dpo)")
    dpo.add_argument("--beta", type=float, help="DPO beta (default 1000)")
    dpo.add_argument("--lam", type=float, help="weight of L_DPO (default 0.1)")
    dpo.add_argument(
        "--loser-source", choices=LOSER_SOURCES, help="self: stage-1 model without user conditions"
    )
    dpo.add_argument("--loser-checkpoint", help="talking-only checkpoint for --loser-source checkpoint")
    dpo.add_argument("--loser-mode", choices=LOSER_MODES, help="generate losers per step or once per chunk")
    dpo.add_argument("--loser-form", choices=LOSER_FORMS,
                     help="sample: the user-dropped sample (paper); residual: winner minus user-driven part; "
                          "mismatched: the model's sample for another window's user; mixed: half sample, "
                          "half mismatched")
    dpo.add_argument("--channel-weighting", choices=CHANNEL_WEIGHTINGS,
                     help="uniform: mean over all channels (paper); balanced: expression and pose half "
                     "each; expression: blendshapes only")
    dpo.add_argument("--phrase-end-pose", type=float,
                     help="the head pose's share of the preference after the user's phrase ends (0: off)")
    dpo.add_argument("--loser-nfe", type=int, help="Euler steps when generating losers")


def _flags(args: argparse.Namespace, mapping: dict[str, str]) -> dict:
    return {field: getattr(args, flag) for flag, field in mapping.items() if getattr(args, flag) is not None}


def run(args: argparse.Namespace) -> int:
    if args.stage == "dpo":
        return _run_dpo(args)
    from avatar_forcing.train.pretrain import pretrain

    cfg = config_io.load(TrainConfig, args.config) if args.config else train_preset(args.preset)
    cfg = config_io.override(cfg, **_flags(args, TRAIN_FLAGS))
    out = Path(args.out or f"runs/{args.preset}")
    result = pretrain(cfg, args.data, out, resume=args.resume)
    _report(result)
    return 0


def _run_dpo(args: argparse.Namespace) -> int:
    from avatar_forcing.errors import ConfigError
    from avatar_forcing.train.dpo import run_dpo

    if not args.from_checkpoint:
        raise ConfigError(
            "`train dpo` needs --from CKPT, a stage-1 checkpoint directory (e.g. runs/tiny/latest)"
        )
    cfg = config_io.load(DPOConfig, args.config) if args.config else dpo_preset(args.preset)
    cfg.train = config_io.override(cfg.train, **_flags(args, TRAIN_FLAGS))
    cfg = config_io.override(cfg, **_flags(args, DPO_FLAGS))
    out = Path(args.out or f"runs/{args.preset}-dpo")
    result = run_dpo(cfg, args.from_checkpoint, args.data, out, resume=args.resume)
    _report(result)
    return 0


def _report(result) -> None:
    val = "n/a" if result.val_loss is None else f"{result.val_loss:.4f}"
    # a resumed run that was already complete took no step, so it has no training loss to report
    train = "n/a (no steps run)" if math.isnan(result.train_loss) else f"{result.train_loss:.4f}"
    print(
        f"done: step {result.step}, train loss {train}, val loss (EMA) {val}, "
        f"{result.seconds / 60:.1f} min; checkpoint {result.out_dir / 'latest'}, "
        f"curve {result.out_dir / 'loss_curve.png'}"
    )

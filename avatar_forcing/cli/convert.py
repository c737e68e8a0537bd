"""`avatar-forcing convert-official`: the authors' released .pth files -> our safetensors checkpoint.

The .pth files are read with torch.load(weights_only=True) only. Every key is accounted for (see
avatar_forcing/model/official.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from avatar_forcing.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--flow", required=True, type=Path, help="flow_transformer.pth")
    parser.add_argument("--motion", type=Path, help="motion_autoencoder.pth (learned motion backend)")
    parser.add_argument("--wav2vec", type=Path, help="local wav2vec2-base-960h folder (recorded, not copied)")
    parser.add_argument("--heads", type=int, default=8, help="attention heads (not visible in the shapes)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output checkpoint directory")


def convert_motion(path: Path, output: Path) -> dict:
    """Hook for the motion auto-encoder: the LIA backend provides `convert_official(path, output) -> dict`."""
    try:
        from avatar_forcing.motion.lia.official import convert_official
    except ImportError:
        raise ConfigError("--motion: the learned motion backend (motion/lia) is not available yet") from None
    return convert_official(path, output)


def run(args: argparse.Namespace) -> int:
    from avatar_forcing.model.checkpoint import save_checkpoint
    from avatar_forcing.model.config import model_preset
    from avatar_forcing.model.official import load_official

    if args.wav2vec is not None and not args.wav2vec.is_dir():
        raise ConfigError(f"--wav2vec {args.wav2vec} is not a folder")
    model, report = load_official(args.flow, model_preset("paper", heads=args.heads))
    extra = {
        "source": "official",
        "flow": str(args.flow),
        "unused_keys": report["unused"],
        "sampler": {"schedule": "official"},
        "audio_features": "wav2vec2",
        "wav2vec": None if args.wav2vec is None else str(args.wav2vec.resolve()),
    }
    if args.motion is not None:
        extra["motion"] = convert_motion(args.motion, args.output)
    save_checkpoint(args.output, model, extra=extra)
    print(
        f"converted {len(report['loaded'])} tensors ({model.num_parameters():,} parameters) -> {args.output}"
    )
    if report["unused"]:
        print(f"intentionally unused: {', '.join(report['unused'])}")
    return 0

"""`avatar-forcing convert-official`: the authors' released .pth files -> our safetensors checkpoint.

The .pth files are read with torch.load(weights_only=True) only. Every key is accounted for (see
avatar_forcing/model/official.py and motion/lia/official.py). The output directory is a checkpoint that
`AvatarSession`, `generate` and `serve` load like any other: its config records the LIA motion backend
(`extra["motion"]`), the wav2vec2 features and their local folder, the authors' sampling schedule, and
identity motion statistics (the authors feed raw LIA latents to the DFoT)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from avatar_forcing.errors import CheckpointError, ConfigError


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


def check_wav2vec(folder: Path, audio_dim: int) -> None:
    """The folder is complete and its layers x hidden size is what the flow transformer takes."""
    from avatar_forcing.audio.wav2vec import _check_folder

    _check_folder(folder)  # InputError naming what is missing
    config = json.loads((folder / "config.json").read_text())
    dim = int(config.get("num_hidden_layers", 0)) * int(config.get("hidden_size", 0))
    if dim != audio_dim:
        raise CheckpointError(f"--wav2vec {folder}: its {config.get('num_hidden_layers')} layers x "
                              f"{config.get('hidden_size')} give {dim} features per frame, but the flow "
                              f"transformer takes {audio_dim}")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from avatar_forcing.model.checkpoint import save_checkpoint
    from avatar_forcing.model.config import model_preset
    from avatar_forcing.model.official import load_official
    from avatar_forcing.motion.vector import MotionStats

    if args.wav2vec is not None and not args.wav2vec.is_dir():
        raise ConfigError(f"--wav2vec {args.wav2vec} is not a folder")
    model, report = load_official(args.flow, model_preset("paper", heads=args.heads))
    if args.wav2vec is not None:
        check_wav2vec(args.wav2vec, model.cfg.audio_dim)
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
        style_dim = extra["motion"]["config"]["style_dim"]
        if style_dim != model.cfg.motion_dim:
            raise CheckpointError(f"{args.motion}: the motion auto-encoder's latents have {style_dim} "
                                  f"numbers but the flow transformer generates {model.cfg.motion_dim}")
    dim = model.cfg.motion_dim
    stats = MotionStats(np.zeros(dim, np.float32), np.ones(dim, np.float32))  # raw latents, as the authors
    save_checkpoint(args.output, model, stats=stats, extra=extra)
    print(
        f"converted {len(report['loaded'])} tensors ({model.num_parameters():,} parameters) -> {args.output}"
    )
    if report["unused"]:
        print(f"intentionally unused: {', '.join(report['unused'])}")
    return 0

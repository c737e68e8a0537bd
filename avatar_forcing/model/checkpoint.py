"""Our checkpoint format: a directory with `model.safetensors` (weights, config in its metadata) and
`config.json` (model config, motion normalization stats, free-form extras). No pickles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from avatar_forcing.config import from_dict, to_dict
from avatar_forcing.errors import AvatarForcingError, CheckpointError
from avatar_forcing.model.config import ModelConfig
from avatar_forcing.model.dfot import DFoT

WEIGHTS, CONFIG, FORMAT = "model.safetensors", "config.json", "avatar-forcing-dfot/1"


def save_checkpoint(
    directory: str | Path,
    model: DFoT,
    cfg: ModelConfig | None = None,
    stats: Any = None,
    extra: dict | None = None,
) -> Path:
    """Write weights and config; `stats` is a MotionStats (or None), `extra` any JSON-able dict."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "model": to_dict(cfg or model.cfg),
        "stats": None if stats is None else stats.to_dict(),
        "extra": extra or {},
    }
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(directory / WEIGHTS), metadata={"config": json.dumps(meta)})
    (directory / CONFIG).write_text(json.dumps(meta, indent=2))
    return directory


def read_config(directory: str | Path) -> dict:
    path = Path(directory) / CONFIG
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint config {path}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an Avatar Forcing DFoT checkpoint (format {FORMAT} expected)")
    return meta


def load_checkpoint(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[DFoT, ModelConfig, Any]:
    """-> (model in eval mode, its config, MotionStats or None). Raises CheckpointError on anything odd."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    meta = read_config(directory)
    try:
        cfg = from_dict(ModelConfig, meta["model"]).validate()
    except (AvatarForcingError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {directory} has an invalid model config: {exc}") from None
    try:
        tensors = load_file(str(directory / WEIGHTS))
    except (OSError, SafetensorError, ValueError) as exc:
        raise CheckpointError(f"cannot read weights {directory / WEIGHTS}: {exc}") from None
    model = DFoT(cfg)
    check_state_dict(model, tensors, str(directory / WEIGHTS))
    model.load_state_dict(tensors)
    stats = None
    if meta.get("stats") is not None:
        from avatar_forcing.motion.vector import MotionStats

        stats = MotionStats.from_dict(meta["stats"])
    return model.to(device).eval(), cfg, stats


def check_state_dict(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Every key present with the right shape and no extras; the first offending key is named."""
    expected = model.state_dict()
    for key, value in expected.items():
        if key not in tensors:
            raise CheckpointError(f"{source}: missing key {key!r}")
        if tuple(tensors[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{source}: key {key!r} has shape {tuple(tensors[key].shape)}, expected {tuple(value.shape)}"
            )
        if not tensors[key].is_floating_point() or not torch.isfinite(tensors[key]).all():
            raise CheckpointError(f"{source}: key {key!r} is not a finite floating-point tensor")
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise CheckpointError(f"{source}: unexpected key {extra[0]!r} (another architecture?)")

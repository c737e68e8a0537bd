"""Resumable training state without pickles: tensors in safetensors, everything else in JSON.

A run directory's ``latest/`` holds, beside the model checkpoint (model/checkpoint.py):
  train_state.safetensors   raw weights ("model.*"), EMA weights ("ema.*"), optimizer tensors ("optim.*")
  train_state.json          step, EMA update count, optimizer scalars, anything else JSON-able
  rng.rank{R}.safetensors   each rank's torch / CUDA / loss-generator RNG states, with numpy and Python
                            RNG states and the rank's data position in the file's JSON metadata
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from avatar_forcing.errors import CheckpointError

STATE_TENSORS = "train_state.safetensors"
STATE_JSON = "train_state.json"
STATE_VERSION = 1


def save_train_state(
    directory: Path,
    model: dict[str, torch.Tensor],
    ema: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    info: dict[str, Any],
) -> None:
    tensors = {f"model.{k}": v for k, v in model.items()} | {f"ema.{k}": v for k, v in ema.items()}
    opt = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in opt["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{name}"] = value
            else:
                scalars.setdefault(str(idx), {})[name] = value
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    save_file(tensors, str(directory / STATE_TENSORS))
    meta = {
        "version": STATE_VERSION,
        "optimizer": {"param_groups": opt["param_groups"], "scalars": scalars},
        **info,
    }
    (directory / STATE_JSON).write_text(json.dumps(meta, indent=1))


def load_train_state(
    directory: Path, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    """Restore the optimizer in place; return (raw model weights, EMA weights, info)."""
    try:
        meta = json.loads((directory / STATE_JSON).read_text())
        tensors = load_file(str(directory / STATE_TENSORS))
    except (OSError, ValueError, SafetensorError) as exc:
        raise CheckpointError(f"cannot resume from {directory}: unreadable training state ({exc})") from None
    if meta.get("version") != STATE_VERSION:
        raise CheckpointError(
            f"{directory} has training-state version {meta.get('version')}, this code reads {STATE_VERSION}"
        )
    model = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    ema = {k[len("ema.") :]: v for k, v in tensors.items() if k.startswith("ema.")}
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, entry in meta["optimizer"]["scalars"].items():
        state.setdefault(int(idx), {}).update(entry)
    groups = meta["optimizer"]["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"optimizer state in {directory} does not fit this model: {exc}") from None
    return model, ema, meta


def rng_file(rank: int) -> str:
    return f"rng.rank{rank}.safetensors"


def save_rng(directory: Path, rank: int, generator: torch.Generator, extra: dict[str, Any]) -> None:
    """One rank's random state (and its data position, passed in ``extra``)."""
    tensors = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
        "python": _jsonable(random.getstate()),
        **extra,
    }
    save_file(tensors, str(directory / rng_file(rank)), metadata={"state": json.dumps(meta)})


def load_rng(directory: Path, rank: int, generator: torch.Generator) -> dict[str, Any]:
    path = directory / rng_file(rank)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["state"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, KeyError, ValueError, SafetensorError) as exc:
        raise CheckpointError(
            f"cannot resume rank {rank} from {path}: {exc} "
            "(was the run saved with a different number of processes?)"
        ) from None
    torch.set_rng_state(tensors["torch"])
    generator.set_state(tensors["generator"])
    cuda = [tensors[f"cuda.{i}"] for i in range(len(tensors)) if f"cuda.{i}" in tensors]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    kind, keys, pos, has_gauss, cached = meta.pop("numpy")
    np.random.set_state((kind, np.asarray(keys, np.uint32), pos, has_gauss, cached))
    random.setstate(_tupled(meta.pop("python")))
    return meta


def _jsonable(value: Any) -> Any:
    return [_jsonable(v) for v in value] if isinstance(value, (tuple, list)) else value


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value

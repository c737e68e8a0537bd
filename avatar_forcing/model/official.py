"""The authors' checkpoint layout: a flat name -> tensor mapping with the prefixes `flow_transformer.`
(the DFoT) and `audio_encoder.audio_projection.` (the audio head). Our module tree uses the same names
below those prefixes, so the key map is a prefix swap.

Unlike the authors' silent, non-strict loader, every key must be accounted for: loaded, or listed here as
intentionally unused. A missing key, a wrong shape or an unknown key raises CheckpointError naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import torch

from avatar_forcing.errors import CheckpointError
from avatar_forcing.model.config import ModelConfig, model_preset
from avatar_forcing.model.dfot import DFoT
from avatar_forcing.model.masks import cross_attention_mask, self_attention_mask

FLOW_PREFIX = "flow_transformer."
AUDIO_HEAD_PREFIX = "audio_encoder.audio_projection."
# Buffers we recompute from the config; when present they are checked against our masks, not loaded.
MASK_BUFFERS = {
    "flow_transformer.block_bidir_causal_lookahead_mask": "self",
    "flow_transformer.alignment_mask": "cross",
}
# Keys that belong to other parts of the authors' model and are handled elsewhere (not errors here).
FOREIGN_PREFIXES = ("motion_autoencoder.", "audio_encoder.wav2vec2.")


def official_key(key: str) -> str:
    """Our state-dict key -> the authors' key."""
    if key.startswith("audio_projection."):
        return AUDIO_HEAD_PREFIX + key.removeprefix("audio_projection.")
    return FLOW_PREFIX + key


def read_official_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a `.pth` with torch.load(weights_only=True) (no code can run): a flat name -> tensor map."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated archives, pickles carrying code, foreign formats
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read {path} as a weights-only checkpoint: {first_line}") from None
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, not a flat name -> tensor mapping")
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: entry {key!r} is not a tensor (a nested or foreign checkpoint?)")
    return dict(data)


def infer_config(flat: Mapping[str, torch.Tensor], base: ModelConfig | None = None) -> ModelConfig:
    """Sizes from the tensor shapes; what shapes cannot tell (heads, block sizes) comes from `base`
    (the `paper` preset by default)."""
    base = base or model_preset("paper")

    def shape(name: str) -> tuple[int, ...]:
        key = official_key(name)
        if key not in flat:
            raise CheckpointError(f"missing key {key!r}: not a flow_transformer checkpoint")
        return tuple(flat[key].shape)

    depth = 0
    while official_key(f"blocks.{depth}.attn.qkv.weight") in flat:
        depth += 1
    return replace(
        base,
        width=shape("x_embedder.proj.weight")[0],
        motion_dim=shape("final_layer.linear.weight")[0],
        user_motion_dim=shape("c_embedder.motion_embedder.0.weight")[1],
        cond_dim=shape("c_embedder.to_cond_user.weight")[1],
        audio_dim=shape("audio_projection.0.weight")[1],
        time_embed_dim=shape("t_embedder.mlp.0.weight")[1],
        mlp_ratio=shape("blocks.0.mlp.fc1.weight")[0] / shape("x_embedder.proj.weight")[0],
        depth=depth,
    ).validate()


def load_official_state(model: DFoT, flat: Mapping[str, torch.Tensor], source: str = "checkpoint") -> dict:
    """Copy the authors' tensors into `model` (float32). Returns {"loaded": [...], "unused": [...]}."""
    state = model.state_dict()
    loaded = {}
    for key, ours in state.items():
        name = official_key(key)
        if name not in flat:
            raise CheckpointError(f"{source}: missing key {name!r}")
        value = flat[name]
        if tuple(value.shape) != tuple(ours.shape):
            raise CheckpointError(
                f"{source}: key {name!r} has shape {tuple(value.shape)}, expected {tuple(ours.shape)}"
            )
        if not value.is_floating_point():
            raise CheckpointError(f"{source}: key {name!r} has dtype {value.dtype}, expected floating point")
        loaded[key] = value.detach().to(torch.float32)
    known, unused = {official_key(k) for k in state}, []
    for name in flat:
        if name in MASK_BUFFERS:
            _check_mask(model.cfg, name, flat[name], source)
            unused.append(name)
        elif name.startswith(FOREIGN_PREFIXES):
            unused.append(name)
        elif name not in known:
            raise CheckpointError(f"{source}: unexpected key {name!r} (another architecture?)")
    model.load_state_dict(loaded)
    return {"loaded": [official_key(k) for k in loaded], "unused": unused}


def _check_mask(cfg: ModelConfig, name: str, value: torch.Tensor, source: str) -> None:
    frames = torch.arange(value.shape[-1])
    ours = self_attention_mask(frames, frames, cfg) if MASK_BUFFERS[name] == "self" else None
    if ours is None:
        ours = cross_attention_mask(frames, frames, cfg)
    if value.shape != ours.shape or not torch.equal(value.bool(), ours):
        raise CheckpointError(f"{source}: key {name!r} disagrees with the mask of this config ({cfg.mask})")


def export_official_state(model: DFoT) -> dict[str, torch.Tensor]:
    """Our weights in the authors' flat layout (the inverse of load_official_state), masks included."""
    flat = {official_key(k): v.detach().clone() for k, v in model.state_dict().items()}
    frames = torch.arange(model.cfg.window)
    flat["flow_transformer.block_bidir_causal_lookahead_mask"] = self_attention_mask(
        frames, frames, model.cfg
    )
    flat["flow_transformer.alignment_mask"] = cross_attention_mask(frames, frames, model.cfg)
    return flat


def load_official(path: str | Path, base: ModelConfig | None = None) -> tuple[DFoT, dict]:
    """Build a DFoT from the authors' `flow_transformer.pth` -> (model in eval mode, load report)."""
    flat = read_official_file(path)
    model = DFoT(infer_config(flat, base))
    report = load_official_state(model, flat, str(path))
    return model.eval(), report

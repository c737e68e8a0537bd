"""The authors' `motion_autoencoder.pth`: a flat name -> tensor mapping whose keys are our Generator's
state-dict keys behind the prefix `motion_autoencoder.`.

Unlike the authors' silent, non-strict loader, every key is accounted for:
* every parameter of the Generator must be present with the right shape (loaded as float32);
* blur/upsample kernel buffers are recomputed from the config; if the file carries them they must agree
  (then they are listed as unused);
* keys of the other sub-models (`flow_transformer.`, `audio_encoder.`) are listed as unused;
* anything else is an error naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path

import torch

from avatar_forcing.errors import CheckpointError
from avatar_forcing.motion.lia.generator import (
    BASE_CHANNELS,
    LIA_PRESETS,
    Generator,
    LiaConfig,
    save_generator,
)

PREFIX = "motion_autoencoder."
FOREIGN_PREFIXES = ("flow_transformer.", "audio_encoder.")
CONVERTED_FILE = "motion_autoencoder.safetensors"
BUFFER_ATOL = 1e-6


def infer_lia_config(flat: Mapping[str, torch.Tensor], base: LiaConfig = LIA_PRESETS["paper"]) -> LiaConfig:
    """Size, style and motion dims and channel multiplier from the tensor shapes."""
    direction = PREFIX + "dec.direction.weight"
    if direction not in flat:
        raise CheckpointError(f"missing key {direction!r}: not a motion auto-encoder checkpoint")
    if flat[direction].ndim != 2:
        raise CheckpointError(f"key {direction!r} has shape {tuple(flat[direction].shape)}, expected 2-D")
    style_dim, motion_dim = flat[direction].shape
    levels = 0
    while f"{PREFIX}dec.to_flows.{levels}.conv.weight" in flat:
        levels += 1
    size = 2 ** (levels + 2)
    if levels == 0 or size not in BASE_CHANNELS:
        raise CheckpointError(f"{levels} flow levels (keys {PREFIX}dec.to_flows.N) do not give a valid size")
    finest = flat[f"{PREFIX}dec.to_flows.{levels - 1}.conv.weight"]
    multiplier = max(1, round(finest.shape[2] / BASE_CHANNELS[size])) if finest.ndim == 5 else 1
    constant = flat.get(PREFIX + "dec.input.input")  # (1, channels at 4x4, 4, 4): the width cap
    max_channels = (
        int(constant.shape[1]) if constant is not None and constant.ndim == 4 else base.max_channels
    )
    return replace(
        base,
        size=size,
        style_dim=int(style_dim),
        motion_dim=int(motion_dim),
        channel_multiplier=multiplier,
        max_channels=max_channels,
    )


def load_official_motion_autoencoder(
    flat: Mapping[str, torch.Tensor], cfg: LiaConfig | None = None, source: str = "motion_autoencoder.pth"
) -> Generator:
    """Build a Generator from the authors' flat mapping; raises CheckpointError on the first bad key.
    The load report (loaded / unused keys) is attached as `generator.official_report`."""
    cfg = cfg or infer_lia_config(flat)
    with torch.device("meta"):  # check every key and shape before paying for a full-size allocation
        skeleton = Generator(cfg)
    params = dict(skeleton.named_parameters())
    buffer_names = {PREFIX + k for k, _ in skeleton.named_buffers()}
    for key, ours in params.items():
        name = PREFIX + key
        if name not in flat:
            raise CheckpointError(f"{source}: missing key {name!r}")
        _check_tensor(flat[name], ours, name, source)
    unused = []
    for name in flat:
        if name.startswith(PREFIX) and name.removeprefix(PREFIX) in params:
            continue
        if name in buffer_names or name.startswith(FOREIGN_PREFIXES):
            unused.append(name)
        else:
            raise CheckpointError(f"{source}: unexpected key {name!r} (another architecture?)")
    generator = Generator(cfg)
    ours_buffers = dict(generator.named_buffers())
    for name in unused:  # kernels are recomputed from the config; a file's copy must agree
        if name in buffer_names:
            ours = ours_buffers[name.removeprefix(PREFIX)]
            _check_tensor(flat[name], ours, name, source)
            if not torch.allclose(flat[name].float(), ours, atol=BUFFER_ATOL):
                raise CheckpointError(
                    f"{source}: buffer {name!r} disagrees with the blur kernel of this config"
                )
    with torch.no_grad():
        for key, param in generator.named_parameters():
            param.copy_(flat[PREFIX + key].detach().to(torch.float32))
    loaded = list(params)
    generator.official_report = {"loaded": [PREFIX + k for k in loaded], "unused": unused}
    return generator.eval()


def _check_tensor(value: torch.Tensor, ours: torch.Tensor, name: str, source: str) -> None:
    if tuple(value.shape) != tuple(ours.shape):
        raise CheckpointError(
            f"{source}: key {name!r} has shape {tuple(value.shape)}, expected {tuple(ours.shape)}"
        )
    if not value.is_floating_point():
        raise CheckpointError(f"{source}: key {name!r} has dtype {value.dtype}, expected floating point")


def export_official_motion_autoencoder(
    generator: Generator, buffers: bool = False
) -> dict[str, torch.Tensor]:
    """Our weights in the authors' flat layout (the inverse of the loader)."""
    state = generator.state_dict() if buffers else dict(generator.named_parameters())
    return {PREFIX + k: v.detach().clone() for k, v in state.items()}


def convert_official(path: str | Path, output: str | Path) -> dict:
    """`motion_autoencoder.pth` -> `<output>/motion_autoencoder.safetensors`; returns the record that goes
    into the checkpoint's config (file, LIA config, parameter count, unused keys)."""
    from avatar_forcing.model.official import read_official_file

    flat = read_official_file(path)
    generator = load_official_motion_autoencoder(flat, source=str(path))
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    save_generator(output / CONVERTED_FILE, generator)
    num = sum(p.numel() for p in generator.parameters())
    print(
        f"motion auto-encoder: {len(generator.official_report['loaded'])} tensors "
        f"({num:,} parameters, {generator.cfg.size} px) -> {output / CONVERTED_FILE}"
    )
    return {
        "backend": "lia",
        "file": CONVERTED_FILE,
        "source": str(path),
        "config": asdict(generator.cfg),
        "num_parameters": num,
        "unused_keys": generator.official_report["unused"],
    }

"""The LIA motion auto-encoder: ``enc`` (appearance encoder + motion MLP) and ``dec`` (direction basis +
flow-warping synthesis). Its state dict matches the authors' ``motion_autoencoder.pth`` layout key for key
(212 entries at 512 px) when ``max_channels`` keeps its default.

Latent algebra (LIA): an image x has appearance latent s = E(x) and motion coefficients a = fc(s); the
motion vector is r = Q a with Q the orthonormal direction basis. Decoding D(s_src + r_tgt, feats_src)
re-renders the source with the target's motion.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from avatar_forcing.config import from_dict, to_dict
from avatar_forcing.errors import CheckpointError
from avatar_forcing.motion.lia.decoder import Synthesis
from avatar_forcing.motion.lia.encoder import Encoder
from avatar_forcing.motion.lia.layers import BLUR_KERNEL

# Channel width per resolution of the released model; resolutions >= 64 are scaled by channel_multiplier
# in the decoder only (the encoder always uses multiplier 1).
BASE_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
MIN_SIZE = 64  # the flow/warp path needs a 64-px level


@dataclass(frozen=True)
class LiaConfig:
    size: int = 512
    style_dim: int = 512
    motion_dim: int = 20
    channel_multiplier: int = 1
    max_channels: int = 512  # caps every width; < 512 gives small trainable models (not key-compatible)
    blur_kernel: tuple[int, ...] = BLUR_KERNEL

    def channels(self, multiplier: int = 1) -> dict[int, int]:
        return {
            res: min(self.max_channels, ch * (multiplier if res >= 64 else 1))
            for res, ch in BASE_CHANNELS.items()
        }


LIA_PRESETS = {
    "paper": LiaConfig(),  # the authors' Generator(512, 512, 20)
    "conformance": LiaConfig(size=64),  # the 64-px reference case
    "tiny": LiaConfig(size=64, style_dim=64, motion_dim=8, max_channels=32),  # CPU tests
}


class Generator(nn.Module):
    def __init__(self, cfg: LiaConfig = LiaConfig()):
        super().__init__()
        if cfg.size < MIN_SIZE or cfg.size & (cfg.size - 1) or cfg.size > max(BASE_CHANNELS):
            raise ValueError(
                f"LIA size must be a power of two in [{MIN_SIZE}, {max(BASE_CHANNELS)}], got {cfg.size}"
            )
        self.cfg = cfg
        self.enc = Encoder(cfg.size, cfg.style_dim, cfg.motion_dim, cfg.channels(), cfg.blur_kernel)
        self.dec = Synthesis(
            cfg.size, cfg.style_dim, cfg.motion_dim, cfg.channels(cfg.channel_multiplier), cfg.blur_kernel
        )

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Image (B, 3, size, size) in [-1, 1] -> appearance latent s (B, style_dim), feature maps."""
        return self.enc(image)

    def motion(self, latent: torch.Tensor) -> torch.Tensor:
        """Appearance latent s -> motion vector r = Q fc(s) in the style space (B, style_dim)."""
        return self.dec.direction(self.enc.motion_coeffs(latent))

    def decode(self, latent: torch.Tensor, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder latent (s_src + r) and source feature maps -> image (B, 3, size, size), grid."""
        return self.dec(latent, feats)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Re-render `source` with the motion of `target` (the training reconstruction path)."""
        s_src, feats = self.encode(source)
        s_tgt, _ = self.encode(target)
        return self.decode(s_src + self.motion(s_tgt), feats)[0]


# --- our checkpoint format: one safetensors file with the config in its metadata ------------------------

CHECKPOINT_FORMAT = "avatar_forcing.lia/1"


def save_generator(path: str | Path, generator: Generator) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in generator.state_dict().items()}
    meta = {"format": CHECKPOINT_FORMAT, "config": json.dumps(to_dict(generator.cfg))}
    save_file(state, str(path), metadata=meta)


def load_generator(path: str | Path) -> Generator:
    """Load a file written by `save_generator` (strict: every key and shape must match its config)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"motion auto-encoder checkpoint {path} does not exist")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"cannot read {path} as safetensors: {exc}") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a LIA motion auto-encoder checkpoint (format {meta.get('format')!r})"
        )
    generator = Generator(from_dict(LiaConfig, json.loads(meta["config"])))
    expected = generator.state_dict()
    for key, ref in expected.items():
        if key not in state:
            raise CheckpointError(f"{path}: missing key {key!r}")
        if state[key].shape != ref.shape:
            raise CheckpointError(
                f"{path}: key {key!r} has shape {tuple(state[key].shape)}, expected {tuple(ref.shape)}"
            )
    extra = sorted(set(state) - set(expected))
    if extra:
        raise CheckpointError(f"{path}: unexpected key {extra[0]!r}")
    generator.load_state_dict(state)
    return generator.eval()

"""LIA-style motion auto-encoder: the paper's learned motion backend (loads `motion_autoencoder.pth`)."""

from avatar_forcing.motion.lia.generator import (
    LIA_PRESETS,
    Generator,
    LiaConfig,
    load_generator,
    save_generator,
)

__all__ = ["LIA_PRESETS", "Generator", "LiaConfig", "load_generator", "save_generator"]

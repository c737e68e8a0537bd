"""The causal DFoT motion generator: model, flow matching, samplers, checkpoints."""

from avatar_forcing.model.checkpoint import load_checkpoint, save_checkpoint
from avatar_forcing.model.config import FlowConfig, ModelConfig, SamplerConfig, model_preset
from avatar_forcing.model.dfot import DFoT
from avatar_forcing.model.flow import diffusion_forcing_loss, velocity
from avatar_forcing.model.streaming import StreamingGenerator, generate_offline

__all__ = [
    "DFoT",
    "FlowConfig",
    "ModelConfig",
    "SamplerConfig",
    "StreamingGenerator",
    "diffusion_forcing_loss",
    "generate_offline",
    "load_checkpoint",
    "model_preset",
    "save_checkpoint",
    "velocity",
]

"""The audio features a session computes, chosen by the checkpoint's config.

* ``log_mel`` (our checkpoints; the default when a config names none): causal log-mel, 320 numbers per
  25 fps frame, streamed bit-identically to the offline features (audio/features.py), through the noise
  suppression the model was trained with (audio/denoise.py; `extra["feature_config"]["denoise"]`), and
  with each voice's recent loudness appended when it was trained so (audio/voice_context.py;
  `extra["feature_config"]["voice_context"]`);
* ``wav2vec2`` (converted official checkpoints, `extra["audio_features"] == "wav2vec2"`): the 12 hidden
  layers of wav2vec2-base concatenated, 9216 per frame, from the local folder recorded at conversion
  (`extra["wav2vec"]`) or given in SessionOptions.wav2vec; streamed causally with a look-back window
  (audio/wav2vec.py). The projection to the model's width is part of the DFoT (its `audio_projection`).

One `AudioFeatures` is made per session (wav2vec2 is loaded once) and hands out a `FeatureStream` per
audio input (the user's and the avatar's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from avatar_forcing import config as config_io
from avatar_forcing.audio.denoise import DenoiseConfig, LogMelDenoiser
from avatar_forcing.audio.features import FEATURE_DIM, StreamingLogMel
from avatar_forcing.audio.voice_context import VoiceContext, VoiceContextConfig
from avatar_forcing.errors import CheckpointError

LOG_MEL, WAV2VEC2 = "log_mel", "wav2vec2"


class FeatureStream(Protocol):
    def push(self, pcm: np.ndarray) -> np.ndarray:
        """Mono float32 16 kHz samples -> features (n_new_frames, dim) of the whole frames completed."""
        ...

    def reset(self) -> None: ...


class AudioFeatures(Protocol):
    name: str
    dim: int

    def stream(self) -> FeatureStream: ...


class LogMelStream:
    """`StreamingLogMel`, then `LogMelDenoiser` and `VoiceContext` where the checkpoint was trained so."""

    def __init__(self, denoise: DenoiseConfig | None, voice_context: VoiceContextConfig | None):
        self.features = StreamingLogMel()
        self.denoiser = LogMelDenoiser(denoise) if denoise is not None else None
        self.context = VoiceContext(voice_context) if voice_context is not None else None

    def push(self, pcm: np.ndarray) -> np.ndarray:
        frames = self.features.push(pcm)
        if self.denoiser is not None:
            frames = self.denoiser.push(frames)
        return frames if self.context is None else self.context.push(frames)

    def reset(self) -> None:
        for stage in (self.features, self.denoiser, self.context):
            if stage is not None:
                stage.reset()


class LogMelFeatures:
    name = LOG_MEL

    def __init__(self, denoise: DenoiseConfig | None = None, voice_context: VoiceContextConfig | None = None):
        self.denoise, self.voice_context = denoise, voice_context
        self.dim = FEATURE_DIM + (voice_context.dim if voice_context is not None else 0)

    def stream(self) -> FeatureStream:
        if self.denoise is None and self.voice_context is None:
            return StreamingLogMel()
        return LogMelStream(self.denoise, self.voice_context)


class Wav2Vec2AudioFeatures:
    """One frozen wav2vec2 encoder shared by the session's audio streams."""

    name = WAV2VEC2

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu"):
        from avatar_forcing.audio.wav2vec import Wav2Vec2Features

        self.encoder = Wav2Vec2Features(folder, device=device)  # raises InputError naming what is missing
        self.dim = self.encoder.dim

    def stream(self) -> FeatureStream:
        from avatar_forcing.audio.wav2vec import Wav2Vec2Stream

        return Wav2Vec2Stream(self.encoder)


def audio_features_for(extra: dict, audio_dim: int, checkpoint_dir: str | Path | None = None,
                       wav2vec: str | Path | None = None,
                       device: str | torch.device = "cpu") -> AudioFeatures:
    """The extractor a checkpoint was trained with (`extra` is its config's free-form record);
    `wav2vec` overrides the folder recorded at conversion. Its dimension must be the model's."""
    kind = extra.get("audio_features", LOG_MEL)
    if kind == LOG_MEL:
        recorded = extra.get("feature_config") or {}
        denoise, context = recorded.get("denoise"), recorded.get("voice_context")
        features: AudioFeatures = LogMelFeatures(
            config_io.from_dict(DenoiseConfig, denoise) if denoise is not None else None,
            config_io.from_dict(VoiceContextConfig, context) if context is not None else None)
    elif kind == WAV2VEC2:
        folder = wav2vec or extra.get("wav2vec")
        if folder is None:
            raise CheckpointError(
                "this checkpoint takes wav2vec2 audio features but no wav2vec2 folder is recorded in it: "
                "pass the local wav2vec2-base-960h folder (SessionOptions.wav2vec, or --wav2vec)")
        folder = Path(folder)
        if checkpoint_dir is not None and not folder.is_absolute():
            folder = Path(checkpoint_dir) / folder
        features = Wav2Vec2AudioFeatures(folder, device)
    else:
        raise CheckpointError(f"unknown audio features {kind!r} in the checkpoint (expected "
                              f"{LOG_MEL!r} or {WAV2VEC2!r})")
    if features.dim != audio_dim:
        raise CheckpointError(f"the model takes {audio_dim} audio numbers per frame but {features.name} "
                              f"features have {features.dim}")
    return features

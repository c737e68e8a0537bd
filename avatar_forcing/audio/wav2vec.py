"""Optional wav2vec2 audio features (the paper's encoder), from a local folder only; never downloads.

Offline: the waveform (16 kHz) of n samples gives T = ceil(n * 25 / 16000) frames. Like the official
wrapper, the audio is replicate-padded to T * 640 samples, and the CNN feature sequence is linearly
interpolated (align_corners=True) to exactly T steps *before* the feature projection and the transformer,
so every transformer layer already runs at 25 fps. The output concatenates the outputs of transformer
layers 1..L layer-major: index = (layer - 1) * hidden + channel, so (T, 12 * 768 = 9216) for
wav2vec2-base. L and hidden come from the folder's config.json.

Streaming (`Wav2Vec2Stream`): wav2vec2 is bidirectional, so an exact causal form does not exist. Each
push computes the features of a window made of the new whole frames plus up to `lookback_s` seconds of
past audio (default 2 s) and keeps the window's last frames: each frame sees only the past. Its distance
to whole-file features is measured by `streaming_difference()`. Per-utterance input normalisation (if the
folder's preprocessor config asks for it, as wav2vec2-base's does) is per window in streaming.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avatar_forcing.errors import InputError


@dataclass(frozen=True)
class Wav2VecConfig:
    sample_rate: int = 16000
    fps: int = 25
    lookback_s: float = 2.0       # past audio each streaming window sees
    normalize_eps: float = 1e-7   # as in the HF feature extractor's zero-mean unit-variance normalisation

    @property
    def frame_samples(self) -> int:
        return self.sample_rate // self.fps


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise InputError(f"wav2vec2 folder not found: {folder} "
                         "(it must hold config.json and model.safetensors)")
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        pickled = (folder / "pytorch_model.bin").is_file()
        missing.append("model.safetensors" + (" (pytorch_model.bin is a pickle and is not loaded; convert it"
                                              " to safetensors)" if pickled else " (the weights)"))
    if missing:
        raise InputError(f"wav2vec2 folder {folder} is incomplete: missing {', '.join(missing)}")
    try:
        model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {folder / 'config.json'}: {e}") from None
    if model_type != "wav2vec2":
        raise InputError(f"{folder / 'config.json'} describes a {model_type!r} model, not wav2vec2")


class Wav2Vec2Features:
    """Frozen wav2vec2 encoder: mono 16 kHz pcm -> (T, n_layers * hidden) float32 at 25 fps."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu",
                 cfg: Wav2VecConfig = Wav2VecConfig()):
        from transformers import Wav2Vec2Model  # optional dependency, imported on use

        folder = Path(folder)
        _check_folder(folder)
        try:
            model = Wav2Vec2Model.from_pretrained(folder, local_files_only=True, use_safetensors=True)
        except (OSError, ValueError, RuntimeError) as e:
            raise InputError(f"cannot load wav2vec2 from {folder}: {e}") from None
        self.cfg = cfg
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.n_layers = model.config.num_hidden_layers
        self.hidden = model.config.hidden_size
        self.dim = self.n_layers * self.hidden
        self.normalize = True  # wav2vec2-base's feature extractor normalises; a local preprocessor may say no
        pre = folder / "preprocessor_config.json"
        if pre.is_file():
            self.normalize = bool(json.loads(pre.read_text()).get("do_normalize", True))

    def n_frames(self, n_samples: int) -> int:
        return math.ceil(n_samples * self.cfg.fps / self.cfg.sample_rate)

    @torch.inference_mode()
    def encode(self, pcm: np.ndarray, n_frames: int | None = None) -> np.ndarray:
        """Features of pcm; n_frames overrides T (the CNN output is interpolated to it)."""
        pcm = np.asarray(pcm, dtype=np.float32)
        if pcm.ndim != 1 or len(pcm) == 0 or not np.isfinite(pcm).all():
            raise InputError("wav2vec2 needs non-empty finite mono audio")
        T = self.n_frames(len(pcm))
        if n_frames is None and len(pcm) < T * self.cfg.frame_samples:
            pcm = np.pad(pcm, (0, T * self.cfg.frame_samples - len(pcm)), mode="edge")
        n_frames = T if n_frames is None else n_frames
        x = torch.from_numpy(pcm).to(self.device)[None]
        if self.normalize:
            x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + self.cfg.normalize_eps)

        def to_frames(module, inputs, output: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, C, T)
            return F.interpolate(output, size=n_frames, mode="linear", align_corners=True)

        hook = self.model.feature_extractor.register_forward_hook(to_frames)
        try:
            out = self.model(x, output_hidden_states=True)
        finally:
            hook.remove()
        layers = out.hidden_states[1:]  # [0] is the encoder input; 1..L are the layer outputs
        return torch.cat(layers, dim=-1)[0].float().cpu().numpy()

    __call__ = encode


class Wav2Vec2Stream:
    """Causal chunked wav2vec2: push(pcm) -> features of the whole frames completed so far."""

    def __init__(self, features: Wav2Vec2Features):
        self.features = features
        self.reset()

    def reset(self) -> None:
        self.pending = np.zeros(0, np.float32)   # samples of the incomplete frame
        self.history = np.zeros(0, np.float32)   # past whole frames, at most lookback_s

    def push(self, pcm: np.ndarray) -> np.ndarray:
        cfg, feats = self.features.cfg, self.features
        self.pending = np.concatenate([self.pending, np.asarray(pcm, dtype=np.float32)])
        n_new = len(self.pending) // cfg.frame_samples
        if n_new == 0:
            return np.zeros((0, feats.dim), np.float32)
        new = self.pending[: n_new * cfg.frame_samples]
        self.pending = self.pending[n_new * cfg.frame_samples:]
        window = np.concatenate([self.history, new])
        out = feats.encode(window)[-n_new:]
        keep = int(cfg.lookback_s * cfg.fps) * cfg.frame_samples
        self.history = window[-keep:] if keep > 0 else np.zeros(0, np.float32)
        return out


def streaming_difference(features: Wav2Vec2Features, pcm: np.ndarray, chunk_samples: int = 6400) -> dict:
    """How far the causal streaming features are from whole-file features (whole frames only)."""
    stream = Wav2Vec2Stream(features)
    got = np.concatenate([stream.push(pcm[i:i + chunk_samples]) for i in range(0, len(pcm), chunk_samples)])
    whole = len(pcm) // features.cfg.frame_samples * features.cfg.frame_samples
    ref = features.encode(pcm[:whole])
    diff = got - ref
    per_layer = diff.reshape(len(diff), features.n_layers, features.hidden)
    ref_layers = ref.reshape(len(ref), features.n_layers, features.hidden)
    cos = (got.reshape(per_layer.shape) * ref_layers).sum(-1) / (
        np.linalg.norm(got.reshape(per_layer.shape), axis=-1) * np.linalg.norm(ref_layers, axis=-1) + 1e-12)
    return {
        "frames": len(ref),
        "max_abs": float(np.abs(diff).max()),
        "relative_rms": float(np.sqrt((diff ** 2).mean() / ((ref ** 2).mean() + 1e-12))),
        "cosine_per_layer": cos.mean(axis=0).round(4).tolist(),
    }

"""Causal log-mel audio features at 25 fps, offline and streaming, identical bit for bit.

One motion frame (40 ms) = 640 samples at 16 kHz = 4 hops of 160 samples. For every hop we take the
400-sample window that *ends* at that hop (causal: only past samples, zeros before the start), its
80-bin mel power spectrum, and a fixed log/affine normalisation. The 4 hops of a frame are stacked
hop-major: feature index = hop * n_mels + mel_bin, so a frame is (4 * 80,) = 320 values.

Bit-exactness between `log_mel` and `StreamingLogMel`: both quantise input to float32, then run the same
float64 code on whole frames, where every reduction is done per frame with an identical shape (the FFT is
per row, the mel projection is a stacked matmul of (4, 257) @ (257, 80) per frame). So the numbers of a
frame never depend on how many frames are computed together, nor on how the audio was chunked.

Normalisation (fixed, no dataset statistics): power is scaled so that a full-scale sine gives 0.25 in its
FFT bin (spectrum divided by the window sum); mel energies are floored at `log_floor` (1e-10, -100 dB),
converted to dB, and mapped affinely with feature = (dB - db_center) / db_scale, so -100 dB -> -1 and
0 dB -> +1. Silence is exactly -1; loud clipped speech reaches slightly above +1.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from avatar_forcing.errors import InputError


@dataclass(frozen=True)
class LogMelConfig:
    sample_rate: int = 16000
    n_mels: int = 80
    hop: int = 160                # 10 ms
    win: int = 400                # 25 ms Hann window, ending at its hop
    n_fft: int = 512
    fmin: float = 20.0
    fmax: float = 7600.0          # stay below Nyquist, where resamplers roll off
    hops_per_frame: int = 4       # 4 x 10 ms = one 25 fps motion frame
    log_floor: float = 1e-10      # power floor: -100 dB; keeps silence finite
    db_center: float = -50.0
    db_scale: float = 50.0
    block_frames: int = 1024      # frames computed per vectorised block (memory only)

    @property
    def frame_samples(self) -> int:
        return self.hop * self.hops_per_frame

    @property
    def dim(self) -> int:
        return self.n_mels * self.hops_per_frame


FEATURE_DIM = LogMelConfig().dim  # 320


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)  # HTK mel scale


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def _tables(cfg: LogMelConfig) -> tuple[np.ndarray, np.ndarray]:
    """(window scaled by 1/sum, mel filterbank (n_fft//2+1, n_mels)) in float64."""
    n = np.arange(cfg.win)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / cfg.win)  # periodic Hann
    window = window / window.sum()
    freqs = np.arange(cfg.n_fft // 2 + 1) * cfg.sample_rate / cfg.n_fft
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.float64(cfg.fmin)), _hz_to_mel(np.float64(cfg.fmax)),
                                   cfg.n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None] - lo) / (mid - lo)
    falling = (hi - freqs[None]) / (hi - mid)
    bank = np.clip(np.minimum(rising, falling), 0.0, None)  # triangles with peak 1, (n_mels, bins)
    window, bank = np.ascontiguousarray(window), np.ascontiguousarray(bank.T)
    window.setflags(write=False)  # cached and shared
    bank.setflags(write=False)
    return window, bank


def features_to_db(features: np.ndarray, cfg: LogMelConfig = LogMelConfig()) -> np.ndarray:
    """Feature values -> mel band power in dB (the inverse of the normalisation; same dtype and shape)."""
    return features * cfg.db_scale + cfg.db_center


def db_to_features(db: np.ndarray, cfg: LogMelConfig = LogMelConfig()) -> np.ndarray:
    """Mel band power in dB -> float32 feature values (-100 dB -> -1, 0 dB -> +1)."""
    return ((db - cfg.db_center) / cfg.db_scale).astype(np.float32)


def mel_filterbank(cfg: LogMelConfig = LogMelConfig()) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) triangles with peak 1: how an FFT bin's power spreads over the bands."""
    return _tables(cfg)[1]


def _as_pcm(pcm: np.ndarray) -> np.ndarray:
    """Validate and canonicalise: 1-D, float32-quantised, finite, returned as float64."""
    pcm = np.asarray(pcm)
    if pcm.ndim != 1:
        raise InputError(f"audio must be mono 1-D samples, got an array of shape {pcm.shape}")
    if not np.issubdtype(pcm.dtype, np.floating):
        raise InputError(f"audio must be float samples in [-1, 1], got dtype {pcm.dtype}")
    pcm = pcm.astype(np.float32).astype(np.float64)
    if not np.isfinite(pcm).all():
        raise InputError("audio contains NaN or infinite samples")
    return pcm


def _frames_from_padded(padded: np.ndarray, n_frames: int, cfg: LogMelConfig) -> np.ndarray:
    """Features of `n_frames` frames. `padded` starts `win - hop` samples before the first frame."""
    out = np.empty((n_frames, cfg.dim), np.float32)
    if n_frames == 0:
        return out
    window, bank = _tables(cfg)
    hops = np.lib.stride_tricks.sliding_window_view(padded, cfg.win)[:: cfg.hop]
    # Blocks only bound memory (cache-sized arrays are faster); no result depends on the block size.
    for start in range(0, n_frames, cfg.block_frames):
        stop = min(start + cfg.block_frames, n_frames)
        windows = hops[start * cfg.hops_per_frame: stop * cfg.hops_per_frame] * window
        magnitude = np.abs(np.fft.rfft(windows, n=cfg.n_fft, axis=-1))  # per-row transform
        power = (magnitude * magnitude).reshape(stop - start, cfg.hops_per_frame, -1)
        mel = np.matmul(power, bank)  # one (4, bins) @ (bins, n_mels) product per frame
        db = 10.0 * np.log10(np.maximum(mel, cfg.log_floor))
        out[start:stop] = db_to_features(db, cfg).reshape(stop - start, cfg.dim)
    return out


def log_mel(pcm: np.ndarray, cfg: LogMelConfig = LogMelConfig()) -> np.ndarray:
    """Offline causal log-mel: mono float pcm at cfg.sample_rate -> (len(pcm) // 640, 320) float32."""
    pcm = _as_pcm(pcm)
    n_frames = len(pcm) // cfg.frame_samples
    history = np.zeros(cfg.win - cfg.hop)
    return _frames_from_padded(np.concatenate([history, pcm[: n_frames * cfg.frame_samples]]), n_frames, cfg)


class StreamingLogMel:
    """Incremental `log_mel`: push chunks of any size, get the frames they complete.

    The concatenation of all outputs equals `log_mel(concatenation of all chunks)` exactly.
    """

    def __init__(self, cfg: LogMelConfig = LogMelConfig()):
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        # buffer = the `win - hop` samples of history before the next frame, then pending samples
        self._buffer = np.zeros(self.cfg.win - self.cfg.hop)
        self.frames_out = 0

    def push(self, chunk: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        self._buffer = np.concatenate([self._buffer, _as_pcm(chunk)])
        history = cfg.win - cfg.hop
        n_frames = (len(self._buffer) - history) // cfg.frame_samples
        feats = _frames_from_padded(self._buffer, n_frames, cfg)
        self._buffer = self._buffer[n_frames * cfg.frame_samples:].copy()
        self.frames_out += n_frames
        return feats

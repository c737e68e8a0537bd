"""Audio in and out: decode any file PyAV can read to mono float32 at 16 kHz; resample; save wav.

Resampling is polyphase FIR (scipy's `resample_poly` design: Kaiser-windowed sinc, beta 5, half length
10 * max(up, down) taps at the upsampled rate, zero-phase). `StreamingResampler` applies the same filter
to a stream of chunks of any size, holding back only the few input samples its filter still needs, so
its concatenated output equals the offline `resample` up to float rounding.
"""

from __future__ import annotations

import io
import os
import wave
from dataclasses import dataclass
from functools import lru_cache
from math import gcd
from pathlib import Path

import av
import numpy as np
from scipy.signal import firwin, resample_poly

from avatar_forcing.errors import InputError

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class ResampleConfig:
    half_len_per_rate: int = 10   # filter half length = this * max(up, down) taps (scipy's default)
    kaiser_beta: float = 5.0


def _ratio(sr_in: int, sr_out: int) -> tuple[int, int]:
    if sr_in <= 0 or sr_out <= 0:
        raise InputError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    g = gcd(int(sr_in), int(sr_out))
    return int(sr_out) // g, int(sr_in) // g


@lru_cache(maxsize=32)
def _lowpass(up: int, down: int, cfg: ResampleConfig) -> np.ndarray:
    """The anti-aliasing filter (unit DC gain, before the `up` gain); designing it costs milliseconds."""
    half = cfg.half_len_per_rate * max(up, down)
    h = firwin(2 * half + 1, 1.0 / max(up, down), window=("kaiser", cfg.kaiser_beta))
    h.setflags(write=False)
    return h


def to_mono(pcm: np.ndarray, channel_axis: int = -1) -> np.ndarray:
    """Average all channels (any count: stereo, 5.1, ...) into one float32 channel."""
    pcm = np.asarray(pcm)
    if pcm.ndim == 1:
        return pcm.astype(np.float32, copy=False)
    if pcm.ndim != 2:
        raise InputError(f"audio must be 1-D or (samples, channels), got shape {pcm.shape}")
    return pcm.mean(axis=channel_axis, dtype=np.float64).astype(np.float32)


def resample(pcm: np.ndarray, sr_in: int, sr_out: int, cfg: ResampleConfig = ResampleConfig()) -> np.ndarray:
    """Band-limited resampling of mono float audio; output length = ceil(len * sr_out / sr_in)."""
    up, down = _ratio(sr_in, sr_out)
    pcm = np.asarray(pcm, dtype=np.float32)
    if up == down or len(pcm) == 0:
        return pcm.copy() if up == down else np.zeros(0, np.float32)
    out = resample_poly(pcm.astype(np.float64), up, down, window=_lowpass(up, down, cfg))
    return out.astype(np.float32)


class StreamingResampler:
    """Resample a stream of chunks (any sizes) at a fixed input rate with a continuous output.

    Output sample m is sum_j x[j] * h(m * down - j * up) with h the centred filter of `resample`, so
    push() returns the outputs whose filter support is fully received (latency: about half the filter
    length, under 1 ms for 48 -> 16 kHz) and flush() returns the rest, with zeros past the end.
    """

    def __init__(self, sr_in: int, sr_out: int = SAMPLE_RATE, cfg: ResampleConfig = ResampleConfig()):
        self.sr_in, self.sr_out = sr_in, sr_out
        self.up, self.down = _ratio(sr_in, sr_out)
        self.identity = self.up == self.down
        self.half = cfg.half_len_per_rate * max(self.up, self.down)
        if self.identity:  # same rate: pass samples through
            self.n_taps, self.table = 1, np.ones((1, 1))
            self.reset()
            return
        h = _lowpass(self.up, self.down, cfg) * self.up
        # Polyphase table: row r = (m * down) % up gives the taps for input j0(m), j0(m) + 1, ...
        self.n_taps = 2 * self.half // self.up + 1
        r = np.arange(self.up)
        first = r - self.up * self._ceil_div(r - self.half, self.up)  # filter offset of tap 0, <= half
        offsets = first[:, None] - self.up * np.arange(self.n_taps)[None] + self.half
        valid = (offsets >= 0) & (offsets <= 2 * self.half)
        self.table = np.where(valid, h[np.clip(offsets, 0, 2 * self.half)], 0.0)
        self.reset()

    @staticmethod
    def _ceil_div(a: np.ndarray | int, b: int) -> np.ndarray | int:
        return -((-a) // b)

    def reset(self) -> None:
        self.pad = self.half // self.up + 1           # zeros standing for x[j < 0]
        self.buffer = np.zeros(self.pad)              # buffer[i] = x[i + buffer_start]
        self.buffer_start = -self.pad
        self.n_in = 0
        self.n_out = 0

    def _emit(self, n_available: int, stop: int | None = None) -> np.ndarray:
        """Outputs n_out, n_out + 1, ... whose taps all lie below input index n_available (and < stop)."""
        # last tap of output m is j0(m) + n_taps - 1 with j0(m) = ceil((m * down - half) / up)
        m_stop = ((n_available - self.n_taps) * self.up + self.half) // self.down + 1
        if stop is not None:
            m_stop = min(m_stop, stop)
        if m_stop <= self.n_out:
            return np.zeros(0, np.float32)
        c = np.arange(self.n_out, m_stop) * self.down
        j0 = self._ceil_div(c - self.half, self.up)
        idx = (j0 - self.buffer_start)[:, None] + np.arange(self.n_taps)[None]
        out = np.einsum("ij,ij->i", self.buffer[idx], self.table[c % self.up])
        self.n_out = m_stop
        # drop the inputs that no later output needs
        first_needed = int(self._ceil_div(self.n_out * self.down - self.half, self.up))
        drop = min(max(first_needed - self.buffer_start, 0), len(self.buffer))
        self.buffer = self.buffer[drop:]
        self.buffer_start += drop
        return out.astype(np.float32)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float32).astype(np.float64)
        if chunk.ndim != 1:
            raise InputError(f"audio chunks must be mono 1-D samples, got shape {chunk.shape}")
        if self.identity:
            return chunk.astype(np.float32)
        self.buffer = np.concatenate([self.buffer, chunk])
        self.n_in += len(chunk)
        return self._emit(self.n_in)

    def flush(self) -> np.ndarray:
        """Emit the remaining outputs (total = ceil(n_in * up / down)) and reset."""
        if self.identity:
            return np.zeros(0, np.float32)
        total = self._ceil_div(self.n_in * self.up, self.down)
        self.buffer = np.concatenate([self.buffer, np.zeros(self.n_taps + self.pad)])
        out = self._emit(self.n_in + self.n_taps + self.pad, stop=total)
        self.reset()
        return out


def _open(source: str | os.PathLike | bytes) -> av.container.InputContainer:
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise InputError("the audio data is empty (0 bytes)")
        handle, name = io.BytesIO(bytes(source)), "<bytes>"
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"audio file not found: {path}")
        if path.stat().st_size == 0:
            raise InputError(f"audio file is empty (0 bytes): {path}")
        handle, name = str(path), str(path)
    try:
        return av.open(handle, mode="r")
    except (av.FFmpegError, OSError, ValueError) as e:
        raise InputError(f"cannot read audio from {name}: not a supported audio/video file ({e})") from None


def load_audio(source: str | os.PathLike | bytes, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream of a file (wav, flac, mp3, m4a, video, ...) to mono float32."""
    name = "<bytes>" if isinstance(source, (bytes, bytearray, memoryview)) else str(source)
    with _open(source) as container:
        if not container.streams.audio:
            raise InputError(f"{name} has no audio stream")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        # Convert every frame to planar float at the native rate; channels are averaged by us.
        converter = av.AudioResampler(format="fltp", layout=stream.layout, rate=rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in converter.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in converter.resample(None):
                chunks.append(out.to_ndarray())
        except (av.FFmpegError, ValueError) as e:
            raise InputError(f"cannot decode the audio of {name}: corrupt or unsupported ({e})") from None
    if not chunks or sum(c.shape[1] for c in chunks) == 0:
        raise InputError(f"{name} contains no audio samples")
    pcm = to_mono(np.concatenate(chunks, axis=1), channel_axis=0)
    if not rate:
        raise InputError(f"{name}: unknown audio sample rate")
    pcm = resample(pcm, rate, sample_rate)
    return np.nan_to_num(np.clip(pcm, -1.0, 1.0), nan=0.0)


def save_wav(path: str | os.PathLike, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float audio in [-1, 1] as 16-bit PCM wav."""
    pcm = np.asarray(pcm, dtype=np.float32)
    if pcm.ndim != 1:
        raise InputError(f"save_wav expects mono 1-D samples, got shape {pcm.shape}")
    data = np.round(np.clip(np.nan_to_num(pcm), -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(data.tobytes())

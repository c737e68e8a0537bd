"""The avatar's voice: a queue of 16 kHz PCM fed by one of four sources, drained in real time.

Sources: (a) typed text spoken by eSpeak NG, (b) an uploaded audio file, (c) PCM chunks streamed
over a WebSocket by an external voice agent, (d) none (the avatar only listens). All four end up
as float32 mono 16 kHz samples in :class:`AvatarVoice`; the session timeline pulls exactly one
motion frame's worth (640 samples) every 40 ms and pads with silence when the queue is empty.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from avatar_forcing.errors import InputError

PCM_DTYPE = np.dtype("<i2")  # WebSocket wire format: little-endian signed 16-bit mono


class AvatarVoice:
    """Thread-safe FIFO of avatar speech. ``pull(n)`` always returns ``n`` samples."""

    def __init__(self, sample_rate: int = 16000, max_seconds: float = 120.0):
        self.sample_rate = sample_rate
        self.max_samples = int(max_seconds * sample_rate)
        self._chunks: deque[np.ndarray] = deque()
        self._queued = 0
        self._lock = threading.Lock()

    @property
    def queued_seconds(self) -> float:
        return self._queued / self.sample_rate

    def feed(self, pcm: np.ndarray) -> None:
        pcm = np.ascontiguousarray(pcm, np.float32).reshape(-1)
        if pcm.size == 0:
            return
        with self._lock:
            if self._queued + pcm.size > self.max_samples:
                limit = self.max_samples / self.sample_rate
                raise InputError(f"too much queued speech: the limit is {limit:.0f} s")
            self._chunks.append(np.clip(pcm, -1.0, 1.0))
            self._queued += pcm.size

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._queued = 0

    def pull(self, n: int) -> tuple[np.ndarray, bool]:
        """``n`` samples of speech (zero-padded) and whether any of them came from the queue."""
        out = np.zeros(n, np.float32)
        filled = 0
        with self._lock:
            while filled < n and self._chunks:
                head = self._chunks[0]
                take = min(n - filled, head.size)
                out[filled:filled + take] = head[:take]
                filled += take
                if take == head.size:
                    self._chunks.popleft()
                else:
                    self._chunks[0] = head[take:]
            self._queued -= filled
        return out, filled > 0


def speak_text(text: str, max_chars: int, sample_rate: int = 16000) -> np.ndarray:
    """Source (a): synthesize typed text with eSpeak NG. Blocking; call it off the event loop."""
    from avatar_forcing.audio.tts import synthesize

    text = text.strip()
    if not text:
        raise InputError("there is no text to speak")
    if len(text) > max_chars:
        raise InputError(f"the text is {len(text)} characters long; the limit is {max_chars}")
    speech = synthesize(text, sample_rate=sample_rate)
    return np.asarray(speech.pcm, np.float32)


def decode_audio_file(data: bytes, max_seconds: float) -> np.ndarray:
    """Source (b): an uploaded audio file (any format PyAV reads) as 16 kHz mono. Blocking."""
    from avatar_forcing.audio.io import load_audio

    try:
        pcm = load_audio(data)
    except InputError:
        raise
    except Exception as exc:  # PyAV raises many types on hostile input; all mean "not audio"
        raise InputError(f"the uploaded file is not readable audio ({type(exc).__name__})") from None
    pcm = np.asarray(pcm, np.float32).reshape(-1)
    if pcm.size == 0:
        raise InputError("the uploaded audio file holds no samples")
    if pcm.size > max_seconds * 16000:
        seconds = pcm.size / 16000
        raise InputError(f"the uploaded audio is {seconds:.0f} s long; the limit is {max_seconds:.0f} s")
    return pcm


def parse_pcm_frame(data: bytes, max_bytes: int) -> np.ndarray:
    """Source (c): one binary WebSocket message of int16 little-endian mono 16 kHz PCM."""
    if len(data) > max_bytes:
        raise InputError(f"a PCM frame of {len(data)} bytes is larger than the limit of {max_bytes}")
    if len(data) % PCM_DTYPE.itemsize:
        raise InputError("a PCM frame must hold whole 16-bit samples (an even number of bytes)")
    return np.frombuffer(data, PCM_DTYPE).astype(np.float32) / 32768.0

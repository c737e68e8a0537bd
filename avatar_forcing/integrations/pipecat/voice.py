"""The avatar's speech on the event loop side: TTS audio queued, pulled one video frame (40 ms) at a time.

Pipecat's TTS frames come in bursts, faster than real time. The service pulls exactly one frame's worth
of samples every 40 ms of real time (silence when the queue is dry), hands it to the engine with that
frame's inputs and emits it with that frame's picture. Control frames that belong to the speech's timing
(TTSStartedFrame, TTSStoppedFrame) are kept in the queue at their place and come out with the frame whose
audio they precede or follow, so the output transport's "bot speaking" events match what is heard.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from avatar_forcing.motion.vector import FPS

DEFAULT_RATE = 16000


@dataclass
class VoiceFrame:
    pcm: np.ndarray          # (rate / 25,) float32 in [-1, 1]
    rate: int
    speaking: bool           # any sample came from the queue (not padding)
    before: list = field(default_factory=list)  # marker frames due before this frame's audio
    after: list = field(default_factory=list)   # marker frames due after it (the end of an utterance)


def pcm16_to_float(audio: bytes, channels: int) -> np.ndarray:
    pcm = np.frombuffer(audio, "<i2").astype(np.float32) / 32768.0
    if channels > 1:
        pcm = pcm[: len(pcm) // channels * channels].reshape(-1, channels).mean(axis=1)
    return pcm


def float_to_pcm16(pcm: np.ndarray) -> bytes:
    return (np.clip(pcm, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def resample(pcm: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target or len(pcm) == 0:
        return pcm
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, target)
    return resample_poly(pcm, target // g, rate // g).astype(np.float32)


class AvatarVoice:
    """FIFO of speech samples (at one rate, the first TTS frame's) and marker frames."""

    def __init__(self) -> None:
        self.rate: int | None = None
        self._items: deque = deque()  # np.ndarray chunks and marker frames, in order
        self.queued_samples = 0

    @property
    def frame_samples(self) -> int:
        return (self.rate or DEFAULT_RATE) // FPS

    @property
    def queued_seconds(self) -> float:
        return self.queued_samples / (self.rate or DEFAULT_RATE)

    def feed(self, pcm: np.ndarray, rate: int) -> None:
        if self.rate is None:  # keep the TTS's own rate (the output is not degraded to 16 kHz)...
            self.rate = rate if rate % FPS == 0 else DEFAULT_RATE  # ...if a frame is whole samples
        pcm = resample(np.asarray(pcm, np.float32), rate, self.rate)
        if len(pcm):
            self._items.append(pcm)
            self.queued_samples += len(pcm)

    def mark(self, frame) -> None:
        self._items.append(frame)

    def clear(self) -> None:
        self._items.clear()
        self.queued_samples = 0

    def pull(self) -> VoiceFrame:
        n = self.frame_samples
        out = np.zeros(n, np.float32)
        filled = 0
        before: list = []
        after: list = []
        items = self._items
        while items:
            head = items[0]
            if not isinstance(head, np.ndarray):  # a marker: before the audio if none was taken yet
                (before if filled == 0 else after).append(items.popleft())
                continue
            if filled == n:
                break
            take = min(n - filled, len(head))
            out[filled:filled + take] = head[:take]
            filled += take
            if take == len(head):
                items.popleft()
            else:
                items[0] = head[take:]
        self.queued_samples -= filled
        return VoiceFrame(out, self.rate or DEFAULT_RATE, filled > 0, before, after)


class UserAudio:
    """The user's microphone as it arrives (at its own rate), pulled one frame per 40 ms; old audio is
    dropped beyond `max_s` so the avatar stays live when the network bursts."""

    def __init__(self, max_s: float = 0.3) -> None:
        self.max_s = max_s
        self.rate = DEFAULT_RATE
        self._buffer = np.zeros(0, np.float32)

    def append(self, pcm: np.ndarray, rate: int) -> None:
        if rate != self.rate:
            self._buffer = resample(self._buffer, self.rate, rate)
            self.rate = rate
        self._buffer = np.concatenate([self._buffer, pcm])[-int(self.max_s * self.rate):]

    def pull(self) -> np.ndarray:
        n = self.rate // FPS
        out = np.zeros(n, np.float32)
        take = min(n, len(self._buffer))
        out[:take] = self._buffer[:take]
        self._buffer = self._buffer[take:]
        return out

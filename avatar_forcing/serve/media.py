"""aiortc media: the avatar's outgoing video and audio tracks, and the consumers of the user's tracks.

Both outgoing tracks are paced by the session :class:`Timeline` clock, so frame ``n`` and audio
samples ``[640 n, 640 n + 640)`` leave together. The user's microphone is resampled to 16 kHz mono
and buffered with its arrival time (for the end-to-end latency figure); the user's webcam keeps
only its newest picture, which is decoded later in the worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import deque
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from avatar_forcing.serve.speech import AvatarVoice
from avatar_forcing.serve.timeline import InputFrame, Timeline

VIDEO_CLOCK = 90_000  # RTP clock rate of video
AUDIO_PACKET_S = 0.02  # one Opus packet


@dataclass
class MediaMetrics:
    """What the tracks measured; read by the stats events and the load test."""

    video_sent: int = 0
    video_repeated: int = 0  # frames shown again because the right one was not ready (degraded)
    audio_sent: int = 0
    user_audio_frames: int = 0
    user_video_frames: int = 0
    e2e_ms: deque = field(default_factory=lambda: deque(maxlen=200))  # user sample -> first frame sent
    ready_ms: deque = field(default_factory=lambda: deque(maxlen=200))  # user sample -> frame computed
    motion: deque = field(default_factory=lambda: deque(maxlen=250))  # motion vectors of sent frames


class UserAudio:
    """The user's microphone, resampled to 16 kHz mono, with the arrival time of the newest chunk."""

    def __init__(self, sample_rate: int, max_buffer_s: float = 0.3):
        self.sample_rate = sample_rate
        self.max_samples = int(max_buffer_s * sample_rate)  # beyond this, drop old audio (keeps it live)
        self._buffer = np.zeros(0, np.float32)
        self.arrival = 0.0
        self.live = False
        self.recent_rms = 0.0

    def append(self, pcm: np.ndarray, arrival: float) -> None:
        self._buffer = np.concatenate([self._buffer, pcm])[-self.max_samples:]
        self.arrival = arrival
        self.live = True

    def pull(self, n: int) -> tuple[np.ndarray, float | None]:
        """``n`` samples (zero-padded when the mic is late or absent) and their arrival time."""
        out = np.zeros(n, np.float32)
        take = min(n, self._buffer.size)
        out[:take] = self._buffer[:take]
        self._buffer = self._buffer[take:]
        self.recent_rms = 0.8 * self.recent_rms + 0.2 * float(np.sqrt(np.mean(out**2)))
        return out, (self.arrival if take else None)


class UserVideo:
    def __init__(self):
        self.latest: av.VideoFrame | None = None
        self.taken: av.VideoFrame | None = None

    def take_new(self) -> av.VideoFrame | None:
        """The newest webcam frame if it has not been handed out yet."""
        if self.latest is None or self.latest is self.taken:
            return None
        self.taken = self.latest
        return self.latest


async def consume_audio(track: MediaStreamTrack, sink: UserAudio, metrics: MediaMetrics) -> None:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=sink.sample_rate)
    try:
        while True:
            frame = await track.recv()
            arrival = time.monotonic()
            for out in resampler.resample(frame):
                pcm = out.to_ndarray().reshape(-1).astype(np.float32) / 32768.0
                sink.append(pcm, arrival)
            metrics.user_audio_frames += 1
    except MediaStreamError:
        return


async def consume_video(track: MediaStreamTrack, sink: UserVideo, metrics: MediaMetrics) -> None:
    try:
        while True:
            sink.latest = await track.recv()
            metrics.user_video_frames += 1
    except MediaStreamError:
        return


async def feed_timeline(timeline: Timeline, user_audio: UserAudio, user_video: UserVideo,
                        voice: AvatarVoice, samples_per_frame: int, tick_s: float) -> None:
    """Every tick, append the input frames that real time has reached to the timeline."""
    while not timeline.closed:
        now = time.monotonic()
        due = int((now - timeline.start) * timeline.fps)
        while timeline.next_input <= due:
            user_pcm, arrival = user_audio.pull(samples_per_frame)
            avatar_pcm, speaking = voice.pull(samples_per_frame)
            timeline.add_input(InputFrame(
                index=timeline.next_input, user_pcm=user_pcm, avatar_pcm=avatar_pcm,
                user_image=user_video.take_new(), arrival=arrival if arrival is not None else now,
                avatar_speaking=speaking))
        await asyncio.sleep(tick_s)


class AvatarVideoTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, timeline: Timeline, metrics: MediaMetrics, shape: tuple[int, int]):
        super().__init__()
        self.timeline = timeline
        self.metrics = metrics
        self.blank = np.zeros((*shape, 3), np.uint8)  # (height, width) of the avatar's frames
        self._index = 0
        self._last_block = -1

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        tl = self.timeline
        due = tl.start + tl.playout_delay_s + self._index / tl.fps
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        else:  # we are late (a slow encoder or loop): skip ahead rather than fall further behind
            self._index = max(self._index, tl.playout_index(time.monotonic()))
        out = tl.output_at(self._index)
        now = time.monotonic()
        if out is None:
            rgb = self.blank
        else:
            rgb = out.rgb if out.rgb is not None else self.blank
            if out.block > self._last_block:  # first frame of a new block leaves now
                self._last_block = out.block
                arrival = tl.arrival.get(out.block_start)
                if arrival is not None:
                    self.metrics.e2e_ms.append((now - arrival) * 1000)
                    self.metrics.ready_ms.append((out.ready - arrival) * 1000)
            self.metrics.motion.append(out.motion)
        self.metrics.video_repeated += int(out is None or self._index not in tl.outputs)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = int(self._index * VIDEO_CLOCK / tl.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.metrics.video_sent += 1
        tl.prune(self._index - tl.keep_frames)
        self._index += 1
        return frame


class AvatarAudioTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, timeline: Timeline, metrics: MediaMetrics, sample_rate: int):
        super().__init__()
        self.timeline = timeline
        self.metrics = metrics
        self.sample_rate = sample_rate
        self.packet = int(AUDIO_PACKET_S * sample_rate)
        self.samples_per_frame = sample_rate // timeline.fps
        self._sample = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        tl = self.timeline
        due = tl.start + tl.playout_delay_s + self._sample / self.sample_rate
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        pcm = self._samples(self._sample, self.packet)
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.packet)
        frame.planes[0].update((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
        frame.sample_rate = self.sample_rate
        frame.pts = self._sample
        frame.time_base = fractions.Fraction(1, self.sample_rate)
        self._sample += self.packet
        self.metrics.audio_sent += 1
        return frame

    def _samples(self, start: int, n: int) -> np.ndarray:
        """Samples ``[start, start + n)`` of the avatar's voice; silence where the timeline has none."""
        out = np.zeros(n, np.float32)
        spf = self.samples_per_frame
        pos = start
        while pos < start + n:
            index, offset = divmod(pos, spf)
            take = min(spf - offset, start + n - pos)
            chunk = self.timeline.avatar_audio.get(index)
            if chunk is not None:
                out[pos - start:pos - start + take] = chunk[offset:offset + take]
            pos += take
        return out

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

from avatar_forcing.serve.config import RealtimeConfig
from avatar_forcing.serve.speech import AvatarVoice
from avatar_forcing.serve.timeline import InputFrame, OutputFrame, Released, Timeline

VIDEO_CLOCK = 90_000  # RTP clock rate of video
AUDIO_PACKET_S = 0.02  # one Opus packet
POLL_S = 0.005  # how often a track looks for a frame it waits for
MAX_AUDIO_BURST_S = 0.2  # audio later than this (a stalled loop) resumes from now instead of bursting


@dataclass
class MediaMetrics:
    """What the tracks measured; read by the stats events and the load test."""

    video_sent: int = 0  # every one a new frame: the track waits rather than repeat one
    video_repeated: int = 0  # frames sent twice: always 0 by construction, reported to show it
    video_skipped: int = 0  # frames never generated (shed under overload): picture and voice skip them
    video_caught_up: int = 0  # silent frames skipped to bring the delay back to its target
    slips: int = 0  # times a frame was late and the clock (picture and voice) waited for it
    delay_ms: float = 0.0  # the current playout delay
    audio_sent: int = 0
    audio_waited: int = 0  # audio packets sent as silence because their frame was not released yet
    audio_dropped: int = 0  # silent packets dropped because the voice trailed its picture
    audio_resynced: int = 0  # times a starved audio sender jumped to its picture (speech may be cut)
    user_audio_frames: int = 0
    user_video_frames: int = 0
    e2e_ms: deque = field(default_factory=lambda: deque(maxlen=200))  # user sample -> first frame sent
    ready_ms: deque = field(default_factory=lambda: deque(maxlen=200))  # user sample -> frame computed
    motion: deque = field(default_factory=lambda: deque(maxlen=250))  # motion vectors of sent frames
    av_offset_ms: deque = field(default_factory=lambda: deque(maxlen=500))  # voice sent - its frame sent
    sent_times: deque = field(default_factory=lambda: deque(maxlen=250))  # when frames left (unique fps)
    headroom_ms: deque = field(default_factory=lambda: deque(maxlen=250))  # due - ready, per frame

    def unique_fps(self, window_s: float = 2.0) -> float:
        """New frames sent per second over the last ``window_s``."""
        if len(self.sent_times) < 2:
            return 0.0
        now = time.monotonic()
        recent = [t for t in self.sent_times if now - t <= window_s]
        return len(recent) / window_s if recent and now - self.sent_times[0] >= window_s else 0.0


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
    """The avatar's picture, and the master of the session's playout clock (see serve/timeline.py).

    Never sends a frame twice: when frame ``n`` is late it waits for it (the clock slips, the audio
    track sends silence meanwhile), so every frame sent is a new one.
    """

    kind = "video"

    def __init__(self, timeline: Timeline, metrics: MediaMetrics, shape: tuple[int, int],
                 realtime: RealtimeConfig):
        super().__init__()
        self.timeline = timeline
        self.metrics = metrics
        self.rt = realtime
        self.blank = np.zeros((*shape, 3), np.uint8)  # (height, width): an engine that does not render
        self._index = 0
        self._since_catchup = 0
        self._last_pts = -1

    async def recv(self) -> av.VideoFrame:
        tl, rt = self.timeline, self.rt
        while tl.start == float("inf"):  # the media clock starts when the peer connects
            await self._check_live()
            await asyncio.sleep(POLL_S)
        while True:
            await self._check_live()
            n = self._index
            tl.prune(n)
            wait = tl.due(n) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            out = tl.lookup(n)
            generation_late = out is None
            while out is None:  # not generated yet: wait for it (the voice waits with it)
                await self._check_live()
                await asyncio.sleep(POLL_S)
                out = tl.lookup(n)
            now = time.monotonic()
            self._index += 1
            if out == Released.SKIPPED:
                tl.release(n, Released.SKIPPED, now)
                self.metrics.video_skipped += 1
                continue
            late = now - tl.due(n)
            self.metrics.headroom_ms.append((tl.due(n) - out.ready) * 1000 if out.shown else float("nan"))
            if late > rt.late_tolerance_s:  # slip: later frames follow this one at 25 fps, no burst
                tl.delay_s += late
                self.metrics.slips += 1
                if generation_late:  # the engine's fault (not a busy event loop's): the worker degrades
                    tl.slips += 1
            elif self._catch_up(n):
                continue
            if not out.shown:
                tl.release(n, Released.HELD, now)
                continue
            tl.release(n, Released.SHOWN, now)
            return self._frame(n, out, now)

    def _catch_up(self, n: int) -> bool:
        """Skip silent frame ``n`` while the delay is over its target and later frames are ready."""
        tl, rt = self.timeline, self.rt
        self._since_catchup += 1
        if (tl.delay_s - tl.target_delay_s <= rt.catchup_margin_s or self._since_catchup < rt.catchup_every
                or not tl.silent(n, rt.silence_level) or not tl.ready_ahead(n + rt.catchup_ready_frames)):
            return False
        self._since_catchup = 0
        tl.delay_s = max(tl.target_delay_s, tl.delay_s - 1 / tl.fps)
        tl.release(n, Released.SKIPPED, time.monotonic())
        self.metrics.video_caught_up += 1
        return True

    def _frame(self, n: int, out: OutputFrame, now: float) -> av.VideoFrame:
        tl, m = self.timeline, self.metrics
        arrival = tl.arrival.get(n)
        if arrival is not None:
            m.e2e_ms.append((now - arrival) * 1000)
            m.ready_ms.append((out.ready - arrival) * 1000)
        m.motion.append(out.motion)
        m.video_sent += 1
        m.sent_times.append(now)
        m.delay_ms = tl.delay_s * 1000
        rgb = out.rgb if out.rgb is not None else self.blank
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        # RTP time follows the due time (start + delay + n / fps): consistent with when it is sent, so a
        # receiver pairs it with the audio sent at the same moment
        pts = max(self._last_pts + 1, int(round((tl.due(n) - tl.start) * VIDEO_CLOCK)))
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame

    async def _check_live(self) -> None:
        if self.timeline is None or self.readyState != "live" or self.timeline.closed:
            raise MediaStreamError


class AvatarAudioTrack(MediaStreamTrack):
    """The avatar's voice, in real time (continuous RTP time). Only audio whose frame the video track
    has released is sent; until then the packet is silence (the voice waits for the lips)."""

    kind = "audio"

    def __init__(self, timeline: Timeline, metrics: MediaMetrics, sample_rate: int,
                 realtime: RealtimeConfig):
        super().__init__()
        self.timeline = timeline
        self.metrics = metrics
        self.rt = realtime
        self.sample_rate = sample_rate
        self.packet = int(AUDIO_PACKET_S * sample_rate)
        self.samples_per_frame = sample_rate // timeline.fps
        self._sent = 0  # samples sent (RTP time)
        self._content = 0  # next sample of the avatar's voice on the timeline
        self._t0: float | None = None

    async def recv(self) -> av.AudioFrame:
        tl = self.timeline
        while tl.start == float("inf"):
            self._check_live()
            await asyncio.sleep(POLL_S)
        self._check_live()
        if self._t0 is None:
            self._t0 = tl.start + tl.target_delay_s
        due = self._t0 + self._sent / self.sample_rate
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        elif -wait > MAX_AUDIO_BURST_S:  # the loop stalled: resume from now instead of bursting
            self._t0 += -wait
        pcm = self._next_packet()
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.packet)
        frame.planes[0].update((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
        frame.sample_rate = self.sample_rate
        frame.pts = self._sent
        frame.time_base = fractions.Fraction(1, self.sample_rate)
        self._sent += self.packet
        self.metrics.audio_sent += 1
        return frame

    def _next_packet(self) -> np.ndarray:
        """The next released packet of the voice, or silence when its frame is not released yet."""
        tl, spf = self.timeline, self.samples_per_frame
        front = tl.released_upto * spf  # the voice released so far ends here
        if (front - self._content) / self.sample_rate - 1 / tl.fps > self.rt.max_audio_resync_s:
            # the audio sender was starved (a loaded event loop) and trails its picture: rather than
            # lag the lips for the rest of the session, drop what it could not play on time
            self._content = max(self._content, front - spf)
            self.metrics.audio_resynced += 1
        while True:
            index, offset = divmod(self._content, spf)
            if index >= tl.released_upto:
                self.metrics.audio_waited += 1
                return np.zeros(self.packet, np.float32)
            if tl.released.get(index) == Released.SKIPPED:  # skipped by the video: so is its audio
                self._content = (index + 1) * spf
                continue
            take = min(self.packet, spf - offset)  # packets never straddle frames (640 = 2 x 320)
            out = np.zeros(self.packet, np.float32)
            chunk = tl.avatar_audio.get(index)
            if chunk is not None:
                out[:take] = chunk[offset:offset + take]
            behind = (tl.released_upto * spf - self._content) / self.sample_rate - 1 / tl.fps
            if behind > self.rt.max_audio_lag_s and float(np.abs(out).max()) < self.rt.silence_level:
                self._content += take  # trailing its picture: drop silence (never speech) to catch up
                self.metrics.audio_dropped += 1
                continue
            break
        if offset == 0:
            sent = tl.video_sent_at.get(index)
            if sent is not None:  # + : voice after the lips, - : voice ahead of the lips
                self.metrics.av_offset_ms.append((time.monotonic() - sent) * 1000)
        self._content += take
        return out

    def _check_live(self) -> None:
        if self.timeline is None or self.readyState != "live" or self.timeline.closed:
            raise MediaStreamError

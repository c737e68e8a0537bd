"""A Python WebRTC client of the avatar server: what a voice-agent builder integrates.

It sends the user's audio (a 16 kHz PCM array, looped) and video (a list of RGB frames, looped)
as real WebRTC tracks, receives the avatar's video and audio, and reads the server's events from
the data channel. The load test, the example and the tests all use it.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from avatar_forcing.errors import BusyError, InputError, NoFaceError

SAMPLE_RATE = 16000
FPS = 25
PACKET = SAMPLE_RATE // 50  # 20 ms


class LoopedAudioTrack(MediaStreamTrack):
    """Plays ``pcm`` (mono float32 16 kHz) in a loop, in real time; ``muted`` sends silence."""

    kind = "audio"

    def __init__(self, pcm: np.ndarray):
        super().__init__()
        self.pcm = np.asarray(pcm, np.float32) if len(pcm) else np.zeros(PACKET, np.float32)
        self.muted = False
        self._sent = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        self._start = self._start or time.monotonic()
        wait = self._start + self._sent / SAMPLE_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        idx = (self._sent + np.arange(PACKET)) % len(self.pcm)
        chunk = np.zeros(PACKET, np.float32) if self.muted else self.pcm[idx]
        frame = av.AudioFrame(format="s16", layout="mono", samples=PACKET)
        frame.planes[0].update((np.clip(chunk, -1, 1) * 32767).astype("<i2").tobytes())
        frame.sample_rate, frame.pts = SAMPLE_RATE, self._sent
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._sent += PACKET
        return frame


class LoopedVideoTrack(MediaStreamTrack):
    """Plays RGB ``frames`` in a loop at 25 fps."""

    kind = "video"

    def __init__(self, frames: list[np.ndarray]):
        super().__init__()
        self.frames = [av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24") for f in frames]
        self._sent = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        self._start = self._start or time.monotonic()
        wait = self._start + self._sent / FPS - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = self.frames[self._sent % len(self.frames)]
        frame.pts, frame.time_base = self._sent * 3600, fractions.Fraction(1, 90000)
        self._sent += 1
        return frame


@dataclass
class Received:
    video_frames: int = 0
    audio_frames: int = 0
    first_video: float | None = None
    last_video: float | None = None
    events: list[dict] = field(default_factory=list)

    @property
    def fps(self) -> float:
        if self.first_video is None or self.last_video is None or self.video_frames < 2:
            return 0.0
        return (self.video_frames - 1) / max(self.last_video - self.first_video, 1e-6)


class AvatarClient:
    """Connect with ``await client.connect()``; end with ``await client.close()``.

    ``on_video(rgb)`` / ``on_audio(pcm16k)`` receive the avatar's decoded media (for recording).
    """

    def __init__(self, url: str = "http://127.0.0.1:8080", token: str | None = None,
                 portrait: str = "astronaut", user_audio: np.ndarray | None = None,
                 user_frames: list[np.ndarray] | None = None,
                 on_video: Callable[[np.ndarray], None] | None = None,
                 on_audio: Callable[[np.ndarray], None] | None = None):
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.portrait = portrait
        self.mic = LoopedAudioTrack(user_audio) if user_audio is not None else None
        self.cam = LoopedVideoTrack(user_frames) if user_frames else None
        self.on_video, self.on_audio = on_video, on_audio
        self.received = Received()
        self.session: str | None = None
        self.pc: RTCPeerConnection | None = None
        self.channel = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task] = []

    async def connect(self) -> str:
        self._http = aiohttp.ClientSession(headers=self.headers)
        self.pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel = pc.createDataChannel("events")
        self.channel.on("message", lambda m: self.received.events.append(json.loads(m)))
        for track, kind in ((self.mic, "audio"), (self.cam, "video")):
            if track is not None:
                pc.addTrack(track)
            else:
                pc.addTransceiver(kind, direction="recvonly")

        @pc.on("track")
        def on_track(track):
            consume = self._consume_video if track.kind == "video" else self._consume_audio
            self._tasks.append(asyncio.ensure_future(consume(track)))

        await pc.setLocalDescription(await pc.createOffer())
        answer = await self.post("/api/offer", {"sdp": pc.localDescription.sdp, "type": "offer",
                                                "portrait": self.portrait})
        self.session = answer["session"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        return self.session

    async def post(self, path: str, body: dict | None = None, data: bytes | None = None) -> dict:
        async with self._http.post(self.url + path, json=body if data is None else None, data=data) as r:
            return await self._answer(r)

    async def get(self, path: str) -> dict:
        async with self._http.get(self.url + path) as r:
            return await self._answer(r)

    @staticmethod
    async def _answer(r: aiohttp.ClientResponse) -> dict:
        try:
            body = await r.json(content_type=None)
        except ValueError:
            body = {"error": "http", "message": await r.text()}
        if r.status == 503:
            raise BusyError(f"{body.get('message')} (Retry-After: {r.headers.get('Retry-After')})")
        if r.status == 422:
            raise NoFaceError(body.get("message", "no face"))
        if r.status >= 400:
            raise InputError(f"HTTP {r.status} {body.get('error')}: {body.get('message')}")
        return body

    async def say(self, text: str) -> dict:
        return await self.post(f"/api/sessions/{self.session}/say", {"text": text})

    async def stats(self) -> dict:
        return await self.get(f"/api/sessions/{self.session}/stats")

    async def wait_connected(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pc.connectionState != "connected":
            if time.monotonic() > deadline or self.pc.connectionState in ("failed", "closed"):
                raise InputError(f"WebRTC did not connect (state {self.pc.connectionState})")
            await asyncio.sleep(0.05)

    async def _consume_video(self, track) -> None:
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                r = self.received
                r.first_video = r.first_video or now
                r.last_video = now
                r.video_frames += 1
                if self.on_video is not None:
                    self.on_video(frame.to_ndarray(format="rgb24"))
        except MediaStreamError:
            return

    async def _consume_audio(self, track) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        try:
            while True:
                frame = await track.recv()
                self.received.audio_frames += 1
                if self.on_audio is not None:
                    for out in resampler.resample(frame):
                        self.on_audio(out.to_ndarray().reshape(-1).astype(np.float32) / 32768.0)
        except MediaStreamError:
            return

    async def close(self, hang_up: bool = True) -> None:
        """End the session (``hang_up=False``: just vanish, as a crashed client would)."""
        if hang_up and self.session and self._http is not None:
            try:
                async with self._http.delete(f"{self.url}/api/sessions/{self.session}"):
                    pass
            except aiohttp.ClientError:
                pass
        for track in (self.mic, self.cam):
            if track is not None:
                track.stop()
        if self.pc is not None:
            await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

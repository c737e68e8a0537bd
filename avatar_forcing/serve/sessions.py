"""Live sessions: one peer connection with its engine, worker thread, tracks and buffers each.

:class:`SessionManager` enforces the session limit (the next client gets ``BusyError``, which the
app answers with 503 + Retry-After) and closes everything a session owns when it ends for any
reason: hang-up, failed or never-completed ICE, an engine error, the time limit, or server shutdown.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import logging
import secrets
import time

import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from avatar_forcing.errors import BusyError, InputError
from avatar_forcing.motion.vector import idx
from avatar_forcing.serve.config import ServerConfig
from avatar_forcing.serve.media import (
    AvatarAudioTrack,
    AvatarVideoTrack,
    MediaMetrics,
    UserAudio,
    UserVideo,
    consume_audio,
    consume_video,
    feed_timeline,
)
from avatar_forcing.serve.realtime import RealtimeState
from avatar_forcing.serve.speech import AvatarVoice, decode_audio_file, speak_text
from avatar_forcing.serve.timeline import Timeline
from avatar_forcing.serve.worker import EngineWorker, WorkerStats

log = logging.getLogger("avatar_forcing.serve")
JAW_OPEN = idx("jawOpen")
STATS_WINDOW = 50  # frames (2 s) over which motion statistics are reported
LIVENESS_POLL_S = 1.0  # how often the watchdog looks at the bytes received


class BadOffer(InputError):
    """An SDP offer that cannot be parsed or negotiated."""


def rtc_configuration(cfg: ServerConfig) -> RTCConfiguration:
    """No ICE servers unless configured: host candidates only, nothing leaves the machine."""
    return RTCConfiguration(iceServers=[RTCIceServer(urls=url) for url in cfg.ice_servers])


def percentile(values, q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if len(values) else None


class ServeSession:
    """One client. Set up in two steps, so that no engine is built for an offer that cannot be used:
    ``await accept_offer(sdp)`` (checks the SDP), then ``await answer(engine)``."""

    def __init__(self, manager: SessionManager, cfg: ServerConfig):
        self.id = secrets.token_urlsafe(16)
        self.manager = manager
        self.cfg = cfg
        self.engine = None
        self.worker: EngineWorker | None = None
        self.created = time.monotonic()
        self.pc = RTCPeerConnection(rtc_configuration(cfg))
        self.timeline = Timeline(start=float("inf"), fps=cfg.fps, playout_delay_s=cfg.playout_delay_s)
        self.metrics = MediaMetrics()
        self.voice = AvatarVoice(cfg.sample_rate, cfg.max_audio_seconds)
        self.user_audio = UserAudio(cfg.sample_rate)
        self.user_video = UserVideo()
        self.offered: set[str] = set()
        self.channel = None
        self.messages = 0  # data-channel messages received (a sign of life)
        self.tasks: list[asyncio.Task] = []
        self.closed = False
        self.close_reason: str | None = None
        self.speaking = {"avatar": False, "user": False}
        self._loop = asyncio.get_running_loop()
        self._wire_peer()

    # --- signalling --------------------------------------------------------------------------
    def _wire_peer(self) -> None:
        pc = self.pc

        @pc.on("datachannel")
        def on_datachannel(channel):
            self.channel = channel
            channel.on("message", self._on_channel_message)
            self.send_event({"type": "ready", "session": self.id})

        @pc.on("track")
        def on_track(track):
            if track.kind == "audio":
                self._spawn(consume_audio(track, self.user_audio, self.metrics))
            elif track.kind == "video":
                self._spawn(consume_video(track, self.user_video, self.metrics))

        @pc.on("connectionstatechange")
        async def on_state():
            state = pc.connectionState
            if state == "connected" and self.timeline.start == float("inf"):
                self._start_media()
            elif state in ("failed", "closed"):
                await self.close(f"connection {state}")

    async def accept_offer(self, sdp: str, kind: str) -> None:
        """Apply the client's offer; BadOffer if it cannot be used (before any engine is built)."""
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        except Exception as exc:  # aiortc raises ValueError and friends on malformed SDP
            raise BadOffer(f"the SDP offer could not be used: {exc or type(exc).__name__}") from None
        self.offered = {t.kind for t in self.pc.getTransceivers()}
        if "video" not in self.offered:
            raise BadOffer("the offer has no video section, so the avatar cannot be sent")

    async def answer(self, engine) -> RTCSessionDescription:
        """Attach the engine and return our answer (all ICE candidates gathered: no trickle)."""
        self.engine = engine
        self.worker = EngineWorker(engine, self.timeline, self.cfg.fps, self.cfg.sample_rate,
                                   self.cfg.max_backlog_s, on_error=self._worker_failed,
                                   realtime=self.cfg.realtime)
        shape = getattr(engine, "frame_shape", None) or (self.cfg.size, self.cfg.size)
        try:
            self.pc.addTrack(AvatarVideoTrack(self.timeline, self.metrics, shape, self.cfg.realtime))
            if "audio" in self.offered:  # a client may want the picture only
                self.pc.addTrack(AvatarAudioTrack(self.timeline, self.metrics, self.cfg.sample_rate,
                                                  self.cfg.realtime))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except Exception as exc:
            raise BadOffer(f"the SDP offer could not be answered: {exc or type(exc).__name__}") from None
        self._spawn(self._watchdog())
        return self.pc.localDescription

    def _start_media(self) -> None:
        if self.worker is None:
            return
        self.timeline.start = time.monotonic()
        self.worker.start()
        self._spawn(feed_timeline(self.timeline, self.user_audio, self.user_video, self.voice,
                                  self.cfg.sample_rate // self.cfg.fps, self.cfg.tick_s))
        self._spawn(self._stats_loop())

    # --- the avatar's speech -----------------------------------------------------------------
    async def say(self, text: str) -> float:
        pcm = await self._loop.run_in_executor(None, speak_text, text, self.cfg.max_text_chars)
        self.voice.feed(pcm)
        return pcm.size / self.cfg.sample_rate

    async def play_file(self, data: bytes) -> float:
        """Decoded from memory: uploads are never written to disk."""
        pcm = await self._loop.run_in_executor(None, decode_audio_file, data, self.cfg.max_audio_seconds)
        self.voice.feed(pcm)
        return pcm.size / self.cfg.sample_rate

    def _on_channel_message(self, message) -> None:
        self.messages += 1
        self._spawn(self._on_message(message))

    async def _on_message(self, message) -> None:
        try:
            data = json.loads(message)
            kind = data.get("type") if isinstance(data, dict) else None
            if kind == "ping":  # a heartbeat: counted as a sign of life, nothing else
                return
            if kind == "say":
                seconds = await self.say(str(data.get("text", "")))
                self.send_event({"type": "speech_queued", "seconds": round(seconds, 2)})
            elif kind == "stop_speech":
                self.voice.clear()
            else:
                raise InputError(f"unknown message type {kind!r}")
        except (ValueError, InputError) as exc:
            self.send_event({"type": "error", "code": "bad_message", "message": str(exc)})

    # --- events and stats ---------------------------------------------------------------------
    def send_event(self, event: dict) -> None:
        channel = self.channel
        if channel is not None and channel.readyState == "open":
            try:
                channel.send(json.dumps(event))
            except Exception:  # a channel closing under us: the session is ending anyway
                pass

    def stats(self) -> dict:
        m = self.metrics
        w = self.worker.stats if self.worker is not None else WorkerStats()
        rt = self.worker.controller.state if self.worker is not None else RealtimeState()
        steps = self.cfg.realtime.steps
        motion = np.asarray(list(m.motion)[-STATS_WINDOW:]) if m.motion else np.zeros((0, 58))
        alive = self.worker is not None and self.worker.alive
        offsets = np.abs(np.asarray(m.av_offset_ms)) if m.av_offset_ms else None
        return {
            "session": self.id,
            "connection": self.pc.connectionState if self.pc is not None else "closed",
            "seconds": round(time.monotonic() - self.timeline.start, 2) if alive else 0.0,
            "video_sent": m.video_sent, "video_repeated": m.video_repeated, "audio_sent": m.audio_sent,
            "unique_fps": round(m.unique_fps(), 1),
            "video_skipped": m.video_skipped, "video_caught_up": m.video_caught_up, "slips": m.slips,
            "delay_ms": round(m.delay_ms), "audio_waited": m.audio_waited,
            "av_offset_ms_p95": percentile(offsets, 95) if offsets is not None else None,
            "av_offset_ms_mean": float(np.mean(m.av_offset_ms)) if m.av_offset_ms else None,
            "step": rt.step, "step_name": steps[rt.step].name, "steps": len(steps),
            "worst_step": rt.worst_step, "step_changes": rt.changes,
            "rtf": round(rt.rtf, 3) if rt.rtf is not None else None,
            "user_audio_frames": m.user_audio_frames, "user_video_frames": m.user_video_frames,
            "blocks": w.blocks, "frames_generated": w.frames_generated, "frames_skipped": w.frames_skipped,
            "frames_rendered": w.frames_rendered,
            "compute_ms_p50": percentile(w.compute_ms, 50),
            "e2e_ms_last": m.e2e_ms[-1] if m.e2e_ms else None,
            "e2e_ms_p50": percentile(m.e2e_ms, 50), "e2e_ms_p95": percentile(m.e2e_ms, 95),
            "ready_ms_p50": percentile(m.ready_ms, 50),
            "jaw_open_mean": float(motion[:, JAW_OPEN].mean()) if len(motion) else None,
            "jaw_open_std": float(motion[:, JAW_OPEN].std()) if len(motion) else None,
            "motion_mean": motion.mean(0).round(4).tolist() if len(motion) else None,
            "speaking": dict(self.speaking),
            "queued_speech_s": round(self.voice.queued_seconds, 2),
        }

    def _update_speaking(self) -> None:
        tl = self.timeline
        chunk = tl.avatar_audio.get(tl.released_upto - 1)
        avatar = bool(chunk is not None and np.abs(chunk).max() > 1e-3) or self.voice.queued_seconds > 0
        user = self.user_audio.recent_rms > self.cfg.user_vad_rms
        if (avatar, user) != (self.speaking["avatar"], self.speaking["user"]):
            self.speaking = {"avatar": avatar, "user": user}
            self.send_event({"type": "speaking", **self.speaking})

    async def _stats_loop(self) -> None:
        while not self.closed:
            await asyncio.sleep(self.cfg.stats_interval_s)
            self._update_speaking()
            self.send_event({"type": "stats", **self.stats()})

    async def _watchdog(self) -> None:
        """ICE time-out, a silent client (no bytes at all for silence_timeout_s) and the time limit."""
        cfg = self.cfg
        deadline = self.created + cfg.max_session_s
        last_bytes, heard = -1, time.monotonic()
        while not self.closed:
            await asyncio.sleep(min(LIVENESS_POLL_S, cfg.silence_timeout_s / 2))
            now = time.monotonic()
            if self.pc.connectionState != "connected":
                if now - self.created > cfg.ice_timeout_s:
                    await self.close("ICE did not complete in time")
                    return
                continue
            received = await self._bytes_received() + self.messages
            if received != last_bytes:
                last_bytes, heard = received, now
            elif now - heard > cfg.silence_timeout_s:  # a killed browser sends nothing, not even RTCP
                await self.close(f"the client was silent for {cfg.silence_timeout_s:.0f} s")
                return
            if now > deadline:
                self.send_event({"type": "error", "code": "time_limit",
                                 "message": "the session time limit was reached"})
                await self.close("time limit")
                return

    async def _bytes_received(self) -> int:
        """Bytes the peer sent us (media, RTCP, data channel): every sign of life counts."""
        report = await self.pc.getStats()
        return sum(getattr(s, "bytesReceived", 0) or 0 for s in report.values() if s.type == "transport")

    def _worker_failed(self, message: str) -> None:
        if self.closed:
            return

        def report():
            self.send_event({"type": "error", "code": "engine", "message": message})
            self._spawn(self.close(f"engine error: {message}"))

        self._loop.call_soon_threadsafe(report)

    # --- lifetime -----------------------------------------------------------------------------
    def _spawn(self, coro) -> None:
        if self.closed:
            coro.close()
            return
        task = asyncio.ensure_future(coro)
        self.tasks.append(task)
        task.add_done_callback(lambda t: self.tasks.remove(t) if t in self.tasks else None)

    async def close(self, reason: str = "closed") -> None:
        """Release everything the session owns. Safe to call more than once, from anywhere."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        log.info("session %s closed: %s", self.id[:8], reason)
        self.send_event({"type": "closed", "reason": reason})
        self.timeline.close()
        self.voice.clear()
        current = asyncio.current_task()  # close() may run inside one of the session's own tasks
        for task in list(self.tasks):
            if task is not current:
                task.cancel()
        await asyncio.gather(*[t for t in self.tasks if t is not current], return_exceptions=True)
        pc = self.pc
        for sender in pc.getSenders():
            if sender.track is not None:
                sender.track.stop()
        await pc.close()
        await self._loop.run_in_executor(None, self._release_engine)
        self._break_cycles()
        self.manager.remove(self)  # the slot is free once everything is released
        if self.cfg.collect_on_close:
            await self._loop.run_in_executor(None, release_memory)

    def _release_engine(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        close = getattr(self.engine, "close", None)
        if close is not None:
            close()
        self.engine = None
        if self.worker is not None:
            self.worker.engine = None
            self.worker.on_error = None

    def _break_cycles(self) -> None:
        """Drop every reference back to this session, so that it (and whatever it still holds) is freed
        by reference counting the moment the last outside reference goes, not at the next GC."""
        self.pc.remove_all_listeners()
        if self.channel is not None:
            self.channel.remove_all_listeners()
        for sender in self.pc.getSenders():
            track = sender.track
            if track is not None:
                track.timeline = track.metrics = None
                if hasattr(track, "blank"):
                    track.blank = None
        self.timeline.close()
        self.metrics.motion.clear()
        self.channel = None
        self.tasks.clear()


M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (its malloc tuning calls exist), else None."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def settle_heap(cfg: ServerConfig) -> None:
    """Once, after start-up: freeze the start-up heap (torch, models, modules are never garbage, so later
    collections skip them) and cap glibc's malloc arenas (`ServerConfig.malloc_arenas`)."""
    gc.freeze()
    if (libc := _glibc()) is not None:
        libc.mallopt(M_ARENA_MAX, cfg.malloc_arenas)


def release_memory() -> None:
    """After a session: collect aiortc's own reference cycles (peer connection, transports and codec
    contexts, a few MB a session that would otherwise wait for a full GC) and give freed heap back to
    the OS (glibc keeps it in per-thread arenas otherwise). Takes ~50-150 ms once the start-up heap is
    frozen (`settle_heap`)."""
    gc.collect()
    if (libc := _glibc()) is not None:  # otherwise the collection alone
        libc.malloc_trim(0)


class SessionManager:
    def __init__(self, cfg: ServerConfig):
        self.cfg = cfg
        self.sessions: dict[str, ServeSession] = {}
        self._reserved = 0  # sessions being set up (engine loading), counted against the limit

    @property
    def active(self) -> int:
        return len(self.sessions) + self._reserved

    def reserve(self) -> None:
        if self.active >= self.cfg.max_sessions:
            raise BusyError(f"the server is busy: all {self.cfg.max_sessions} session slots are in use")
        rt = self.cfg.realtime
        for session in self.sessions.values():  # admission: only while the machine has room to spare
            step = session.worker.controller.state.step if session.worker is not None else 0
            if step >= rt.admit_below_step:
                raise BusyError(f"the server is busy: a running session already had to degrade to step "
                                f"{rt.steps[step].name!r} to keep up; another would push every session "
                                "below real time")
        self._reserved += 1

    def release_reservation(self) -> None:
        self._reserved -= 1

    def add(self, session: ServeSession) -> None:
        self.sessions[session.id] = session

    def remove(self, session: ServeSession) -> None:
        self.sessions.pop(session.id, None)

    def get(self, session_id: str) -> ServeSession | None:
        return self.sessions.get(session_id)

    async def close_all(self) -> None:
        await asyncio.gather(*[s.close("server shutdown") for s in list(self.sessions.values())])

"""Inference off the event loop: one worker thread per session drives its AvatarSession.

The worker takes the timeline's new input frames, pushes them into the engine and publishes every
block the engine finishes. When it falls more than ``max_backlog_s`` behind real time (an
overloaded machine) it skips the oldest input frames instead of queueing forever: those frames are
never generated, the video track repeats the newest frame it has (video degrades) and the audio
track, which reads the timeline directly, plays on untouched.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from avatar_forcing.serve.timeline import InputFrame, OutputFrame, Timeline


@dataclass
class WorkerStats:
    blocks: int = 0
    frames_generated: int = 0
    frames_skipped: int = 0  # input frames dropped under overload
    compute_ms: deque = field(default_factory=lambda: deque(maxlen=50))  # per block, engine.step()
    error: str | None = None


class EngineWorker:
    """Runs ``engine`` (an AvatarSession) in a daemon thread fed by ``timeline``."""

    def __init__(self, engine, timeline: Timeline, fps: int, sample_rate: int, max_backlog_s: float,
                 on_error: Callable[[str], None] | None = None):
        self.engine = engine
        self.timeline = timeline
        self.fps = fps
        self.sample_rate = sample_rate
        self.max_backlog = int(max_backlog_s * fps)
        self.on_error = on_error
        self.stats = WorkerStats()
        self._engine_to_timeline: dict[int, int] = {}  # engine frame -> timeline frame (skips shift them)
        self._engine_frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="avatar-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.timeline.close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                frames = self.timeline.take_inputs(timeout=0.1)
                if not frames:
                    continue
                frames = self._shed_backlog(frames)
                for frame in frames:
                    self._push(frame)
                self._drain()
        except Exception as exc:  # the session reports it and ends; the server stays up
            self.stats.error = f"{type(exc).__name__}: {exc}"
            if self.on_error is not None:
                self.on_error(self.stats.error)

    def _shed_backlog(self, frames: list[InputFrame]) -> list[InputFrame]:
        now_index = int((time.monotonic() - self.timeline.start) * self.fps)
        late = [f for f in frames if now_index - f.index > self.max_backlog]
        if late and len(late) < len(frames):
            self.stats.frames_skipped += len(late)
            return frames[len(late):]
        if late:  # everything is late: keep the newest block's worth so the engine still advances
            keep = max(1, self.fps // 2)
            self.stats.frames_skipped += max(0, len(frames) - keep)
            return frames[-keep:]
        return frames

    def _push(self, frame: InputFrame) -> None:
        self.engine.push_user_audio(frame.user_pcm, self.sample_rate)
        self.engine.push_avatar_audio(frame.avatar_pcm, self.sample_rate)
        if frame.user_image is not None:
            rgb = frame.user_image
            if not isinstance(rgb, np.ndarray):
                rgb = rgb.to_ndarray(format="rgb24")  # av.VideoFrame: decode off the event loop
            # engine time, not timeline time: the two differ by the frames skipped under overload
            self.engine.push_user_frame(rgb, self._engine_frames / self.fps)
        self._engine_to_timeline[self._engine_frames] = frame.index
        self._engine_frames += 1

    def _drain(self) -> None:
        while not self._stop.is_set():
            t = time.perf_counter()
            block = self.engine.step()
            if block is None:
                return
            self.stats.compute_ms.append((time.perf_counter() - t) * 1000)
            ready = time.monotonic()
            motion = block.motion
            start = self._engine_to_timeline.get(block.start_frame, -1)
            frames = block.frames if block.frames is not None else [None] * len(block.motion)
            for i, rgb in enumerate(frames):
                index = self._engine_to_timeline.pop(block.start_frame + i, None)
                if index is None:
                    continue
                m = np.asarray(motion[i], np.float32)
                self.timeline.put_output(index, OutputFrame(
                    rgb=rgb, block=self.stats.blocks, block_start=start, ready=ready, motion=m))
            self.stats.blocks += 1
            self.stats.frames_generated += len(frames)

"""Inference off the event loop: two worker threads per session drive its AvatarSession.

The input thread takes the timeline's new input frames and pushes them into the engine (webcam frames
are tracked there); the generation thread steps the engine (motion) and renders the block's frames one
by one, publishing each as soon as it is drawn, so the first frame of a block leaves one render after
the DFoT instead of ten. On two cores tracking overlaps generation and rendering (MediaPipe, OpenCV
and torch release the GIL).

After every block a :class:`RealtimeController` judges the real-time factor and picks the step of the
degradation ladder (NFE, tracking rate, output frame stride) that the next block uses. The input thread
stays at most ``ahead_frames`` ahead of generation; when the session still falls more than
``max_backlog_s`` behind real time it skips the oldest input frames: those frames are never generated,
and the tracks skip their picture and their voice alike (serve/timeline.py).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from avatar_forcing.serve.config import RealtimeConfig
from avatar_forcing.serve.realtime import RealtimeController, frame_shown
from avatar_forcing.serve.timeline import InputFrame, OutputFrame, Timeline

log = logging.getLogger("avatar_forcing.serve")


@dataclass
class WorkerStats:
    blocks: int = 0
    frames_generated: int = 0
    frames_rendered: int = 0
    frames_skipped: int = 0  # input frames dropped under overload
    compute_ms: deque = field(default_factory=lambda: deque(maxlen=50))  # per block: DFoT + render, wall
    error: str | None = None


def set_nfe(engine, nfe: int) -> bool:
    """Change an AvatarSession's Euler steps between blocks (the sampler config is frozen: replace it).
    Engines without a streaming generator (test doubles) take an ``nfe`` attribute if they have one."""
    generator = getattr(engine, "generator", None)
    if generator is not None and hasattr(generator, "cfg") and hasattr(generator, "times"):
        from avatar_forcing.model.flow import sampling_schedule

        if generator.cfg.nfe != nfe:
            generator.cfg = dataclasses.replace(generator.cfg, nfe=nfe)
            generator.times, generator.sigmas = sampling_schedule(generator.cfg)
        return True
    if hasattr(engine, "nfe"):
        engine.nfe = nfe
        return True
    return False


class EngineWorker:
    """Runs ``engine`` (an AvatarSession) on two daemon threads (input, generation) fed by ``timeline``."""

    def __init__(self, engine, timeline: Timeline, fps: int, sample_rate: int, max_backlog_s: float,
                 on_error: Callable[[str], None] | None = None, ahead_frames: int | None = None,
                 track_every: int | None = None, realtime: RealtimeConfig | None = None):
        self.engine = engine
        self.timeline = timeline
        self.fps = fps
        self.sample_rate = sample_rate
        self.max_backlog = int(max_backlog_s * fps)
        self.on_error = on_error
        self.stats = WorkerStats()
        # no ladder given: one fixed step (tests of the plumbing); track_every overrides the step's
        self.controller = RealtimeController(realtime or RealtimeConfig(steps=RealtimeConfig().steps[:1]))
        self._slips_seen = 0
        self._engine_to_timeline: dict[int, int] = {}  # engine frame -> timeline frame (skips shift them)
        self._engine_frames = 0
        # Webcam frames are tracked at most every `track_every` engine frames; the engine holds the last
        # observation in between (sample and hold), so tracking costs 1/track_every of a 25 fps camera.
        self._fixed_track_every = track_every
        self.track_every = track_every or self.controller.step.track_every
        self.frame_stride = self.controller.step.frame_stride
        self._last_tracked = -self.track_every
        set_nfe(engine, self.controller.step.nfe)
        # Two blocks: the next block's inputs are in while the current one is generated.
        self.ahead_frames = ahead_frames if ahead_frames is not None else 2 * engine.block_size
        self._map_lock = threading.Lock()
        self._pushed = threading.Event()
        self._stop = threading.Event()
        loops = ((self._take_inputs, "avatar-input"), (self._generate, "avatar-gen"))
        self._threads = [threading.Thread(target=self._guard, args=(run,), name=name, daemon=True)
                         for run, name in loops]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.timeline.close()
        for thread in self._threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout)

    @property
    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self._threads)

    def _guard(self, run: Callable[[], None]) -> None:
        try:
            run()
        except Exception as exc:  # the session reports it and ends; the server stays up
            self._stop.set()
            self.stats.error = f"{type(exc).__name__}: {exc}"
            if self.on_error is not None:
                self.on_error(self.stats.error)

    def _take_inputs(self) -> None:
        while not self._stop.is_set():
            # Leave inputs in the timeline while generation lags: there they count as backlog and shed.
            if self._engine_frames - self.stats.frames_generated > self.ahead_frames:
                self._stop.wait(0.005)
                continue
            frames = self.timeline.take_inputs(timeout=0.1)
            if not frames:
                continue
            for frame in self._shed_backlog(frames):
                self._push(frame)
            self._pushed.set()

    def _generate(self) -> None:
        while not self._stop.is_set():
            if self._pushed.wait(timeout=0.1):
                self._pushed.clear()
                self._drain()

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
        # The image first: a frame's audio makes its block due, and by then its motion must be tracked.
        if frame.user_image is not None and self._engine_frames - self._last_tracked >= self.track_every:
            self._last_tracked = self._engine_frames
            rgb = frame.user_image
            if not isinstance(rgb, np.ndarray):
                rgb = rgb.to_ndarray(format="rgb24")  # av.VideoFrame: decode off the event loop
            # engine time, not timeline time: the two differ by the frames skipped under overload
            self.engine.push_user_frame(rgb, self._engine_frames / self.fps)
        self.engine.push_user_audio(frame.user_pcm, self.sample_rate)
        self.engine.push_avatar_audio(frame.avatar_pcm, self.sample_rate)
        with self._map_lock:
            self._engine_to_timeline[self._engine_frames] = frame.index
        self._engine_frames += 1

    def _drain(self) -> None:
        while not self._stop.is_set():
            t = time.perf_counter()
            block = self.engine.step()
            if block is None:
                return
            self._publish(block)
            busy = time.perf_counter() - t
            self.stats.compute_ms.append(busy * 1000)
            self.stats.blocks += 1
            self.stats.frames_generated += len(block.motion)
            self._adapt(busy, len(block.motion) / self.fps)

    def _publish(self, block) -> None:
        """Each frame of the block onto the timeline as soon as it is drawn (one frame in `frame_stride`
        is drawn; the others are held: their motion and voice play on, their picture is not sent)."""
        with self._map_lock:
            start = self._engine_to_timeline.get(block.start_frame, -1)
            indices = [self._engine_to_timeline.pop(block.start_frame + i, None)
                       for i in range(len(block.motion))]
        render = getattr(self.engine, "render", None) if block.frames is None else None
        stride = self.frame_stride
        for i, index in enumerate(indices):
            if index is None or self._stop.is_set():
                continue
            motion = np.asarray(block.motion[i], np.float32)
            shown = frame_shown(index, stride)
            rgb = None
            if shown and block.frames is not None:
                rgb = block.frames[i]
            elif shown and render is not None and getattr(self.engine, "frame_shape", None) is not None:
                rgb = render(motion[None])[0]
            if rgb is not None:
                self.stats.frames_rendered += 1
            self.timeline.put_output(index, OutputFrame(
                rgb=rgb, block=self.stats.blocks, block_start=start, ready=time.monotonic(), motion=motion,
                shown=shown))

    def _adapt(self, busy_s: float, block_s: float) -> None:
        """Judge the block's real-time factor; apply the ladder's step to the next block."""
        slips = self.timeline.slips
        late, self._slips_seen = slips > self._slips_seen, slips
        if not self.controller.observe(busy_s, block_s, late):
            return
        step = self.controller.step
        log.info("real-time step -> %s (nfe %d, track every %d, one frame in %g sent), block %.0f ms",
                 step.name, step.nfe, step.track_every, step.frame_stride, busy_s * 1000)
        set_nfe(self.engine, step.nfe)
        self.track_every = self._fixed_track_every or step.track_every
        self.frame_stride = step.frame_stride

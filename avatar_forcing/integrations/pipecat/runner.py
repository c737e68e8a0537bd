"""The engine off the event loop: one worker thread pushes each 40 ms input frame into the AvatarSession,
steps it and publishes the frames it generates; the event loop only hands frames over and reads results.

Pushes are lock-stepped (one frame of user audio, one of avatar audio, at most one camera picture per
40 ms), so a generated frame and its voice belong to the same timeline slot and leave together. Under
overload, input frames that could no longer be shown in time are skipped (never pushed): the engine's
frame counter then runs behind the timeline, and a map turns engine frames back into timeline frames.
A barge-in is handled here too, before the next step (it jumps a backlog of due blocks): the speech
still queued in the engine is silenced and the frames already generated with it get their mouth closed
(mouth.py).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from avatar_forcing.integrations.pipecat.mouth import MouthClosure, close_mouth
from avatar_forcing.integrations.pipecat.session_ops import (
    frame_size,
    render_motion,
    silence_pending_avatar_audio,
)
from avatar_forcing.integrations.pipecat.stamp import stamp
from avatar_forcing.motion.vector import FPS

log = logging.getLogger(__name__)


@dataclass
class InputFrame:
    index: int
    user_pcm: np.ndarray
    user_rate: int
    avatar_pcm: np.ndarray
    avatar_rate: int
    image: np.ndarray | None  # RGB (H, W, 3) uint8, or None


@dataclass
class Interrupt:
    first_frame: int  # the first frame not yet shown: from here on the mouth closes


@dataclass
class OutputFrame:
    index: int
    rgb: np.ndarray
    motion: np.ndarray
    ready: float  # monotonic time it was generated (or re-rendered)


@dataclass
class RunnerStats:
    blocks: int = 0
    frames: int = 0
    tracked: int = 0
    untracked: int = 0  # camera frames not tracked because the engine was behind
    skipped: int = 0    # input frames not generated at all (overload)
    rerendered: int = 0
    silenced_s: float = 0.0
    step_ms: float = 0.0  # last block
    error: str | None = None


class EngineRunner:
    """Drives `session` (an AvatarSession) on a daemon thread; `submit` / `interrupt` from the loop."""

    def __init__(self, session, *, track_every: int = 2, max_backlog_s: float = 0.6,
                 close_mouth_on_interrupt: bool = True, mouth_ramp_frames: int = 2,
                 mouth_release_frames: int = 5, stamp_frames: bool = False, keep_frames: int = 100,
                 on_error: Callable[[str], None] | None = None):
        self.session = session
        self.track_every = track_every
        self.max_backlog = int(max_backlog_s * FPS)
        self.close_mouth_on_interrupt = close_mouth_on_interrupt
        self.ramp, self.release = mouth_ramp_frames, mouth_release_frames
        self.stamp_frames = stamp_frames
        self.keep_frames = keep_frames
        self.on_error = on_error
        self.size = frame_size(session)  # (height, width)
        self.stats = RunnerStats()
        self.rest = np.asarray(session.reference_motion, np.float32)
        self._inbox: queue.Queue = queue.Queue()
        self._outputs: dict[int, OutputFrame] = {}
        self._newest = -1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._barge_in = threading.Event()  # an Interrupt waits in the inbox: stop stepping, take it
        self._pushed = 0           # input frames pushed into the engine
        self._generated = 0        # frames generated (the engine's next block starts here)
        self._last_tracked = -track_every
        self._engine_to_timeline: dict[int, int] = {}
        self._t0 = time.monotonic()  # timeline frame 0 in real time (set by start)
        self._closure: MouthClosure | None = None
        self.next_shown = 0  # the loop's output cursor (written there, read here: an int, atomic)
        self._thread = threading.Thread(target=self._run, name="avatar-engine", daemon=True)

    # --- event loop side ------------------------------------------------------------------------
    def start(self, t0: float | None = None) -> None:
        """`t0`: the monotonic time of timeline frame 0 (what "behind real time" is measured from)."""
        if t0 is not None:
            self._t0 = t0
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Blocking (join): call it off the event loop."""
        self._stop.set()
        self._inbox.put(None)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, frame: InputFrame) -> None:
        self._inbox.put(frame)

    def interrupt(self, first_frame: int) -> None:
        self._inbox.put(Interrupt(first_frame))
        self._barge_in.set()

    @property
    def generated(self) -> int:
        return self._generated

    def output_at(self, index: int) -> tuple[OutputFrame | None, bool]:
        """The frame to show at `index`: its own (True) or, if not ready, the newest earlier one (False)."""
        with self._lock:
            frame = self._outputs.get(index)
            if frame is not None:
                return frame, True
            for i in range(min(self._newest, index), max(-1, index - self.keep_frames), -1):
                if i in self._outputs:
                    return self._outputs[i], False
            return None, False

    def prune(self, before: int) -> None:
        with self._lock:
            for key in [k for k in self._outputs if k < before - self.keep_frames]:
                del self._outputs[key]

    # --- worker thread --------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                items = [self._inbox.get()]
                while True:
                    try:
                        items.append(self._inbox.get_nowait())
                    except queue.Empty:
                        break
                if None in items or self._stop.is_set():
                    return
                self._barge_in.clear()  # every Interrupt queued so far is in `items`
                for item in self._shed(items):
                    if isinstance(item, Interrupt):
                        self._interrupt(item)
                    else:
                        self._push(item)
                self._drain()
        except Exception as exc:  # reported to the pipeline; the loop stays up
            self.stats.error = f"{type(exc).__name__}: {exc}"
            log.exception("avatar engine failed")
            if self.on_error is not None:
                self.on_error(self.stats.error)

    def _lag(self, index: int) -> int:
        """Frames between timeline frame `index` and real time."""
        return int((time.monotonic() - self._t0) * FPS) - index

    def _shed(self, items: list) -> list:
        """Input frames too far behind real time are dropped, but the newest half second is always kept
        so the engine keeps moving."""
        frames = [i for i, item in enumerate(items) if isinstance(item, InputFrame)]
        late = [i for i in frames if self._lag(items[i].index) > self.max_backlog]
        if not late:
            return items
        keep_from = late[-1] + 1 if len(late) < len(frames) else frames[max(0, len(frames) - FPS // 2)]
        drop = {i for i in late if i < keep_from}
        self.stats.skipped += len(drop)
        return [item for i, item in enumerate(items) if i not in drop]

    def _push(self, frame: InputFrame) -> None:
        engine = self.session
        behind = self._lag(frame.index) > self.max_backlog // 2
        if frame.image is not None and self._pushed - self._last_tracked >= self.track_every:
            if behind:
                self.stats.untracked += 1
            else:  # the picture first: the frame's audio makes its block due, by then its motion is in
                self._last_tracked = self._pushed
                engine.push_user_frame(frame.image, self._pushed / FPS)
                self.stats.tracked += 1
        engine.push_user_audio(frame.user_pcm, frame.user_rate)
        engine.push_avatar_audio(frame.avatar_pcm, frame.avatar_rate)
        self._engine_to_timeline[self._pushed] = frame.index
        self._pushed += 1

    def _drain(self) -> None:
        # On a loaded machine several blocks can be due at once; a barge-in must not wait behind them
        # (each step is 0.1-0.3 s here), so the inbox is read again first.
        while not self._stop.is_set() and not self._barge_in.is_set():
            start = time.perf_counter()
            block = self.session.step()
            if block is None:
                return
            self.stats.step_ms = (time.perf_counter() - start) * 1000
            motion = np.asarray(block.motion, np.float32)
            frames = block.frames
            # engine frames -> timeline frames (-1: padding past the last input, not shown)
            indices = np.array([self._engine_to_timeline.pop(block.start_frame + i, -1)
                                for i in range(len(motion))])
            weights = self._weights(indices)
            if weights.any():
                motion = close_mouth(motion, self.rest, weights)
                frames = render_motion(self.session, motion, self.size)
                self.stats.rerendered += len(motion)
            self._publish(indices, frames, motion)
            self._generated = max(self._generated, int(indices.max()) + 1)
            self.stats.blocks += 1
            self.stats.frames += len(motion)

    def _weights(self, indices: np.ndarray) -> np.ndarray:
        closure = self._closure
        if closure is None:
            return np.zeros(len(indices), np.float32)
        return np.array([closure.weight(int(i)) for i in indices], np.float32)

    def _publish(self, indices, frames, motion) -> None:
        ready = time.monotonic()
        with self._lock:
            for i, index in enumerate(indices):
                if index < 0:
                    continue
                rgb = frames[i] if frames is not None else np.zeros((*self.size, 3), np.uint8)
                if self.stamp_frames:
                    rgb = stamp(rgb, int(index))
                self._outputs[int(index)] = OutputFrame(int(index), rgb, motion[i], ready)
                self._newest = max(self._newest, int(index))

    def _interrupt(self, item: Interrupt) -> None:
        self.stats.silenced_s += silence_pending_avatar_audio(self.session)
        if not self.close_mouth_on_interrupt:
            return
        # Frames before `_generated` were generated from the old speech; the ones still queued in the
        # engine were just silenced, so the model closes the mouth from there on by itself. The closure
        # starts at the next frame to be shown now (this thread may have been inside a step meanwhile).
        first = max(item.first_frame, self.next_shown + 1)
        self._closure = MouthClosure(first, self._generated, self.ramp, self.release)
        with self._lock:
            stale = sorted(i for i in self._outputs if first <= i < self._generated)
            pending = [self._outputs[i] for i in stale]
        if not pending:
            return
        # In small chunks, soonest first: the frames about to be shown are replaced within milliseconds.
        for start in range(0, len(pending), self.ramp):
            chunk = pending[start:start + self.ramp]
            indices = np.array([f.index for f in chunk])
            motion = close_mouth(np.stack([f.motion for f in chunk]), self.rest, self._weights(indices))
            self._publish(indices, render_motion(self.session, motion, self.size), motion)
            self.stats.rerendered += len(chunk)

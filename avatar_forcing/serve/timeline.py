"""The session timeline: the hand-off between the event loop and the inference worker, and the playout clock.

Time is counted in motion frames (25 fps) from the session start. The event loop appends one
:class:`InputFrame` per 40 ms (user audio, avatar audio, latest webcam picture); the worker turns
them into avatar frames. Frame ``n`` and the avatar's audio samples ``[640 n, 640 n + 640)`` are due at
``start + delay + n / 25``. The video track is the master of that clock: it *releases* frame ``n``
(shows it, holds it under a lower output rate, or skips it) and only released audio may be sent, so
the voice never runs ahead of the lips. When frame ``n`` is not ready at its due time the video track
waits for it and the delay grows by the wait (the audio track sends silence meanwhile: the voice
waits too); in the avatar's silences the delay shrinks back to its target by skipping silent frames.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass
class InputFrame:
    index: int
    user_pcm: np.ndarray  # (640,) float32
    avatar_pcm: np.ndarray  # (640,) float32
    user_image: object | None  # av.VideoFrame (decoded to RGB in the worker) or None
    arrival: float  # monotonic time at which the newest user sample of this frame reached the server
    avatar_speaking: bool


@dataclass
class OutputFrame:
    rgb: np.ndarray | None  # (H, W, 3) uint8; None when not rendered (see `shown`)
    block: int  # the engine block that produced it
    block_start: int  # timeline index of that block's first frame
    ready: float  # monotonic time the worker finished it
    motion: np.ndarray  # (58,)
    shown: bool = True  # False: held (a lower output rate renders and sends only every Nth frame)


class Released:
    """What the video track decided for a frame (read by the audio track)."""

    SHOWN, HELD, SKIPPED = "shown", "held", "skipped"


class Timeline:
    """Thread-safe buffers keyed by frame index; old entries are pruned as playout moves on."""

    def __init__(self, start: float, fps: int, playout_delay_s: float, keep_frames: int = 100):
        self.start = start
        self.fps = fps
        self.target_delay_s = playout_delay_s
        self.delay_s = playout_delay_s  # adaptive: grows on late frames, shrinks in silence
        self.keep_frames = keep_frames  # history kept behind the playout point (stats, late lookups)
        self._pending: deque[InputFrame] = deque()
        self.avatar_audio: dict[int, np.ndarray] = {}
        self.arrival: dict[int, float] = {}
        self.outputs: dict[int, OutputFrame] = {}
        self.shed: set[int] = set()  # input frames the worker dropped under overload: never generated
        self.released: dict[int, str] = {}  # frame -> Released.*
        self.released_upto = 0  # frames [0, released_upto) are decided by the video track
        self.video_sent_at: dict[int, float] = {}  # frame -> monotonic time its picture left
        self.slips = 0  # slips because a frame was not generated in time; the worker reads it
        self.newest_output = -1
        self.next_input = 0
        self._cond = threading.Condition()
        self.closed = False

    # --- event loop side -------------------------------------------------------------------
    def add_input(self, frame: InputFrame) -> None:
        with self._cond:
            self.avatar_audio[frame.index] = frame.avatar_pcm
            self.arrival[frame.index] = frame.arrival
            self._pending.append(frame)
            self.next_input = frame.index + 1
            self._cond.notify_all()

    def due(self, index: int) -> float:
        """Monotonic time at which frame ``index`` (and its audio) is due under the current delay."""
        return self.start + self.delay_s + index / self.fps

    def lookup(self, index: int) -> OutputFrame | str | None:
        """Frame ``index``'s output, ``Released.SKIPPED`` if it will never come, or None (not yet)."""
        with self._cond:
            out = self.outputs.get(index)
            if out is not None:
                return out
            # the worker publishes in order: a missing frame older than the newest output was shed
            if index in self.shed or index < self.newest_output or self.closed:
                return Released.SKIPPED
            return None

    def ready_ahead(self, index: int) -> bool:
        with self._cond:
            return index in self.outputs

    def release(self, index: int, how: str, now: float) -> None:
        with self._cond:
            self.released[index] = how
            self.released_upto = max(self.released_upto, index + 1)
            if how == Released.SHOWN:
                self.video_sent_at[index] = now

    def silent(self, index: int, level: float) -> bool:
        chunk = self.avatar_audio.get(index)
        return chunk is None or float(np.abs(chunk).max(initial=0.0)) < level

    def prune(self, played: int) -> None:
        """Frames before ``played`` are on their way: drop their pictures now (a 512 px frame is 0.8 MB)
        and the small tables ``keep_frames`` later (the audio track reads a little behind the video)."""
        before = played - self.keep_frames
        with self._cond:
            for key in [k for k in self.outputs if k < played]:
                del self.outputs[key]
            for table in (self.avatar_audio, self.arrival, self.released, self.video_sent_at):
                for key in [k for k in table if k < before]:
                    del table[key]
            self.shed = {k for k in self.shed if k >= played}

    def close(self) -> None:
        """Wake everyone and drop every buffer at once (rendered frames are the bulk of a session)."""
        with self._cond:
            self.closed = True
            self._pending.clear()
            for table in (self.avatar_audio, self.arrival, self.outputs, self.released, self.video_sent_at):
                table.clear()
            self.shed.clear()
            self._cond.notify_all()

    # --- worker side -----------------------------------------------------------------------
    def take_inputs(self, timeout: float) -> list[InputFrame]:
        with self._cond:
            if not self._pending and not self.closed:
                self._cond.wait(timeout)
            frames = list(self._pending)
            self._pending.clear()
            return frames

    def put_output(self, index: int, frame: OutputFrame) -> None:
        with self._cond:
            if self.closed:
                return
            self.outputs[index] = frame
            self.newest_output = max(self.newest_output, index)

    def mark_shed(self, indices: list[int]) -> None:
        with self._cond:
            self.shed.update(indices)

    def playout_index(self, now: float) -> int:
        """The frame index due on screen at monotonic time ``now``."""
        return int((now - self.start - self.delay_s) * self.fps)

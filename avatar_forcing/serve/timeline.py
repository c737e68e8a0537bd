"""The session timeline: the hand-off between the event loop and the inference worker.

Time is counted in motion frames (25 fps) from the session start. The event loop appends one
:class:`InputFrame` per 40 ms (user audio, avatar audio, latest webcam picture); the worker turns
them into avatar frames; the output tracks play frame ``n`` and audio samples ``[640 n, 640 n+640)``
at ``start + playout_delay + n / 25``, so picture and voice stay in sync by construction. The
avatar's audio never waits for inference: when a frame is late the video track shows the newest
frame it has (video degrades, audio stays continuous).
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
    rgb: np.ndarray | None  # (S, S, 3) uint8; None when the engine does not render
    block: int  # the engine block that produced it
    block_start: int  # timeline index of that block's first frame
    ready: float  # monotonic time the worker finished it
    motion: np.ndarray  # (58,)


class Timeline:
    """Thread-safe buffers keyed by frame index; old entries are pruned as playout moves on."""

    def __init__(self, start: float, fps: int, playout_delay_s: float, keep_frames: int = 250):
        self.start = start
        self.fps = fps
        self.playout_delay_s = playout_delay_s
        self.keep_frames = keep_frames  # history kept behind the playout point (stats, late lookups)
        self._pending: deque[InputFrame] = deque()
        self.avatar_audio: dict[int, np.ndarray] = {}
        self.arrival: dict[int, float] = {}
        self.outputs: dict[int, OutputFrame] = {}
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

    def output_at(self, index: int) -> OutputFrame | None:
        """The frame to show at ``index``: its own if ready, else the newest earlier one (a drop)."""
        with self._cond:
            frame = self.outputs.get(index)
            if frame is not None:
                return frame
            newest = min(self.newest_output, index)
            for i in range(newest, max(newest - self.keep_frames, -1), -1):
                if i in self.outputs:
                    return self.outputs[i]
            return None

    def prune(self, before: int) -> None:
        with self._cond:
            for table in (self.avatar_audio, self.arrival, self.outputs):
                for key in [k for k in table if k < before]:
                    del table[key]

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._pending.clear()
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
            self.outputs[index] = frame
            self.newest_output = max(self.newest_output, index)

    def playout_index(self, now: float) -> int:
        """The frame index due on screen at monotonic time ``now``."""
        return int((now - self.start - self.playout_delay_s) * self.fps)

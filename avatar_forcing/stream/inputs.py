"""Input buffers of a streaming session: validated, resampled, placed on one timeline, trimmed as used.

The session timeline counts 25 fps motion frames from the session start; frame k covers the 640
audio samples [640 k, 640 (k + 1)) at 16 kHz. Every stream is placed on this timeline:

* audio (user or avatar) is kept as chunks at absolute sample positions. A chunk without a timestamp
  continues its stream, or starts at the session's commit point if the stream has fallen behind it
  (a TTS burst after a silence plays from "now", it is never dropped). A timestamped chunk goes where
  its timestamp says, unless that is within one frame of the stream's end (jitter is absorbed);
* user motion (tracked webcam frames or pushed motion rows) is a list of timestamped observations,
  held for at most ``max_gap_s`` after each one.

Whatever a frame lacks when it is committed is a null condition. Data before the commit point is
dropped, so buffers never grow with session length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar_forcing.errors import InputError
from avatar_forcing.motion.backend import check_motion
from avatar_forcing.motion.vector import FPS, MOTION_DIM

SAMPLE_RATE = 16000
FRAME_SAMPLES = SAMPLE_RATE // FPS  # 640
MAX_CHANNELS = 32                   # more "channels" than this is a transposed or garbage array
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768000
MAX_TIMESTAMP_S = 7 * 24 * 3600.0   # a week: anything larger is a unit mistake (ms or epoch seconds)


def to_mono_float(pcm: np.ndarray, what: str = "audio") -> np.ndarray:
    """Any numeric PCM -> mono float32 in [-1, 1].

    Accepts (samples,), (samples, channels) or (channels, samples) with few channels; integer
    samples are scaled by their type's full range, unsigned ones centred. Channels are averaged.
    """
    arr = np.asarray(pcm)
    numeric = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    if arr.dtype == bool or not numeric:
        raise InputError(f"{what} must be integer or float samples, got dtype {arr.dtype}")
    if arr.ndim == 2:
        channel_axis = 1 if arr.shape[1] <= arr.shape[0] else 0
        if arr.shape[channel_axis] > MAX_CHANNELS:
            raise InputError(f"{what} has shape {arr.shape}: expected (samples,) or (samples, channels)")
    elif arr.ndim != 1:
        raise InputError(f"{what} must be 1-D (samples,) or 2-D (samples, channels), got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.unsignedinteger):
        half = float(np.iinfo(arr.dtype).max + 1) / 2
        arr = (arr.astype(np.float64) - half) / half
    elif np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float64) / float(-np.iinfo(arr.dtype).min)
    if not np.isfinite(arr).all():
        raise InputError(f"{what} contains NaN or infinite samples")
    if arr.ndim == 2:
        arr = arr.mean(axis=channel_axis)
    return np.clip(arr, -1.0, 1.0).astype(np.float32)


def check_sample_rate(sample_rate: int, what: str = "audio") -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise InputError(f"{what} sample rate must be an integer number of Hz, got {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise InputError(f"{what} sample rate {sample_rate} Hz is outside "
                         f"[{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}]")
    return int(sample_rate)


def check_timestamp(timestamp: float, what: str) -> float:
    try:
        t = float(timestamp)
    except (TypeError, ValueError):
        raise InputError(f"{what} timestamp must be a number of seconds, got {timestamp!r}") from None
    if not np.isfinite(t) or t < 0 or t > MAX_TIMESTAMP_S:
        raise InputError(f"{what} timestamp must be seconds since the session start (>= 0), "
                         f"got {timestamp!r}")
    return t


@dataclass
class AudioChunk:
    start: int          # absolute sample index on the session timeline
    pcm: np.ndarray     # mono float32 at 16 kHz

    @property
    def end(self) -> int:
        return self.start + len(self.pcm)


class AudioInput:
    """One 16 kHz mono stream on the session timeline (already resampled by the caller)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.chunks: list[AudioChunk] = []
        self.end = 0            # where an untimestamped chunk continues the stream
        self.committed = 0      # samples before this are history: late data for them is dropped
        self.active = False     # ever received a chunk
        self.dropped_samples = 0

    def push(self, pcm: np.ndarray, at_sample: int | None = None) -> None:
        if len(pcm) == 0:
            return
        self.active = True
        start = max(self.end, self.committed)
        if at_sample is not None and abs(at_sample - start) > FRAME_SAMPLES:
            start = at_sample  # a real jump (gap or rewind), not jitter
        if start < self.committed:  # the part of a late chunk that is already in the past
            cut = min(len(pcm), self.committed - start)
            self.dropped_samples += cut
            pcm, start = pcm[cut:], start + cut
        if start < self.end:  # overlaps data we already hold: first come, first served
            cut = min(len(pcm), self.end - start)
            self.dropped_samples += cut
            pcm, start = pcm[cut:], start + cut
        if len(pcm):
            self.chunks.append(AudioChunk(start, pcm))
            self.end = start + len(pcm)

    @property
    def queued_frames(self) -> int:
        """Whole frames held from the commit point on (what a stream with no clock of its own can give)."""
        held = sum(len(c.pcm) for c in self.chunks)
        return held // FRAME_SAMPLES

    @property
    def end_frame(self) -> int:
        """Frames fully covered by the stream's latest data."""
        return self.end // FRAME_SAMPLES

    def first_data_sample(self) -> int | None:
        return self.chunks[0].start if self.chunks else None

    def take(self, start_frame: int, end_frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Commit frames [start_frame, end_frame): their samples (zeros where absent) and, per frame,
        the fraction of samples that were real. Everything before end_frame is then discarded."""
        a, b = start_frame * FRAME_SAMPLES, end_frame * FRAME_SAMPLES
        pcm = np.zeros(b - a, np.float32)
        real = np.zeros(b - a, bool)
        for c in self.chunks:
            lo, hi = max(a, c.start), min(b, c.end)
            if lo < hi:
                pcm[lo - a: hi - a] = c.pcm[lo - c.start: hi - c.start]
                real[lo - a: hi - a] = True
        self.committed = max(self.committed, b)
        kept = []
        for c in self.chunks:
            if c.end > b:
                kept.append(c if c.start >= b else AudioChunk(b, c.pcm[b - c.start:]))
        self.chunks = kept
        coverage = real.reshape(-1, FRAME_SAMPLES).mean(axis=1) if len(real) else np.zeros(0)
        return pcm, coverage.astype(np.float32)

    def skip_to(self, frame: int) -> None:
        """Jump the commit point (the session skipped an idle stretch); data before it is dropped."""
        self.take(frame, frame)
        self.committed = max(self.committed, frame * FRAME_SAMPLES)


class MotionInput:
    """The user's motion as timestamped observations (None = frame seen but no face), held up to a limit.
    `dim` is the motion backend's (58 for the rig, 512 for the paper's LIA latents)."""

    def __init__(self, max_gap_s: float, dim: int = MOTION_DIM) -> None:
        self.max_gap_s = max_gap_s
        self.dim = dim
        self.reset()

    def reset(self) -> None:
        self.times: list[float] = []
        self.values: list[np.ndarray | None] = []
        self.active = False
        self.dropped = 0  # out-of-order or stale observations

    @property
    def last_time(self) -> float | None:
        return self.times[-1] if self.times else None

    def add(self, time_s: float, motion: np.ndarray | None, committed_frame: int) -> bool:
        """Add one observation; False (and counted) when it is out of order or already in the past."""
        self.active = True
        if (self.times and time_s <= self.times[-1]) or time_s < committed_frame / FPS:
            self.dropped += 1
            return False
        self.times.append(time_s)
        self.values.append(motion)
        return True

    def add_rows(self, motion: np.ndarray, start_time: float | None, committed_frame: int) -> None:
        """Motion rows at 25 fps, starting at `start_time` or right after the last observation."""
        motion = check_motion(motion, self.dim, "user motion")
        if start_time is None:
            start_time = committed_frame / FPS if self.last_time is None else self.last_time + 1.0 / FPS
            start_time = max(start_time, committed_frame / FPS)
        for i, row in enumerate(motion):
            self.add(start_time + i / FPS, row, committed_frame)

    @property
    def end_frame(self) -> int:
        """Frames whose motion is known (observation at or after the frame's start)."""
        return 0 if self.last_time is None else int(np.floor(self.last_time * FPS + 1e-6)) + 1

    def first_data_frame(self) -> int | None:
        return int(np.floor(self.times[0] * FPS + 1e-6)) if self.times else None

    def take(self, start_frame: int, end_frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Commit frames: (n, dim) raw motion (zeros where absent) and a per-frame presence mask.

        Frame k takes the latest observation before its end, if no older than max_gap_s (sample and
        hold: causal, and a webcam a little behind the microphone does not blank the user out)."""
        n = end_frame - start_frame
        motion = np.zeros((n, self.dim), np.float32)
        present = np.zeros(n, bool)
        times = np.asarray(self.times)
        for i in range(n):
            frame_end = (start_frame + i + 1) / FPS
            j = int(np.searchsorted(times, frame_end - 1e-9)) - 1
            if j >= 0 and self.values[j] is not None and frame_end - times[j] <= self.max_gap_s + 1.0 / FPS:
                motion[i] = self.values[j]
                present[i] = True
        # keep only the last observation before the commit point: it may still be held into later frames
        keep_from = max(0, int(np.searchsorted(times, end_frame / FPS - 1e-9)) - 1)
        self.times, self.values = self.times[keep_from:], self.values[keep_from:]
        return motion, present

    def skip_to(self, frame: int) -> None:
        self.take(frame, frame)

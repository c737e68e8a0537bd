"""Server configuration: every limit, timeout and default of `avatar-forcing serve` in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

STATIC_DIR = Path(__file__).with_name("static")


@dataclass
class ServerConfig:
    # network: loopback by default; exposing the server is an explicit choice (see docs/SERVING.md)
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None  # optional bearer token for every /api route
    ice_servers: tuple[str, ...] = ()  # e.g. ("stun:stun.example.org:3478",); empty = host candidates only

    # sessions
    max_sessions: int = 2
    retry_after_s: int = 10  # sent with 503 "busy"
    ice_timeout_s: float = 15.0  # a peer that has not connected by then is dropped
    max_session_s: float = 3600.0
    checkpoint: str | None = None  # model folder; None = the built-in default model
    random_init: bool = False  # benchmarks/tests only: an UNTRAINED model when no checkpoint exists
    # intra-op torch threads for the whole process; None = cores // (2 x max_sessions), at least 1: each
    # session already runs two busy threads (tracking, generation), and oversubscribed torch threads on a
    # small machine run several times slower
    torch_threads: int | None = None

    # uploads and inputs
    max_image_bytes: int = 8 * 1024 * 1024
    max_image_pixels: int = 16_000_000
    max_audio_bytes: int = 16 * 1024 * 1024
    max_audio_seconds: float = 120.0  # the most avatar speech that may be queued at once
    max_text_chars: int = 2000
    max_ws_frame_bytes: int = 64 * 1024  # one WebSocket PCM chunk (2 s of 16 kHz int16)
    max_portraits: int = 32  # uploaded portraits kept in memory (oldest dropped first)

    # real-time media
    fps: int = 25
    size: int = 512  # longer side of the avatar's frames (the portrait keeps its framing)
    sample_rate: int = 16000
    playout_delay_s: float = 0.6  # output runs this far behind the input: block (0.4) + look-ahead + compute
    max_backlog_s: float = 1.2  # a worker further behind than this skips input (video degrades, audio not)
    tick_s: float = 0.02  # how often input is moved onto the session timeline
    # Track every Nth webcam frame (MediaPipe costs ~15 ms a frame); the engine holds the last observation
    # in between. 2 = 12.5 Hz, still well above head-motion and expression rates (nods ~1-3 Hz).
    track_every: int = 2
    stats_interval_s: float = 0.5  # how often stats events are sent
    user_vad_rms: float = 0.01  # RMS above which the user counts as speaking

    static_dir: str = str(STATIC_DIR)
    builtin_portraits: tuple[str, ...] = field(default=("astronaut",))

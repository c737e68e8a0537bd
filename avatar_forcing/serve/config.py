"""Server configuration: every limit, timeout and default of `avatar-forcing serve` in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

STATIC_DIR = Path(__file__).with_name("static")
# A live session keeps about two cores busy (tracking the webcam, generating, rendering and encoding 25 fps):
# two sessions on a 2-core machine got 9.7-14 unique fps each, below the 12 a conversation needs, while one
# gets 25 (docs/SERVING.md). So by default a machine admits one session per two cores and answers the
# next with a clean 503.
CORES_PER_SESSION = 2


def default_max_sessions() -> int:
    return max(1, (os.cpu_count() or 1) // CORES_PER_SESSION)


@dataclass(frozen=True)
class DegradeStep:
    """One rung of the real-time ladder: what a session gives up to keep up with real time."""

    name: str
    nfe: int  # Euler steps per block (the DFoT's cost is about proportional to nfe + 1)
    track_every: int  # track every Nth webcam frame (MediaPipe ~15-20 ms a frame on one core)
    # render and send one frame in `frame_stride` (serve/realtime.py frame_shown): 1 = 25 fps, 1.5 = two in
    # three (16.7 fps), 2 = 12.5 fps; render and encode cost in proportion
    frame_stride: float


# Measured on 2 shared cores (docs/SERVING.md): a 10-frame block costs ~85 ms of DFoT at nfe 10, ~110 ms
# of rendering at 512 px and ~85 ms of tracking at track_every 2; VP8 encoding ~8 ms a frame sent.
DEFAULT_STEPS: tuple[DegradeStep, ...] = (
    DegradeStep("full", nfe=10, track_every=2, frame_stride=1),
    DegradeStep("fewer-steps", nfe=6, track_every=2, frame_stride=1),
    DegradeStep("light", nfe=4, track_every=4, frame_stride=1),
    # two sessions on two cores settle here: 16.7 fps leaves room above the 12 fps that a shared machine
    # should still give each session, where half rate (12.5) had none
    DegradeStep("two-thirds", nfe=4, track_every=4, frame_stride=1.5),
    DegradeStep("half-rate", nfe=4, track_every=4, frame_stride=2),
    DegradeStep("minimal", nfe=3, track_every=6, frame_stride=3),
)


@dataclass(frozen=True)
class RealtimeConfig:
    """How a session keeps its real-time budget (serve/realtime.py).

    After every block the session measures its real-time factor (wall time the generation thread spent
    on the block / the block's duration), smoothed; above ``degrade_rtf`` (or when a frame was late on
    screen) it steps down the ladder, below ``recover_rtf`` for ``recover_blocks`` blocks it steps back up.
    """

    steps: tuple[DegradeStep, ...] = DEFAULT_STEPS
    degrade_rtf: float = 0.75  # leaves room for encoding, decoding and tracking on the same cores
    recover_rtf: float = 0.45  # well below degrade_rtf: a step up costs ~1.3-2x, so no oscillation
    smoothing: float = 0.5  # EWMA weight of the newest block
    hold_blocks: int = 2  # blocks to wait after a change before judging again (its effect must show)
    # A slipped frame steps down only when frames slipped in this many judged blocks in a row: a lone slip
    # (a scheduling hiccup of a shared machine) is absorbed by the adaptive playout delay, and stepping
    # down on each one sank two sessions to a third of the frame rate with the cores not busy (~60 %)
    late_blocks: int = 2
    recover_blocks: int = 8  # consecutive calm blocks (3.2 s) before stepping back up
    start_step: int = 0
    # Admission: a new session is refused (503 busy) while any running one has degraded to this step or
    # further down the ladder (4 = half-rate): the machine has no room left, and another would sink both.
    admit_below_step: int = 4
    # Playout: the adaptive delay shrinks again in the avatar's silences, skipping one silent frame
    # in `catchup_every` while more than `catchup_margin_s` over the target, if frames are ready ahead.
    catchup_margin_s: float = 0.02
    catchup_every: int = 3
    catchup_ready_frames: int = 3  # frames that must already be ready beyond the skipped one
    late_tolerance_s: float = 0.04  # a frame sent later than this behind its due time slips the clock
    silence_level: float = 1e-3  # peak avatar-audio level below which a frame counts as silent
    # The voice may trail its frame by one packet (20 ms, the packet grid); a silent packet further
    # behind is dropped so that the voice stays within this of its picture.
    max_audio_lag_s: float = 0.03
    # A starved audio sender (an overloaded event loop) trailing its picture by more than this jumps to it,
    # dropping what it could not play on time (speech too): a bounded A/V offset beats a lasting one.
    max_audio_resync_s: float = 0.12


@dataclass
class ServerConfig:
    # network: loopback by default; exposing the server is an explicit choice (see docs/SERVING.md)
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None  # optional bearer token for every /api route
    ice_servers: tuple[str, ...] = ()  # e.g. ("stun:stun.example.org:3478",); empty = host candidates only

    # sessions
    max_sessions: int = field(default_factory=default_max_sessions)
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
    # Target delay of the output behind the input: block (0.4 s) + DFoT (~0.1 s) + the first frame's
    # render. The actual delay adapts: it grows when a frame is late (video and voice wait together)
    # and shrinks back to this in the avatar's silences.
    playout_delay_s: float = 0.46
    max_backlog_s: float = 1.2  # a worker further behind than this skips input (picture and voice alike)
    tick_s: float = 0.02  # how often input is moved onto the session timeline
    # How often the webcam is tracked, the NFE and the output rate come from the degradation ladder
    # (realtime.steps): at full quality every 2nd frame is tracked (12.5 Hz, well above nods at 1-3 Hz).
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)
    # A client that sends nothing (no media, no RTCP, no data channel) for this long is gone: its slot
    # is freed. Browsers send RTCP receiver reports about every second, so 5 s is never a live client.
    silence_timeout_s: float = 5.0
    # After a session ends, collect garbage and trim the heap (serve/sessions.py release_memory): keeps
    # the server's memory flat over many sessions at the cost of a ~0.1 s pause when one ends.
    collect_on_close: bool = True
    # glibc malloc arenas of the server process (serve/sessions.py settle_heap): without a cap, threads
    # that allocate (each session's engine worker, the executor's) get arenas of their own, which keep
    # freed pages that malloc_trim does not always return; RSS then crept ~10 % over 50 sessions.
    malloc_arenas: int = 2
    stats_interval_s: float = 0.5  # how often stats events are sent
    user_vad_rms: float = 0.01  # RMS above which the user counts as speaking

    static_dir: str = str(STATIC_DIR)
    builtin_portraits: tuple[str, ...] = field(default=("astronaut",))

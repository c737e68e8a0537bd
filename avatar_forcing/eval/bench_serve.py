"""`avatar-forcing bench serve`: a load test of the WebRTC server on loopback.

For each N in ``--sessions``, N aiortc clients connect at once to an in-process server whose limit is
N; each streams a speaking, nodding user (eSpeak NG speech + the astronaut photo) while the avatar
speaks typed text, for ``--seconds``. Then one more client tries to join (N + 1 against the limit).
Reported per N: per-session received fps, server-side end-to-end latency p50/p95 (user sample
arrival -> first frame conditioned on it leaves the server), dropped frames, CPU use of the process
(server and clients together: they share this machine) and memory at the start and the end.
Bounded: at most MAX_SESSIONS clients and MAX_SECONDS per step; it always stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from avatar_forcing.errors import BusyError, ConfigError

MAX_SESSIONS = 16
MAX_SECONDS = 120.0
AVATAR_TEXT = ("Thanks for calling. Let me tell you about our plans for the summer, "
               "there is a lot to talk about and I am happy to go through it with you.")
USER_TEXT = "Hi, I have a question about my booking. Could you help me with that, please?"


@dataclass
class ServeBenchConfig:
    sessions: tuple[int, ...] = (1, 2, 4)
    seconds: float = 10.0
    warmup_s: float = 2.0  # connection set-up and the first blocks are not measured
    size: int = 512
    checkpoint: str | None = None
    random_init: bool = False
    json_path: str = "out/bench_serve.json"


@dataclass
class StepResult:
    sessions: int
    fps_per_session: list[float] = field(default_factory=list)
    e2e_ms_p50: float | None = None
    e2e_ms_p95: float | None = None
    compute_ms_p50: float | None = None
    frames_repeated: int = 0
    frames_skipped: int = 0
    cpu_percent: float = 0.0  # of one core; 200% = both cores of a 2-core machine
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    over_limit: str = ""  # what the (N+1)-th client got


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def user_media() -> tuple[np.ndarray, list[np.ndarray]]:
    """A user who speaks (eSpeak NG) and nods (the astronaut photo, moved slightly)."""
    import cv2
    from skimage import data

    from avatar_forcing.audio.tts import synthesize

    speech = np.asarray(synthesize(USER_TEXT).pcm, np.float32)
    pcm = np.concatenate([speech, np.zeros(16000, np.float32)])  # speech, then a second of silence
    photo = cv2.resize(data.astronaut(), (320, 320))
    frames = []
    for i in range(50):
        m = np.float32([[1, 0, 0], [0, 1, 6 * np.sin(2 * np.pi * i / 50)]])
        frames.append(cv2.warpAffine(photo, m, (320, 320), borderMode=cv2.BORDER_REPLICATE))
    return pcm, frames


async def run_step(n: int, bc: ServeBenchConfig, pcm: np.ndarray, frames: list[np.ndarray]) -> StepResult:
    from aiohttp import web

    from avatar_forcing.serve.app import Server
    from avatar_forcing.serve.client import AvatarClient
    from avatar_forcing.serve.config import ServerConfig

    cfg = ServerConfig(port=0, max_sessions=n, size=bc.size, checkpoint=bc.checkpoint,
                       random_init=bc.random_init, ice_timeout_s=30.0)
    server = Server(cfg)
    runner = web.AppRunner(server.build())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)  # loopback only
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    result = StepResult(sessions=n, rss_start_mb=round(rss_mb(), 1))
    clients = [AvatarClient(url, user_audio=pcm, user_frames=frames) for _ in range(n)]
    try:
        await asyncio.gather(*[c.connect() for c in clients])
        await asyncio.gather(*[c.wait_connected(30) for c in clients])
        await asyncio.gather(*[c.say(AVATAR_TEXT) for c in clients])
        await asyncio.sleep(bc.warmup_s)
        counts = [c.received.video_frames for c in clients]
        cpu0, t0 = cpu_seconds(), time.monotonic()
        await asyncio.sleep(bc.seconds)
        wall = time.monotonic() - t0
        result.cpu_percent = round(100 * (cpu_seconds() - cpu0) / wall, 1)
        result.fps_per_session = [round((c.received.video_frames - k) / wall, 1)
                                  for c, k in zip(clients, counts, strict=True)]
        e2e, compute = [], []
        for session in server.manager.sessions.values():
            e2e += list(session.metrics.e2e_ms)
            compute += list(session.worker.stats.compute_ms)
            result.frames_repeated += session.metrics.video_repeated
            result.frames_skipped += session.worker.stats.frames_skipped
        if e2e:
            result.e2e_ms_p50 = round(float(np.percentile(e2e, 50)), 1)
            result.e2e_ms_p95 = round(float(np.percentile(e2e, 95)), 1)
        if compute:
            result.compute_ms_p50 = round(float(np.percentile(compute, 50)), 1)
        extra = AvatarClient(url, user_audio=pcm)
        try:
            await extra.connect()
            result.over_limit = "accepted (the limit was not enforced!)"
        except BusyError as exc:
            result.over_limit = f"503 busy: {exc}"
        finally:
            await extra.close()
    finally:
        await asyncio.gather(*[c.close() for c in clients], return_exceptions=True)
        await runner.cleanup()
    result.rss_end_mb = round(rss_mb(), 1)
    return result


def print_table(results: list[StepResult]) -> None:
    print(f"{'N':>3} {'fps/session':>22} {'e2e p50':>8} {'e2e p95':>8} {'block ms':>8} {'repeated':>8} "
          f"{'skipped':>8} {'CPU %':>6} {'RSS start->end MB':>18}")
    for r in results:
        fps = " ".join(f"{f:.1f}" for f in r.fps_per_session)
        figures = (r.e2e_ms_p50, r.e2e_ms_p95, r.compute_ms_p50)
        p50, p95, block = (float("nan") if v is None else v for v in figures)
        print(f"{r.sessions:>3} {fps:>22} {p50:>8.0f} {p95:>8.0f} {block:>8.0f} {r.frames_repeated:>8} "
              f"{r.frames_skipped:>8} {r.cpu_percent:>6.0f} {r.rss_start_mb:>8.0f} -> {r.rss_end_mb:<7.0f}")
    for r in results:
        print(f"N+1 = {r.sessions + 1} against a limit of {r.sessions}: {r.over_limit}")


def bench_serve_arguments(parser: argparse.ArgumentParser) -> None:
    d = ServeBenchConfig()
    parser.add_argument("--sessions", type=int, nargs="+", default=list(d.sessions),
                        help=f"concurrent sessions per step (each 1..{MAX_SESSIONS})")
    parser.add_argument("--seconds", type=float, default=d.seconds,
                        help=f"measured time per step (<= {MAX_SECONDS:.0f})")
    parser.add_argument("--size", type=int, default=d.size, help="avatar frame size")
    parser.add_argument("--checkpoint", default=None, help="model folder (default: the built-in model)")
    parser.add_argument("--random-init", action="store_true", help="an UNTRAINED model (plumbing cost only)")
    parser.add_argument("--json", default=d.json_path, help="write the results here")


def bench_serve_run(args: argparse.Namespace) -> int:
    bc = ServeBenchConfig(sessions=tuple(args.sessions), seconds=args.seconds, size=args.size,
                          checkpoint=args.checkpoint, random_init=args.random_init, json_path=args.json)
    if not all(1 <= n <= MAX_SESSIONS for n in bc.sessions):
        raise ConfigError(f"--sessions must each be in 1..{MAX_SESSIONS}")
    if not 1 <= bc.seconds <= MAX_SECONDS:
        raise ConfigError(f"--seconds must be in 1..{MAX_SECONDS:.0f}")
    from avatar_forcing.cli.serve import check_engine
    from avatar_forcing.serve.config import ServerConfig

    check_engine(ServerConfig(checkpoint=bc.checkpoint, random_init=bc.random_init))
    pcm, frames = user_media()
    results = []
    for n in bc.sessions:
        print(f"bench serve: {n} session(s) for {bc.seconds:.0f} s ...", flush=True)
        results.append(asyncio.run(run_step(n, bc, pcm, frames)))
    print_table(results)
    path = Path(bc.json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"config": asdict(bc), "cpu_count": os.cpu_count(),
                                "results": [asdict(r) for r in results]}, indent=2))
    print(f"wrote {path}")
    return 0

"""`avatar-forcing bench serve`: a load test of the WebRTC server on loopback.

For each N in ``--sessions``, N aiortc clients connect one after another (``stagger_s`` apart: the
server admits a session only while the running ones have room, else 503) to an in-process server whose
limit is N; each streams a speaking, nodding user (eSpeak NG speech + the astronaut photo) while the avatar
speaks typed text, for ``--seconds``. Then one more client tries to join (N + 1 against the limit).
``--background-load K`` runs K busy processes (a CPU loop each) beside it, as a laptop has.

Reported per N (after a warm-up that is not measured):
  * ``unique_fps``: new frames the server sent per second (it never resends one; ``repeated_frames``
    counts any it did) and ``received_fps`` what the client decoded;
  * ``e2e_ms_p50/p95``: user sample arrival -> the frame of that moment leaves the server (every frame
    sent, not only block starts), i.e. the playout delay actually lived;
  * ``av_offset_ms_p95``: |time a frame's voice left - time its picture left| (voice never ahead: the
    mean's sign says which way it leans);
  * the degradation step (final, worst, changes), slips (late frames the clock waited for), frames
    skipped, CPU of this process (server + clients) and memory.
``--churn K`` instead connects and closes K sessions one after another and reports the memory
(``rss_start_mb`` before any, ``rss_first_mb`` after the first, ``rss_end_mb`` after the last).
Bounded: at most MAX_SESSIONS clients, MAX_SECONDS per step, MAX_CHURN sessions; it always stops.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from avatar_forcing.errors import BusyError, ConfigError

MAX_SESSIONS = 16
MAX_SECONDS = 120.0
MAX_CHURN = 500
MAX_BACKGROUND = 16
AVATAR_TEXT = ("Thanks for calling. Let me tell you about our plans for the summer, "
               "there is a lot to talk about and I am happy to go through it with you.")
CHURN_MEDIA_S = 1.0  # media each churn session streams before it closes
CHURN_SETTLE_S = 0.5  # then a moment for the server to release it
USER_TEXT = "Hi, I have a question about my booking. Could you help me with that, please?"


@dataclass
class ServeBenchConfig:
    sessions: tuple[int, ...] = (1, 2, 4)
    seconds: float = 10.0
    warmup_s: float = 2.0  # connection set-up and the first blocks are not measured
    stagger_s: float = 4.0  # between clients of one step: the server judges its room by the running ones
    size: int = 512
    checkpoint: str | None = None
    random_init: bool = False
    background_load: int = 0  # busy processes beside the server
    churn: int = 0  # > 0: the churn test instead of the load steps
    json_path: str = "out/bench_serve.json"


@dataclass
class StepResult:
    sessions: int
    background_load: int = 0
    unique_fps: list[float] = field(default_factory=list)  # per session, server side
    received_fps: list[float] = field(default_factory=list)  # per session, decoded by the client
    repeated_frames: int = 0
    e2e_ms_p50: float | None = None
    e2e_ms_p95: float | None = None
    av_offset_ms_p95: float | None = None
    av_offset_ms_mean: float | None = None  # + : voice after the lips
    delay_ms: list[float] = field(default_factory=list)  # playout delay at the end, per session
    step: list[str] = field(default_factory=list)  # degradation step at the end, per session
    worst_step: list[str] = field(default_factory=list)
    step_changes: int = 0
    slips: int = 0
    frames_skipped: int = 0
    frames_caught_up: int = 0
    compute_ms_p50: float | None = None
    cpu_percent: float = 0.0  # of one core; 200% = both cores of a 2-core machine
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    over_limit: str = ""  # what the (N+1)-th client got
    refused: list[str] = field(default_factory=list)  # clients of the N the server refused (no room)


@dataclass
class ChurnResult:
    sessions: int
    rss_start_mb: float = 0.0
    rss_first_mb: float = 0.0  # after the first session closed
    rss_end_mb: float = 0.0
    seconds: float = 0.0
    active_at_end: int = 0
    rss_mb: list[float] = field(default_factory=list)  # after each session (the trend: flat or climbing)


def spin(stop) -> None:
    """A busy process: what a browser, an IDE or a build does to a laptop's cores."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 31 + 7) % 1_000_003


class BackgroundLoad:
    def __init__(self, processes: int):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._procs = [ctx.Process(target=spin, args=(self._stop,), daemon=True) for _ in range(processes)]

    def __enter__(self) -> BackgroundLoad:
        for p in self._procs:
            p.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for p in self._procs:
            p.join(5)
            if p.is_alive():
                p.terminate()


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


async def start_server(n: int, bc: ServeBenchConfig):
    from aiohttp import web

    from avatar_forcing.serve.app import Server
    from avatar_forcing.serve.config import ServerConfig

    cfg = ServerConfig(port=0, max_sessions=n, size=bc.size, checkpoint=bc.checkpoint,
                       random_init=bc.random_init, ice_timeout_s=30.0)
    server = Server(cfg)
    runner = web.AppRunner(server.build())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)  # loopback only
    await site.start()
    return server, runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


async def run_churn(bc: ServeBenchConfig, pcm: np.ndarray, frames: list[np.ndarray]) -> ChurnResult:
    """Sessions one after another (connect, a second of media, close): memory must not climb."""
    from avatar_forcing.serve.client import AvatarClient

    server, runner, url = await start_server(1, bc)
    result = ChurnResult(sessions=bc.churn, rss_start_mb=round(rss_mb(), 1))
    t0 = time.monotonic()
    try:
        for i in range(bc.churn):
            client = AvatarClient(url, user_audio=pcm, user_frames=frames)
            try:
                await client.connect()
                await client.wait_connected(30)
                await asyncio.sleep(CHURN_MEDIA_S)
            finally:
                await client.close(hang_up=i % 2 == 0)  # half hang up, half just vanish
            for _ in range(int(30 / 0.05)):  # the slot frees at close / when the silence is noticed
                if not server.manager.active:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(CHURN_SETTLE_S)  # the server's release_memory() after the close
            result.rss_mb.append(round(rss_mb(), 1))
            if i == 0:
                gc.collect()  # the first session loads lazily imported modules and caches: the baseline
                result.rss_first_mb = round(rss_mb(), 1)
        result.active_at_end = server.manager.active
        result.rss_end_mb = round(rss_mb(), 1)  # no gc.collect(): what reference counting freed
    finally:
        await runner.cleanup()
    result.seconds = round(time.monotonic() - t0, 1)
    return result


async def run_step(n: int, bc: ServeBenchConfig, pcm: np.ndarray, frames: list[np.ndarray]) -> StepResult:
    from avatar_forcing.serve.client import AvatarClient

    server, runner, url = await start_server(n, bc)
    result = StepResult(sessions=n, background_load=bc.background_load, rss_start_mb=round(rss_mb(), 1))
    clients: list = []
    try:
        for i in range(n):  # users arrive one after another; the server may refuse one (503) for room
            client = AvatarClient(url, user_audio=pcm, user_frames=frames)
            try:
                await client.connect()
            except BusyError as exc:
                result.refused.append(str(exc))
                await client.close()
                continue
            clients.append(client)
            await client.wait_connected(30)
            await client.say(AVATAR_TEXT)
            if i < n - 1:
                await asyncio.sleep(bc.stagger_s)
        await asyncio.sleep(bc.warmup_s)
        sessions = [server.manager.get(c.session) for c in clients]
        for s in sessions:  # measure from here: the warm-up's figures go
            s.metrics.e2e_ms.clear()
            s.metrics.av_offset_ms.clear()
            s.worker.stats.compute_ms.clear()
        counts = [c.received.video_frames for c in clients]
        sent = [s.metrics.video_sent for s in sessions]
        base = [(s.metrics.slips, s.worker.stats.frames_skipped, s.metrics.video_caught_up,
                 s.worker.controller.state.changes) for s in sessions]
        cpu0, t0 = cpu_seconds(), time.monotonic()
        e2e, offsets = [], []
        while time.monotonic() - t0 < bc.seconds:  # deques are bounded: collect as they fill
            await asyncio.sleep(min(2.0, bc.seconds))
            for s in sessions:
                e2e += list(s.metrics.e2e_ms)
                offsets += list(s.metrics.av_offset_ms)
                s.metrics.e2e_ms.clear()
                s.metrics.av_offset_ms.clear()
        wall = time.monotonic() - t0
        result.cpu_percent = round(100 * (cpu_seconds() - cpu0) / wall, 1)
        result.received_fps = [round((c.received.video_frames - k) / wall, 1)
                               for c, k in zip(clients, counts, strict=True)]
        result.unique_fps = [round((s.metrics.video_sent - k) / wall, 1)
                             for s, k in zip(sessions, sent, strict=True)]
        compute = []
        steps = server.cfg.realtime.steps
        for s, (slips, skipped, caught, changes) in zip(sessions, base, strict=True):
            compute += list(s.worker.stats.compute_ms)
            result.repeated_frames += s.metrics.video_repeated
            result.slips += s.metrics.slips - slips
            result.frames_skipped += s.worker.stats.frames_skipped - skipped
            result.frames_caught_up += s.metrics.video_caught_up - caught
            state = s.worker.controller.state
            result.step_changes += state.changes - changes
            result.step.append(f"{state.step}:{steps[state.step].name}")
            result.worst_step.append(f"{state.worst_step}:{steps[state.worst_step].name}")
            result.delay_ms.append(round(s.timeline.delay_s * 1000))
        if e2e:
            result.e2e_ms_p50 = round(float(np.percentile(e2e, 50)), 1)
            result.e2e_ms_p95 = round(float(np.percentile(e2e, 95)), 1)
        if offsets:
            result.av_offset_ms_p95 = round(float(np.percentile(np.abs(offsets), 95)), 1)
            result.av_offset_ms_mean = round(float(np.mean(offsets)), 1)
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
    print(f"{'N':>3} {'load':>4} {'unique fps':>12} {'recv fps':>12} {'e2e p50':>7} {'p95':>6} "
          f"{'A/V p95':>7} {'delay ms':>10} {'step (worst)':>26} {'slips':>5} {'skip':>5} {'CPU %':>6} "
          f"{'RSS MB':>12}")
    fmt = lambda v: float("nan") if v is None else v  # noqa: E731
    for r in results:
        unique = " ".join(f"{f:.1f}" for f in r.unique_fps)
        recv = " ".join(f"{f:.1f}" for f in r.received_fps)
        delay = " ".join(str(d) for d in r.delay_ms)
        step = " ".join(f"{a}({b.split(':')[0]})" for a, b in zip(r.step, r.worst_step, strict=True))
        print(f"{r.sessions:>3} {r.background_load:>4} {unique:>12} {recv:>12} {fmt(r.e2e_ms_p50):>7.0f} "
              f"{fmt(r.e2e_ms_p95):>6.0f} {fmt(r.av_offset_ms_p95):>7.0f} {delay:>10} {step:>26} "
              f"{r.slips:>5} {r.frames_skipped:>5} {r.cpu_percent:>6.0f} "
              f"{r.rss_start_mb:>5.0f}->{r.rss_end_mb:<5.0f}")
    for r in results:
        for why in r.refused:
            print(f"N = {r.sessions}: a client was refused: {why}")
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
    parser.add_argument("--background-load", type=int, default=d.background_load, metavar="K",
                        help=f"run K busy processes beside the server, as a laptop has (0..{MAX_BACKGROUND})")
    parser.add_argument("--churn", type=int, default=d.churn, metavar="K",
                        help=f"instead: K sessions in a row, report memory (<= {MAX_CHURN})")
    parser.add_argument("--json", default=d.json_path, help="write the results here")


def bench_serve_run(args: argparse.Namespace) -> int:
    bc = ServeBenchConfig(sessions=tuple(args.sessions), seconds=args.seconds, size=args.size,
                          checkpoint=args.checkpoint, random_init=args.random_init,
                          background_load=args.background_load, churn=args.churn, json_path=args.json)
    if not all(1 <= n <= MAX_SESSIONS for n in bc.sessions):
        raise ConfigError(f"--sessions must each be in 1..{MAX_SESSIONS}")
    if not 1 <= bc.seconds <= MAX_SECONDS:
        raise ConfigError(f"--seconds must be in 1..{MAX_SECONDS:.0f}")
    if not 0 <= bc.background_load <= MAX_BACKGROUND:
        raise ConfigError(f"--background-load must be in 0..{MAX_BACKGROUND}")
    if not 0 <= bc.churn <= MAX_CHURN:
        raise ConfigError(f"--churn must be in 0..{MAX_CHURN}")
    from avatar_forcing.cli.serve import check_engine, quiet_logs
    from avatar_forcing.serve.config import ServerConfig
    from avatar_forcing.serve.sessions import settle_heap

    quiet_logs()
    server_cfg = ServerConfig(checkpoint=bc.checkpoint, random_init=bc.random_init)
    check_engine(server_cfg)
    settle_heap(server_cfg)  # as `avatar-forcing serve` does
    pcm, frames = user_media()
    with BackgroundLoad(bc.background_load):
        if bc.churn:
            print(f"bench serve: {bc.churn} sessions in a row ...", flush=True)
            churn = asyncio.run(run_churn(bc, pcm, frames))
            print(f"churn {churn.sessions}: RSS {churn.rss_start_mb:.0f} MB at start, "
                  f"{churn.rss_first_mb:.0f} after the first, {churn.rss_end_mb:.0f} after the last "
                  f"({churn.seconds:.0f} s)")
            results = [churn]
        else:
            results = []
            for n in bc.sessions:
                print(f"bench serve: {n} session(s) for {bc.seconds:.0f} s, background load "
                      f"{bc.background_load} ...", flush=True)
                results.append(asyncio.run(run_step(n, bc, pcm, frames)))
            print_table(results)
    path = Path(bc.json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"config": asdict(bc), "cpu_count": os.cpu_count(),
                                "results": [asdict(r) for r in results]}, indent=2))
    print(f"wrote {path}")
    return 0

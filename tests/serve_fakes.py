"""Test doubles for the server tests: a tiny engine with AvatarSession's interface, and a server runner.

The fake engine makes the server machinery (signalling, limits, cleanup, bad input) testable in
milliseconds; the real engine is exercised by tests/test_browser.py and `avatar-forcing bench serve`.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field

import numpy as np
from aiohttp import web

from avatar_forcing.motion.vector import MOTION_DIM, idx
from avatar_forcing.serve.app import Server
from avatar_forcing.serve.config import ServerConfig

BLOCK = 10
SAMPLES = 640


@dataclass
class FakeBlock:
    start_frame: int
    motion: np.ndarray
    frames: np.ndarray
    avatar_audio: np.ndarray
    timings: dict = field(default_factory=dict)


class FakeEngine:
    """jawOpen follows the avatar audio's loudness; the picture's brightness follows jawOpen."""

    instances: list[FakeEngine] = []
    lock = threading.Lock()
    block_size = BLOCK

    def __init__(self, portrait: np.ndarray, size: int = 64):
        self.size = size
        self._buffers = threading.Lock()  # pushes and steps come from two worker threads, like the real one
        self.avatar: list[np.ndarray] = []
        self.user = 0
        self.frames_pushed = 0
        self.next_frame = 0
        self.closed = False
        with FakeEngine.lock:
            FakeEngine.instances.append(self)

    def push_user_audio(self, pcm, sample_rate):
        self.user += len(pcm)

    def push_avatar_audio(self, pcm, sample_rate):
        with self._buffers:
            self.avatar.append(np.asarray(pcm, np.float32))

    def push_user_frame(self, rgb, timestamp):
        self.frames_pushed += 1

    def step(self):
        with self._buffers:
            if len(self.avatar) < BLOCK:
                return None
            chunk, self.avatar = self.avatar[:BLOCK], self.avatar[BLOCK:]
        motion = np.zeros((BLOCK, MOTION_DIM), np.float32)
        motion[:, idx("jawOpen")] = [min(1.0, 5 * float(np.sqrt(np.mean(c**2)))) for c in chunk]
        level = (40 + 200 * motion[:, idx("jawOpen")]).astype(np.uint8)
        frames = np.broadcast_to(level[:, None, None, None], (BLOCK, self.size, self.size, 3)).copy()
        block = FakeBlock(self.next_frame, motion, frames, np.concatenate(chunk))
        self.next_frame += BLOCK
        return block

    def close(self):
        self.closed = True


def make_config(**changes) -> ServerConfig:
    base = dict(port=0, max_sessions=2, size=64, ice_timeout_s=5.0, playout_delay_s=0.5, stats_interval_s=0.2)
    base.update(changes)
    return ServerConfig(**base)


@contextlib.asynccontextmanager
async def running_server(cfg: ServerConfig, factory=None):
    """Serve on 127.0.0.1 with an OS-chosen port; yields (server, base_url)."""
    server = Server(cfg, factory or (lambda portrait: FakeEngine(portrait, cfg.size)))
    runner = web.AppRunner(server.build())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()

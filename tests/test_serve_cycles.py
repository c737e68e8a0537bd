"""50 rapid connect/disconnect cycles: every session is cleaned up and memory returns to its baseline."""

from __future__ import annotations

import asyncio
import gc
import os
import threading

import numpy as np
import pytest

from avatar_forcing.serve.client import AvatarClient
from tests.serve_fakes import FakeEngine, make_config, running_server

CYCLES = 50
WARMUP = 5
MAX_GROWTH_MB = 25.0  # allocator noise; a leaked session (engine, frames, buffers) costs far more


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
def test_fifty_rapid_cycles_return_to_baseline():
    pcm = (0.3 * np.sin(np.arange(16000) / 10)).astype(np.float32)

    async def cycle(url: str, hang_up: bool) -> None:
        client = AvatarClient(url, user_audio=pcm)
        await client.connect()
        await client.wait_connected()
        await client.close(hang_up=hang_up)

    async def main():
        async with running_server(make_config(max_sessions=1)) as (server, url):
            for _ in range(WARMUP):
                await cycle(url, hang_up=True)
            await asyncio.sleep(0.5)
            gc.collect()
            base_rss, base_threads = rss_mb(), threading.active_count()
            base_tasks = len(asyncio.all_tasks())
            for i in range(CYCLES):
                await cycle(url, hang_up=i % 2 == 0)  # half hang up politely, half just vanish
                # a vanished client is noticed by the server within a moment; the limit is 1, so wait
                for _ in range(200):
                    if not server.manager.sessions:
                        break
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            gc.collect()
            return (base_rss, rss_mb(), base_threads, threading.active_count(), base_tasks,
                    len(asyncio.all_tasks()), server.manager.active)

    FakeEngine.instances.clear()
    base, end, threads0, threads1, tasks0, tasks1, active = asyncio.run(main())
    print(f"rss {base:.1f} -> {end:.1f} MB, threads {threads0} -> {threads1}, tasks {tasks0} -> {tasks1}")
    assert active == 0
    assert len(FakeEngine.instances) == WARMUP + CYCLES and all(e.closed for e in FakeEngine.instances)
    assert end - base < MAX_GROWTH_MB
    assert threads1 <= threads0 + 1  # the default executor may have grown by a thread
    assert tasks1 <= tasks0

"""Lean sessions and a tidy API: a closed session is freed by reference counting alone (no GC), a
killed client loses its slot within seconds, the token comes from a header only, JSON errors stay
JSON, and a bad offer costs no engine."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import weakref

import aiohttp
import numpy as np

from avatar_forcing.serve.client import AvatarClient
from tests.serve_fakes import FakeEngine, make_config, running_server

SR = 16000
PCM = (0.3 * np.sin(np.arange(SR) / 10)).astype(np.float32)


async def wait_for(predicate, timeout: float = 10.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and not predicate():
        await asyncio.sleep(0.05)
    return predicate()


def test_closed_session_is_freed_without_the_garbage_collector():
    engines: list[weakref.ref] = []

    def factory(portrait):
        engine = FakeEngine.__new__(FakeEngine)  # not kept in FakeEngine.instances
        FakeEngine.__init__(engine, portrait, 64)
        FakeEngine.instances.remove(engine)
        engines.append(weakref.ref(engine))
        return engine

    async def main():
        async with running_server(make_config(max_sessions=1), factory) as (server, url):
            client = AvatarClient(url, user_audio=PCM)
            await client.connect()
            await client.wait_connected()
            session = server.manager.get(client.session)
            stats = session.worker.stats
            await wait_for(lambda: stats.frames_generated > 20)
            ref, timeline = weakref.ref(session), session.timeline
            del session
            gc.disable()  # from here on only reference counting may free anything
            try:
                await client.close()  # DELETE: the server closes the session
                await wait_for(lambda: not server.manager.sessions)
                await asyncio.sleep(0.2)  # the DELETE handler's frame lets go
                return ref() is None, engines[0]() is None, len(timeline.outputs), server.manager.active
            finally:
                gc.enable()

    session_freed, engine_freed, frames_left, active = asyncio.run(main())
    assert session_freed and engine_freed
    assert frames_left == 0 and active == 0


KILLED_CLIENT = """
import asyncio, sys
import numpy as np
from avatar_forcing.serve.client import AvatarClient

async def main():
    client = AvatarClient(sys.argv[1], user_audio=np.zeros(16000, np.float32))
    await client.connect()
    await client.wait_connected(20)
    print("connected", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_a_killed_client_loses_its_slot_quickly():
    """SIGKILL: no hang-up, no DTLS close, no ICE failure for ~30 s. The silence watchdog frees it."""

    async def main():
        cfg = make_config(max_sessions=1, silence_timeout_s=1.0)
        async with running_server(cfg) as (server, url):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", KILLED_CLIENT, url, stdout=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": os.getcwd()})
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            session = next(iter(server.manager.sessions.values()))
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            # far below aioice's consent time-out (6 x 5 s): only the watchdog can have closed it
            gone = await wait_for(lambda: not server.manager.sessions, timeout=15)
            return line.strip(), gone, session.close_reason, server.manager.active

    line, gone, reason, active = asyncio.run(main())
    assert line == b"connected"
    assert gone and active == 0
    assert "silent" in reason


def test_token_from_the_header_only_and_websocket_subprotocol():
    async def main():
        out = {}
        async with running_server(make_config(token="s3cret")) as (server, url):
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{url}/api/portraits?token=s3cret") as r:
                    out["query"] = r.status  # never from the URL (it would be logged)
                async with http.get(f"{url}/api/portraits", headers={"Authorization": "Bearer s3cret"}) as r:
                    out["header"] = r.status
            client = AvatarClient(url, token="s3cret", user_audio=PCM)
            await client.connect()
            ws_url = f"{url}/api/sessions/{client.session}/speech/ws"
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(ws_url, protocols=("avatar-forcing", "bearer.s3cret")) as ws:
                    await ws.send_str('{"type": "ping"}')
                    out["ws"] = ((await ws.receive_json(timeout=5))["type"], ws.protocol)
                try:
                    async with http.ws_connect(ws_url, protocols=("avatar-forcing", "bearer.wrong")):
                        out["ws_wrong"] = "open"
                except aiohttp.WSServerHandshakeError as exc:
                    out["ws_wrong"] = exc.status
            await client.close()
        return out

    out = asyncio.run(main())
    assert out["query"] == 401 and out["header"] == 200
    assert out["ws"] == ("ok", "avatar-forcing") and out["ws_wrong"] == 401


def test_oversized_json_is_a_json_413_and_a_bad_offer_builds_no_engine():
    built = []

    def factory(portrait):
        built.append(1)
        return FakeEngine(portrait, 64)

    async def main():
        out = {}
        async with running_server(make_config(), factory) as (server, url):
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{url}/api/offer", data=b'{"sdp": "' + b"x" * 2_000_000 + b'"}',
                                     headers={"Content-Type": "application/json"}) as r:
                    out["big"] = (r.status, r.content_type, (await r.json())["error"])
                async with http.post(f"{url}/api/offer", json={"sdp": "not sdp", "type": "offer"}) as r:
                    out["bad_sdp"] = (r.status, (await r.json())["error"])
                async with http.get(f"{url}/api/health") as r:
                    out["sessions"] = (await r.json())["sessions"]
        return out

    out = asyncio.run(main())
    assert out["big"] == (413, "application/json", "too_large")
    assert out["bad_sdp"] == (400, "bad_sdp") and not built and out["sessions"] == 0


def test_bench_stream_skips_wav2vec_without_transformers(monkeypatch, capsys):
    import avatar_forcing.eval.bench_stream as bench_stream
    from avatar_forcing.cli.bench import skip_missing_parts

    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now fails
    monkeypatch.setattr(bench_stream, "bench_wav2vec2", bench_stream.bench_wav2vec2)  # restored after
    assert skip_missing_parts("stream") == ["bench_wav2vec2"]
    assert bench_stream.bench_wav2vec2(None) is None
    assert "transformers is not installed" in capsys.readouterr().out
    assert skip_missing_parts("serve") == []


def test_access_log_never_holds_the_query_or_headers():
    import logging

    from aiohttp.test_utils import make_mocked_request
    from aiohttp.web import Response

    from avatar_forcing.serve.app import QuietAccessLogger

    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger("test-access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    request = make_mocked_request("GET", "/api/portraits?token=s3cret",
                                  headers={"Authorization": "Bearer s3cret"})
    QuietAccessLogger(logger, "").log(request, Response(status=401), 0.01)
    assert records and "/api/portraits" in records[0] and "s3cret" not in records[0]


def test_a_degraded_server_refuses_another_session_with_a_clean_503():
    async def main():
        async with running_server(make_config(max_sessions=2)) as (server, url):
            first = AvatarClient(url, user_audio=PCM)
            await first.connect()
            session = server.manager.get(first.session)
            session.worker.controller.state.step = server.cfg.realtime.admit_below_step  # as under load
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{url}/api/offer", json={"sdp": "v=0", "type": "offer"}) as r:
                    refused = (r.status, (await r.json())["error"], r.headers.get("Retry-After"))
            session.worker.controller.state.step = 0  # recovered: room again
            second = AvatarClient(url, user_audio=PCM)
            await second.connect()
            admitted = second.session in server.manager.sessions
            await second.close()
            await first.close()
        return refused, admitted

    refused, admitted = asyncio.run(main())
    assert refused[:2] == (503, "busy") and refused[2] is not None
    assert admitted

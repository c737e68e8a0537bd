"""The WebRTC server with a fake engine: media flows, limits hold, bad input is refused cleanly."""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
import pytest

from avatar_forcing.errors import BusyError
from avatar_forcing.serve.client import AvatarClient
from tests.serve_fakes import FakeEngine, make_config, running_server

SR = 16000


def tone(seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def faces(n: int = 5, size: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(n)]


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return predicate()


def test_session_streams_video_audio_and_latency():
    async def main():
        async with running_server(make_config()) as (server, url):
            client = AvatarClient(url, user_audio=tone(1.0), user_frames=faces())
            await client.connect()
            await client.wait_connected()
            received = client.received
            assert await wait_for(lambda: received.video_frames >= 30 and received.audio_frames > 10)
            # the avatar speaks through the WebSocket agent endpoint: jawOpen must move
            ws_url = f"{url}/api/sessions/{client.session}/speech/ws"
            async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as ws:
                pcm = tone(0.8, amp=0.8)
                pcm[: SR // 2] = 0  # half silence, then a tone: variance in jawOpen
                for chunk in np.array_split((pcm * 32767).astype("<i2"), 8):
                    await ws.send_bytes(chunk.tobytes())
            await asyncio.sleep(1.6)
            stats = await client.stats()
            events = {e["type"] for e in client.received.events}
            await client.close()
            await wait_for(lambda: not server.manager.sessions)
            return stats, events

    stats, events = asyncio.run(main())
    assert stats["e2e_ms_p50"] is not None and stats["e2e_ms_p50"] > 0
    assert stats["user_audio_frames"] > 0 and stats["user_video_frames"] > 0
    assert stats["jaw_open_std"] > 0.01
    assert {"ready", "stats"} <= events


def test_busy_answer_has_retry_after():
    async def main():
        async with running_server(make_config(max_sessions=1, retry_after_s=7)) as (server, url):
            first = AvatarClient(url, user_audio=tone(0.5))
            await first.connect()
            second = AvatarClient(url, user_audio=tone(0.5))
            with pytest.raises(BusyError, match="Retry-After: 7"):
                await second.connect()
            await second.close()
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{url}/api/offer", json={"sdp": "v=0", "type": "offer"}) as r:
                    body, status, retry = await r.json(), r.status, r.headers.get("Retry-After")
            await first.close()
            return body, status, retry, server.manager.active

    body, status, retry, active = asyncio.run(main())
    assert status == 503 and retry == "7" and body["error"] == "busy"
    assert active == 0


def test_malformed_requests_get_clear_errors_and_leave_nothing():
    async def main():
        results = {}
        async with running_server(make_config()) as (server, url):
            async with aiohttp.ClientSession() as http:
                cases = {
                    "sdp": {"json": {"sdp": "this is not sdp", "type": "offer"}},
                    "json": {"data": b"{not json"},
                    "portrait": {"json": {"sdp": "v=0", "type": "offer", "portrait": "nobody"}},
                }
                for name, kwargs in cases.items():
                    async with http.post(f"{url}/api/offer", **kwargs) as r:
                        results[name] = (r.status, (await r.json())["error"])
                async with http.get(f"{url}/api/sessions/nope/stats") as r:
                    results["no_session"] = (r.status, (await r.json())["error"])
                async with http.get(f"{url}/api/health") as r:
                    results["health"] = (r.status, (await r.json())["sessions"])
            results["closed"] = all(e.closed for e in FakeEngine.instances)
        return results

    FakeEngine.instances.clear()
    r = asyncio.run(main())
    assert r["sdp"] == (400, "bad_sdp")
    assert r["json"] == (400, "bad_input") and r["portrait"] == (400, "bad_input")
    assert r["no_session"] == (404, "no_session")
    assert r["health"] == (200, 0) and r["closed"]


def test_portrait_uploads_are_checked(no_face_image):
    import io

    from PIL import Image

    def png(array: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="PNG")
        return buf.getvalue()

    async def main():
        out = {}
        cfg = make_config(max_image_bytes=400_000, max_image_pixels=1_000_000)
        async with running_server(cfg) as (_, url), aiohttp.ClientSession() as http:
            bodies = {
                "not_image": b"GIF89a but not really" * 10,
                "no_face": png(no_face_image[::2, ::2]),  # a real photo of a coffee cup
                "too_big": b"\0" * 500_000,
                "bomb": png(np.zeros((1200, 1000, 3), np.uint8)),  # small file, too many pixels
            }
            for name, body in bodies.items():
                async with http.post(f"{url}/api/portraits", data=body) as r:
                    out[name] = (r.status, (await r.json())["error"])
            async with http.get(f"{url}/api/health") as r:
                out["alive"] = r.status
        return out

    out = asyncio.run(main())
    assert out["not_image"] == (400, "bad_input")
    assert out["no_face"] == (422, "no_face")
    assert out["too_big"] == (413, "too_large")
    assert out["bomb"] == (400, "bad_input")
    assert out["alive"] == 200


def test_ice_never_completing_is_timed_out_and_cleaned():
    async def main():
        async with running_server(make_config(ice_timeout_s=0.5)) as (server, url):
            from aiortc import RTCConfiguration, RTCPeerConnection

            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pc.createDataChannel("events")
            pc.addTransceiver("video", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{url}/api/offer", json={"sdp": pc.localDescription.sdp,
                                                               "type": "offer"}) as r:
                    assert r.status == 200
            # we never apply the answer, so ICE never completes
            before = len(server.manager.sessions)
            gone = await wait_for(lambda: not server.manager.sessions, timeout=5)
            await pc.close()
            return before, gone

    before, gone = asyncio.run(main())
    assert before == 1 and gone


def test_abrupt_disconnect_mid_block_is_cleaned():
    async def main():
        async with running_server(make_config()) as (server, url):
            client = AvatarClient(url, user_audio=tone(1.0), user_frames=faces())
            await client.connect()
            await client.wait_connected()
            await wait_for(lambda: client.received.video_frames > 5)
            session = next(iter(server.manager.sessions.values()))
            await client.close(hang_up=False)  # vanish without DELETE
            gone = await wait_for(lambda: not server.manager.sessions, timeout=15)
            return gone, session.worker.alive, session.engine

    gone, worker_alive, engine = asyncio.run(main())
    assert gone and not worker_alive and engine is None


def test_websocket_speech_rejects_malformed_and_oversized_frames():
    async def main():
        async with running_server(make_config(max_ws_frame_bytes=1024)) as (server, url):
            client = AvatarClient(url, user_audio=tone(0.5))
            await client.connect()
            ws_url = f"{url}/api/sessions/{client.session}/speech/ws"
            out = {}
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(ws_url) as ws:
                    await ws.send_bytes(b"\x01\x02\x03")  # odd length: not int16
                    msg = await ws.receive_json(timeout=5)
                    await ws.receive(timeout=5)
                    out["odd"] = (msg["code"], ws.close_code)
                async with http.ws_connect(ws_url) as ws:
                    await ws.send_bytes(b"\0" * 4096)  # over the 1024-byte limit
                    await ws.receive(timeout=5)
                    out["big"] = ws.close_code
                async with http.ws_connect(ws_url) as ws:
                    await ws.send_str("hello")
                    out["text"] = (await ws.receive_json(timeout=5))["code"]
                async with http.ws_connect(ws_url) as ws:
                    await ws.send_bytes(b"\0\0" * 256)
                    await ws.send_str('{"type": "ping"}')
                    out["ok"] = (await ws.receive_json(timeout=5))["type"]
            out["alive"] = client.session in server.manager.sessions
            await client.close()
            return out

    out = asyncio.run(main())
    assert out["odd"] == ("bad_frame", 1007)
    assert out["big"] == 1009
    assert out["text"] == "bad_frame"
    assert out["ok"] == "ok" and out["alive"]


def test_bearer_token_is_required_when_set():
    async def main():
        async with running_server(make_config(token="s3cret")) as (_, url), aiohttp.ClientSession() as http:
            async with http.get(f"{url}/api/health") as r:
                without = r.status
            async with http.get(f"{url}/api/health", headers={"Authorization": "Bearer s3cret"}) as r:
                with_token = r.status
            async with http.get(f"{url}/") as r:
                page = r.status
        return without, with_token, page

    assert asyncio.run(main()) == (401, 200, 200)


def test_audio_file_and_text_speech_sources():
    import io
    import wave

    def wav_bytes(pcm: np.ndarray) -> bytes:
        buf = io.BytesIO()
        with wave.open(buf, "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(SR)
            f.writeframes((pcm * 32767).astype("<i2").tobytes())
        return buf.getvalue()

    async def main():
        out = {}
        async with running_server(make_config(max_audio_bytes=100_000)) as (server, url):
            client = AvatarClient(url, user_audio=tone(0.5))
            await client.connect()
            base = f"{url}/api/sessions/{client.session}"
            async with aiohttp.ClientSession() as http:
                for name, body in {"wav": wav_bytes(tone(1.0)), "junk": b"RIFF....not audio" * 20,
                                   "big": b"\0" * 200_000}.items():
                    async with http.post(f"{base}/speech", data=body) as r:
                        out[name] = (r.status, await r.json())
                for name, text in {"text": "Hello there.", "empty": "   ", "long": "a" * 5000}.items():
                    async with http.post(f"{base}/say", json={"text": text}) as r:
                        out[name] = (r.status, await r.json())
            out["queued"] = server.manager.get(client.session).voice.queued_seconds
            await client.close()
        return out

    out = asyncio.run(main())
    assert out["wav"][0] == 200 and abs(out["wav"][1]["seconds"] - 1.0) < 0.05
    assert out["junk"][0] == 400 and out["big"][0] == 413
    assert out["text"][0] == 200 and out["text"][1]["seconds"] > 0.3
    assert out["empty"][0] == 400 and out["long"][0] == 400
    assert out["queued"] > 1.0


def test_voice_queue_pads_with_silence_and_is_bounded():
    from avatar_forcing.errors import InputError
    from avatar_forcing.serve.speech import AvatarVoice, parse_pcm_frame

    voice = AvatarVoice(max_seconds=1.0)
    voice.feed(np.ones(1000, np.float32) * 0.5)
    first, speaking = voice.pull(640)
    second, still = voice.pull(640)
    assert speaking and still and first.min() == 0.5
    assert second[:360].min() == 0.5 and not second[360:].any()
    assert not voice.pull(640)[1]
    with pytest.raises(InputError, match="queued speech"):
        voice.feed(np.zeros(20000, np.float32))
    assert parse_pcm_frame(np.array([16384, -32768], "<i2").tobytes(), 100).tolist() == [0.5, -1.0]
    with pytest.raises(InputError):
        parse_pcm_frame(b"\0" * 3, 100)


@pytest.mark.slow  # building the engine takes a while on a shared 2-core CPU
def test_real_engine_plugs_in_motion_only():
    """The real AvatarSession (untrained tiny model, no renderer) behind the server: blocks flow, it ends."""
    import warnings

    import torch

    from avatar_forcing.stream.options import SessionOptions
    from avatar_forcing.stream.session import AvatarSession

    torch.set_num_threads(1)
    engines = []

    def factory(portrait):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            engine = AvatarSession(options=SessionOptions(render=False, random_init=True, nfe=2),
                                   reference_motion=np.zeros(58, np.float32))
        engines.append(engine)
        return engine

    async def main():
        async with running_server(make_config(max_backlog_s=5.0), factory) as (server, url):
            client = AvatarClient(url, user_audio=tone(1.0))
            await client.connect()
            await client.wait_connected()
            session = server.manager.get(client.session)
            await wait_for(lambda: session.worker.stats.blocks >= 3, timeout=20)
            stats = await client.stats()
            await client.close()
            await wait_for(lambda: not server.manager.sessions)
            return stats, session

    stats, session = asyncio.run(main())
    assert stats["blocks"] >= 3 and stats["compute_ms_p50"] > 0 and stats["motion_mean"] is not None
    assert session.worker.stats.error is None
    assert engines and engines[0]._closed and not session.worker.alive


def test_default_session_limit_is_one_per_two_cores(monkeypatch):
    """A live session needs about two cores: a 2-core machine admits one and answers the next with a 503."""
    from avatar_forcing.serve.config import ServerConfig

    for cores, sessions in ((1, 1), (2, 1), (3, 1), (4, 2), (16, 8), (None, 1)):
        monkeypatch.setattr("os.cpu_count", lambda cores=cores: cores)
        assert ServerConfig().max_sessions == sessions

"""The aiohttp application: static page, signalling and the session API.

Routes (all JSON; errors are ``{"error": code, "message": text}`` with a fitting HTTP status):

  GET    /                                   the web page (static files, no build step)
  GET    /api/health                         {"ok", "sessions", "max_sessions"}
  GET    /api/portraits                      built-in portrait names
  POST   /api/portraits                      raw image bytes -> {"id"}  (413 too big, 400 not an image)
  GET    /api/portraits/{name}/image         a small JPEG of the portrait (the page's preview)
  POST   /api/offer                          {"sdp", "type", "portrait"} -> {"sdp", "type", "session"}
                                             (503 + Retry-After "busy", 422 "no_face", 400 "bad_sdp")
  POST   /api/sessions/{id}/say              {"text"}: the avatar speaks it (eSpeak NG)
  POST   /api/sessions/{id}/speech           raw audio file bytes: the avatar speaks it
  GET    /api/sessions/{id}/speech/ws        WebSocket: binary int16 LE mono 16 kHz PCM from a voice agent
  GET    /api/sessions/{id}/stats            live figures (fps, latency, motion)
  DELETE /api/sessions/{id}                  end the session

With a token configured, every /api route needs ``Authorization: Bearer TOKEN``. Browsers cannot give
a WebSocket headers, so the speech WebSocket also takes it as a subprotocol ``bearer.TOKEN`` (next to
``avatar-forcing``). Never in the URL: query strings end up in access logs and browser history.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import secrets
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from aiohttp import WSMsgType, web
from aiohttp.abc import AbstractAccessLogger

from avatar_forcing.errors import AvatarForcingError, BusyError, InputError, NoFaceError
from avatar_forcing.serve.config import ServerConfig
from avatar_forcing.serve.sessions import BadOffer, ServeSession, SessionManager
from avatar_forcing.serve.speech import parse_pcm_frame

EngineFactory = Callable[[np.ndarray], object]  # portrait RGB -> AvatarSession (blocking; run in a thread)
WS_PROTOCOL = "avatar-forcing"
TOKEN_PROTOCOL_PREFIX = "bearer."
JSON_LIMIT_BYTES = 1024 * 1024  # JSON bodies (offers, text to say); uploads are bounded per route


class QuietAccessLogger(AbstractAccessLogger):
    """Method, path (never the query string, never headers), status, time."""

    def log(self, request, response, time: float) -> None:
        self.logger.info('%s "%s %s" %s %.3f s', request.remote, request.method, request.path,
                         response.status, time)


def error(status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


def default_engine_factory(cfg: ServerConfig) -> EngineFactory:
    from avatar_forcing.stream.options import SessionOptions
    from avatar_forcing.stream.session import AvatarSession

    threads = cfg.torch_threads or max(1, (os.cpu_count() or 1) // (2 * cfg.max_sessions))
    # render=False: the serve worker renders frame by frame itself (the first frame of a block leaves one
    # render after the DFoT, not ten) and only the frames it sends (serve/worker.py)
    options = SessionOptions(output_size=cfg.size, random_init=cfg.random_init, threads=threads, render=False)

    def make(portrait: np.ndarray):
        engine = AvatarSession(checkpoint=cfg.checkpoint, portrait=portrait, options=options)
        warm_up(engine)
        return engine

    return make


WARMUP_BLOCKS = 2  # torch's first passes and the first render are several times slower than the rest


def warm_up(engine) -> None:
    """Run a couple of silent blocks and a render, then rewind: the session's first blocks run at their
    steady speed instead of being late (which would slip the clock and degrade the session at once)."""
    samples = engine.block_size * WARMUP_BLOCKS * 640
    rng = np.random.default_rng(0)
    noise = (1e-3 * rng.standard_normal(samples)).astype(np.float32)  # not silence: no idle skipping
    engine.push_user_audio(noise, 16000)
    engine.push_avatar_audio(noise, 16000)
    for _ in range(WARMUP_BLOCKS):
        block = engine.step()
        if block is not None and engine.frame_shape is not None:
            engine.render(block.motion[:1])
    engine.reset()


def builtin_portrait(name: str) -> np.ndarray:
    if name == "astronaut":
        from skimage import data

        return data.astronaut()
    raise InputError(f"unknown portrait {name!r}")


class Server:
    def __init__(self, cfg: ServerConfig, engine_factory: EngineFactory | None = None):
        self.cfg = cfg
        self.engine_factory = engine_factory or default_engine_factory(cfg)
        self.manager = SessionManager(cfg)
        self.portraits: OrderedDict[str, np.ndarray] = OrderedDict()  # uploads live in memory only

    # --- portraits ----------------------------------------------------------------------------
    def portrait(self, name: str) -> np.ndarray:
        if name in self.portraits:
            return self.portraits[name]
        if name in self.cfg.builtin_portraits:
            return builtin_portrait(name)
        choices = list(self.cfg.builtin_portraits)
        raise InputError(f"unknown portrait {name!r}: upload one or pick one of {choices}")

    async def upload_portrait(self, request: web.Request) -> web.Response:
        data = await read_limited(request, self.cfg.max_image_bytes)
        rgb = await asyncio.get_running_loop().run_in_executor(None, self.check_portrait, data)
        key = "upload-" + secrets.token_urlsafe(12)
        self.portraits[key] = rgb
        while len(self.portraits) > self.cfg.max_portraits:
            self.portraits.popitem(last=False)
        return web.json_response({"id": key, "width": int(rgb.shape[1]), "height": int(rgb.shape[0])})

    def check_portrait(self, data: bytes) -> np.ndarray:
        """Decode safely (pixel count checked before decoding) and make sure there is a face."""
        from avatar_forcing.media.image import load_image
        from avatar_forcing.motion.tracker import track_image

        rgb = load_image(data, max_pixels=self.cfg.max_image_pixels)
        track_image(rgb)  # raises NoFaceError
        return rgb

    async def list_portraits(self, request: web.Request) -> web.Response:
        return web.json_response({"builtin": list(self.cfg.builtin_portraits)})

    async def portrait_image(self, request: web.Request) -> web.Response:
        """A small JPEG of a portrait (built-in or uploaded): the page's preview before the first frame."""
        rgb = self.portrait(request.match_info["name"])
        data = await asyncio.get_running_loop().run_in_executor(None, preview_jpeg, rgb)
        return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "private"})

    # --- sessions -----------------------------------------------------------------------------
    async def offer(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        sdp, kind = body.get("sdp"), body.get("type", "offer")
        if not isinstance(sdp, str) or kind != "offer":
            raise InputError('the body needs "sdp" (a string) and "type": "offer"')
        portrait = self.portrait(str(body.get("portrait") or self.cfg.builtin_portraits[0]))
        self.manager.reserve()
        session = engine = None
        try:
            session = ServeSession(self.manager, self.cfg)
            await session.accept_offer(sdp, kind)  # a bad offer costs no engine
            engine = await asyncio.get_running_loop().run_in_executor(None, self.engine_factory, portrait)
            if session.closed:  # the server shut down meanwhile
                raise BadOffer("the session ended during set-up")
            self.manager.add(session)
            answer = await session.answer(engine)
        except BaseException:
            if session is not None:
                if session.engine is None and engine is not None and hasattr(engine, "close"):
                    engine.close()
                await session.close("setup failed")
            raise
        finally:
            self.manager.release_reservation()
        return web.json_response({"sdp": answer.sdp, "type": answer.type, "session": session.id})

    def session(self, request: web.Request) -> ServeSession:
        session = self.manager.get(request.match_info["sid"])
        if session is None:
            raise NoSession("no such session")
        return session

    async def say(self, request: web.Request) -> web.Response:
        session = self.session(request)
        text = (await read_json(request)).get("text", "")
        seconds = await session.say(str(text))
        return web.json_response({"seconds": round(seconds, 2)})

    async def speech_file(self, request: web.Request) -> web.Response:
        session = self.session(request)
        data = await read_limited(request, self.cfg.max_audio_bytes)
        seconds = await session.play_file(data)
        return web.json_response({"seconds": round(seconds, 2)})

    async def speech_ws(self, request: web.Request) -> web.WebSocketResponse:
        session = self.session(request)
        ws = web.WebSocketResponse(max_msg_size=self.cfg.max_ws_frame_bytes, heartbeat=20,
                                   protocols=(WS_PROTOCOL,))
        await ws.prepare(request)
        async for msg in ws:
            try:
                if msg.type == WSMsgType.BINARY:
                    session.voice.feed(parse_pcm_frame(msg.data, self.cfg.max_ws_frame_bytes))
                elif msg.type == WSMsgType.TEXT:
                    command = json.loads(msg.data)
                    if not isinstance(command, dict) or command.get("type") not in ("clear", "ping"):
                        raise InputError('text frames must be {"type": "clear"} or {"type": "ping"}')
                    if command["type"] == "clear":
                        session.voice.clear()
                    await ws.send_json({"type": "ok", "queued_s": round(session.voice.queued_seconds, 2)})
                elif msg.type == WSMsgType.ERROR:  # e.g. a frame over max_msg_size: aiohttp closes it
                    break
            except (ValueError, InputError) as exc:
                await ws.send_json({"type": "error", "code": "bad_frame", "message": str(exc)})
                await ws.close(code=1007, message=b"bad frame")
                break
            if session.closed:
                break
        return ws

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.session(request).stats())

    async def end(self, request: web.Request) -> web.Response:
        session = self.session(request)
        await session.close("ended by the client")
        return web.json_response({"closed": session.id})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "sessions": self.manager.active,
                                  "max_sessions": self.cfg.max_sessions})

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(Path(self.cfg.static_dir) / "index.html")

    # --- middleware ---------------------------------------------------------------------------
    @web.middleware
    async def guard(self, request: web.Request, handler):
        """Bearer-token check, and user errors turned into JSON answers (the server never dies)."""
        if self.cfg.token and request.path.startswith("/api/"):
            if not hmac.compare_digest(given_token(request).encode(), self.cfg.token.encode()):
                return error(401, "unauthorized", "a valid bearer token is required")
        try:
            return await handler(request)
        except NoSession as exc:
            return error(404, "no_session", str(exc))
        except web.HTTPException as exc:  # aiohttp's own (413 over client_max_size, 405...): JSON too
            if not request.path.startswith("/api/") or exc.status < 400:
                raise
            code = "too_large" if exc.status == 413 else exc.reason.lower().replace(" ", "_")
            return error(exc.status, code, exc.text or exc.reason)
        except BusyError as exc:
            return error(503, "busy", f"{exc}; try again in {self.cfg.retry_after_s} s",
                         headers={"Retry-After": str(self.cfg.retry_after_s)})
        except NoFaceError as exc:
            return error(422, "no_face", str(exc))
        except PayloadTooLarge as exc:
            return error(413, "too_large", str(exc))
        except BadOffer as exc:
            return error(400, "bad_sdp", str(exc))
        except InputError as exc:
            return error(400, "bad_input", str(exc))
        except AvatarForcingError as exc:  # e.g. no model installed: the server's fault, said clearly
            return error(500, "engine_unavailable", str(exc))

    def build(self) -> web.Application:
        # uploads are bounded per route (read_limited); this only caps JSON bodies and the like
        app = web.Application(middlewares=[self.guard], client_max_size=JSON_LIMIT_BYTES)
        app.router.add_get("/", self.index)
        app.router.add_get("/api/health", self.health)
        app.router.add_get("/api/portraits", self.list_portraits)
        app.router.add_post("/api/portraits", self.upload_portrait)
        app.router.add_get("/api/portraits/{name}/image", self.portrait_image)
        app.router.add_post("/api/offer", self.offer)
        app.router.add_post("/api/sessions/{sid}/say", self.say)
        app.router.add_post("/api/sessions/{sid}/speech", self.speech_file)
        app.router.add_get("/api/sessions/{sid}/speech/ws", self.speech_ws)
        app.router.add_get("/api/sessions/{sid}/stats", self.stats)
        app.router.add_delete("/api/sessions/{sid}", self.end)
        app.router.add_static("/static/", self.cfg.static_dir)
        app.on_shutdown.append(lambda _: self.manager.close_all())
        return app


PREVIEW_SIDE = 512  # longest side of a portrait preview


def preview_jpeg(rgb: np.ndarray) -> bytes:
    import cv2

    scale = min(1.0, PREVIEW_SIDE / max(rgb.shape[:2]))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)),
                         interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 85])
    return data.tobytes()


class PayloadTooLarge(InputError):
    pass


class NoSession(InputError):
    pass


def given_token(request: web.Request) -> str:
    """The bearer token from the Authorization header, or from a WebSocket subprotocol ``bearer.TOKEN``
    (browsers cannot set headers on a WebSocket). Never from the query string."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):]
    for protocol in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        protocol = protocol.strip()
        if protocol.startswith(TOKEN_PROTOCOL_PREFIX):
            return protocol[len(TOKEN_PROTOCOL_PREFIX):]
    return ""


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over ``limit`` bytes before reading it all."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the upload is {request.content_length} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the upload is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    if not size:
        raise InputError("the upload is empty")
    return b"".join(chunks)


async def read_json(request: web.Request) -> dict:
    try:
        body = await request.json()
    except web.HTTPRequestEntityTooLarge:
        limit = JSON_LIMIT_BYTES
        raise PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes") from None
    except (ValueError, UnicodeDecodeError):
        raise InputError("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    return body


def build_app(cfg: ServerConfig, engine_factory: EngineFactory | None = None) -> web.Application:
    return Server(cfg, engine_factory).build()

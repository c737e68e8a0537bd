"""A voice bot with a face, peer to peer and offline: Pipecat's SmallWebRTCTransport + AvatarVideoService.

    pip install 'avatar-forcing[pipecat]'
    python examples/pipecat_bot.py [--port 7860] [--portrait me.jpg] [--nfe 4] [--size 512]

Open http://127.0.0.1:7860/ and press Connect. The default agent needs no network and no model download:
Silero VAD (shipped with Pipecat) hears you, a scripted agent answers each of your turns, eSpeak NG
speaks, and the avatar talks and listens. Talk while it speaks and it stops at once. To plug in a real
speech recogniser, language model and TTS, replace `offline_agent` (docs/INTEGRATIONS.md).

Pipeline (one per connection):

    transport.input() -> avatar.listener() -> [VAD -> agent -> TTS] -> avatar -> transport.output()
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pipecat.workers.runner import WorkerRunner

from avatar_forcing.integrations.pipecat import AvatarServiceConfig, AvatarVideoService
from avatar_forcing.integrations.pipecat.agent import DEFAULT_SCRIPT, ScriptedAgent
from avatar_forcing.integrations.pipecat.session_ops import frame_size
from avatar_forcing.integrations.pipecat.tts import EspeakTTSService
from avatar_forcing.stream.options import SessionOptions

log = logging.getLogger("pipecat_bot")
PAGE = Path(__file__).with_name("pipecat_bot.html")
GREETING = ("Hello, and welcome! I am an avatar made from a single photo. I can talk, and I can listen "
            "to you too. Tell me, how has your day been so far?")


def one_media_stream(sdp: str) -> str:
    """The answer with the avatar's audio and video in one MediaStream. aiortc gives every sender a stream
    of its own, and a browser only lip-syncs tracks of the same stream (RTCP sender reports map both
    onto one clock); without this the voice plays ~0.1 s after the picture."""
    streams = re.findall(r"^a=msid:(\S+) ", sdp, flags=re.M)
    if not streams:
        return sdp
    return re.sub(r"msid:\S+ ", f"msid:{streams[0]} ", sdp)


@dataclass
class BotConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    portrait: str | None = None      # None: the built-in astronaut
    checkpoint: str | None = None    # None: the built-in default model
    nfe: int = 4
    output_size: int | None = 512
    # 5-frame blocks (0.2 s) run the same weights as the default 10 and halve how long the avatar takes to
    # react, to the user and to a barge-in; the output can then run 0.5 s behind real time.
    block_size: int | None = 5
    threads: int | None = None       # torch threads; None: leave as is
    greeting: str | None = GREETING
    script: tuple[str, ...] = DEFAULT_SCRIPT
    # Silero VAD: speech this long (at this confidence) starts a user turn and interrupts the bot; it
    # answers ~0.25 s after the first syllable. Silence this long ends the turn: Pipecat's default 0.8 s,
    # since at 0.6 s a pause after "Wait, wait," once ended the user's turn (1 of 9 browser-test runs).
    vad_confidence: float = 0.6
    vad_start_s: float = 0.1
    vad_stop_s: float = 0.8
    avatar: AvatarServiceConfig = field(default_factory=lambda: AvatarServiceConfig(playout_delay_s=0.5))
    max_bots: int = 2


@dataclass
class Agent:
    """What sits between the avatar's listener and the avatar: speech in, speech (TTS frames) out."""

    processors: list[FrameProcessor]
    after_output: list[FrameProcessor] = field(default_factory=list)  # e.g. an assistant context aggregator
    greet: Callable | None = None  # async fn(text) the bot calls when the user connects


def offline_agent(cfg: BotConfig) -> Agent:
    """Silero VAD + a scripted agent + eSpeak NG: no network, no downloads."""
    vad = VADProcessor(vad_analyzer=SileroVADAnalyzer(params=VADParams(
        confidence=cfg.vad_confidence, start_secs=cfg.vad_start_s, stop_secs=cfg.vad_stop_s)))
    agent = ScriptedAgent(cfg.script)
    return Agent([vad, agent, EspeakTTSService()], greet=agent.say)


@dataclass
class BotRun:
    connection: SmallWebRTCConnection
    avatar: AvatarVideoService
    agent: Agent
    worker: PipelineWorker
    task: asyncio.Task | None = None


class BotServer:
    """The page, the signalling route and one Pipecat pipeline per connected browser."""

    def __init__(self, cfg: BotConfig, make_agent: Callable[[BotConfig], Agent] = offline_agent):
        self.cfg = cfg
        self.make_agent = make_agent
        self.bots: list[BotRun] = []

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", lambda _: web.FileResponse(PAGE))
        app.router.add_get("/api/health", lambda _: web.json_response({"ok": True, "bots": len(self.live())}))
        app.router.add_post("/api/offer", self.offer)
        app.on_shutdown.append(self.shutdown)
        return app

    def live(self) -> list[BotRun]:
        return [b for b in self.bots if b.task is not None and not b.task.done()]

    async def offer(self, request: web.Request) -> web.Response:
        if len(self.live()) >= self.cfg.max_bots:
            return web.json_response({"error": "busy", "message": "too many conversations"}, status=503)
        body = await request.json()
        connection = SmallWebRTCConnection(ice_servers=[])  # host candidates only: nothing leaves the machine
        await connection.initialize(sdp=body["sdp"], type=body["type"])
        bot = await self.start_bot(connection)
        self.bots.append(bot)
        answer = connection.get_answer()
        answer["sdp"] = one_media_stream(answer["sdp"])
        return web.json_response(answer)

    async def start_bot(self, connection: SmallWebRTCConnection) -> BotRun:
        cfg = self.cfg
        from avatar_forcing.stream.session import AvatarSession

        options = SessionOptions(nfe=cfg.nfe, output_size=cfg.output_size, block_size=cfg.block_size,
                                 threads=cfg.threads)
        # The engine is built before the transport so the video track gets the avatar's own frame size.
        session = await asyncio.to_thread(AvatarSession, cfg.checkpoint, cfg.portrait, options)
        height, width = frame_size(session)
        transport = SmallWebRTCTransport(webrtc_connection=connection, params=TransportParams(
            audio_in_enabled=True, audio_out_enabled=True, video_in_enabled=True, video_out_enabled=True,
            video_out_is_live=True, video_out_width=width, video_out_height=height, video_out_framerate=25))
        avatar = AvatarVideoService(session=session, config=cfg.avatar)
        agent = self.make_agent(cfg)
        pipeline = Pipeline([transport.input(), avatar.listener(), *agent.processors, avatar,
                             transport.output(), *agent.after_output])
        worker = PipelineWorker(pipeline, params=PipelineParams(audio_in_sample_rate=16000))
        bot = BotRun(connection, avatar, agent, worker)

        @transport.event_handler("on_client_connected")
        async def on_connected(_transport, _client):
            if agent.greet is not None and cfg.greeting:
                await agent.greet(cfg.greeting)

        @transport.event_handler("on_client_disconnected")
        async def on_disconnected(_transport, _client):
            await worker.cancel()

        async def run():
            runner = WorkerRunner(handle_sigint=False)
            await runner.add_workers(worker)
            await runner.run()

        bot.task = asyncio.create_task(run())
        return bot

    async def shutdown(self, _app=None) -> None:
        for bot in self.live():
            await bot.worker.cancel()
        for bot in self.bots:
            if bot.task is not None:
                await asyncio.wait([bot.task], timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--portrait", help="a photo with a face (default: the built-in astronaut)")
    parser.add_argument("--checkpoint", help="a model folder (default: the built-in model)")
    parser.add_argument("--nfe", type=int, default=4, help="denoising steps per block (quality vs CPU)")
    parser.add_argument("--size", type=int, default=512, help="longer side of the video in pixels")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    cfg = BotConfig(host=args.host, port=args.port, portrait=args.portrait, checkpoint=args.checkpoint,
                    nfe=args.nfe, output_size=args.size)
    print(f"open http://{cfg.host}:{cfg.port}/")
    web.run_app(BotServer(cfg).build(), host=cfg.host, port=cfg.port, print=None)


if __name__ == "__main__":
    main()

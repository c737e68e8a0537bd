"""AvatarVideoService: a Pipecat frame processor that gives a voice agent a talking and listening face.

    avatar = AvatarVideoService(portrait="me.jpg", options=SessionOptions(nfe=4, output_size=512))
    pipeline = Pipeline([transport.input(), avatar.listener(), stt, user_aggregator, llm, tts,
                         avatar, transport.output(), assistant_aggregator])

* In: the agent's speech (TTSAudioRawFrame, with TTSStartedFrame / TTSStoppedFrame), the user's
  microphone (InputAudioRawFrame) and camera (UserImageRawFrame, asked for with UserImageRequestFrame the
  way Pipecat's vision services ask for it). The listener sits next to the input transport because the
  user aggregator consumes the user's pictures; without a listener the service takes them itself.
* Out: OutputImageRawFrame at 25 fps and the same speech as TTSAudioRawFrame, each frame's 40 ms of voice
  pushed together with its picture, `playout_delay_s` behind real time; the speech's start and stop
  frames come out with the audio they frame.
* InterruptionFrame (the user barges in): the queued speech is dropped, nothing more of it is heard, the
  speech already inside the engine is silenced and the frames generated from it close their mouth
  (mouth.py). EndFrame: the queued speech is played out, then the engine is stopped; CancelFrame: at once.
* The engine (tracking, generation, rendering) runs on a worker thread (runner.py); the event loop only
  moves 40 ms input frames in and finished frames out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputImageRawFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserImageRawFrame,
    UserImageRequestFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from avatar_forcing.integrations.pipecat.config import AvatarServiceConfig
from avatar_forcing.integrations.pipecat.runner import EngineRunner, InputFrame
from avatar_forcing.integrations.pipecat.voice import AvatarVoice, UserAudio, float_to_pcm16, pcm16_to_float
from avatar_forcing.motion.vector import FPS, MOTION_DIM, idx
from avatar_forcing.stream.options import SessionOptions

log = logging.getLogger(__name__)
JAW_OPEN = idx("jawOpen")
TICK_S = 0.01  # how often the clock task looks at real time (inputs are still taken per 40 ms frame)


@dataclass
class FrameRecord:
    """One emitted frame, for tests and benchmarks."""

    index: int
    time: float             # wall clock (time.time()) when it was pushed downstream
    shown: int              # the generated frame shown (index if ready in time, an earlier one if not)
    speaking: bool          # its 40 ms of avatar voice held speech
    rms: float              # of that voice
    jaw_open: float | None  # of the frame shown (rig motion only)
    onset_s: float | None = None  # where in its 40 ms the voice first exceeds 0.02 (speech onsets)


@dataclass
class ServiceStats:
    started: float | None = None          # wall clock of the session timeline's frame 0
    first_frame: float | None = None      # wall clock of the first picture pushed
    frames: deque = field(default_factory=lambda: deque(maxlen=3000))
    user_audio: deque = field(default_factory=lambda: deque(maxlen=3000))  # (wall clock, rms) per chunk
    interruptions: list = field(default_factory=list)  # (wall clock, first frame closed)
    repeated: int = 0                     # frames shown again because the right one was not ready
    image_requests: int = 0


class AvatarVideoService(FrameProcessor):
    def __init__(self, *, portrait: str | Path | np.ndarray | None = None,
                 checkpoint: str | Path | None = None,
                 options: SessionOptions | None = None, config: AvatarServiceConfig | None = None,
                 session=None, **kwargs):
        """`session`: an AvatarSession built beforehand (e.g. to size the transport from its frames,
        see `frame_size`); otherwise one is built from `checkpoint`, `portrait`, `options` at StartFrame,
        off the event loop. The service closes the session when the pipeline ends."""
        super().__init__(**kwargs)
        self.config = (config or AvatarServiceConfig()).validate()
        self._portrait, self._checkpoint, self._options = portrait, checkpoint, options
        self.session = session
        self.runner: EngineRunner | None = None
        self.stats = ServiceStats()
        self.stats.frames = deque(maxlen=self.config.log_frames)
        self._voice = AvatarVoice()
        self._user = UserAudio()
        self._image: np.ndarray | None = None  # newest camera picture not yet handed to the engine
        self._listener: AvatarListener | None = None
        self._t0 = 0.0           # monotonic time of timeline frame 0
        self._next_input = 0     # next timeline frame to take inputs for
        self._next_output = 0    # next timeline frame to emit
        self._audio: dict[int, object] = {}  # timeline frame -> its VoiceFrame, until emitted
        self._last_speech_frame = -1
        self._clock_task: asyncio.Task | None = None
        self._output_task: asyncio.Task | None = None
        self._last_image_time = 0.0
        self._last_request_time = 0.0
        self._request_backoff_until = 0.0
        self._running = False

    # --- wiring ---------------------------------------------------------------------------------
    def listener(self) -> AvatarListener:
        """The processor to put right after `transport.input()`: it takes the user's audio and camera."""
        if self._listener is None:
            self._listener = AvatarListener(self)
        return self._listener

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """(height, width) of the video, once the engine is up."""
        return None if self.runner is None else self.runner.size

    # --- frames ---------------------------------------------------------------------------------
    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self._start()
            await self.push_frame(frame, direction)
        elif isinstance(frame, EndFrame):
            await self._finish()
            await self.push_frame(frame, direction)
        elif isinstance(frame, CancelFrame):
            await self._stop()
            await self.push_frame(frame, direction)
        elif isinstance(frame, InterruptionFrame):
            self._interrupt()
            await self.push_frame(frame, direction)
        elif isinstance(frame, TTSAudioRawFrame) and direction == FrameDirection.DOWNSTREAM:
            self._voice.feed(pcm16_to_float(frame.audio, frame.num_channels), frame.sample_rate)
        elif isinstance(frame, (TTSStartedFrame, TTSStoppedFrame)) and direction == FrameDirection.DOWNSTREAM:
            self._voice.mark(frame)  # re-emitted with the audio it frames
        elif isinstance(frame, InputAudioRawFrame) and self._listener is None:
            self.on_user_audio(frame)
            await self.push_frame(frame, direction)
        elif isinstance(frame, UserImageRawFrame) and self._listener is None and self._is_camera(frame):
            self.on_user_image(frame)
        else:
            await self.push_frame(frame, direction)

    def on_user_audio(self, frame: InputAudioRawFrame) -> None:
        pcm = pcm16_to_float(frame.audio, frame.num_channels)
        self._user.append(pcm, frame.sample_rate)
        if not self.config.user_id and getattr(frame, "user_id", ""):
            self.config.user_id = frame.user_id
        self.stats.user_audio.append((time.time(), float(np.sqrt(np.mean(pcm**2))) if len(pcm) else 0.0))

    def on_user_image(self, frame: UserImageRawFrame) -> None:
        width, height = frame.size
        if frame.format not in (None, "RGB") or len(frame.image) != width * height * 3:
            return  # only RGB pictures are tracked (what Pipecat's transports deliver)
        self._image = np.frombuffer(frame.image, np.uint8).reshape(height, width, 3)
        self._last_image_time = time.monotonic()
        if not self.config.user_id and frame.user_id:
            self.config.user_id = frame.user_id

    def _is_camera(self, frame: UserImageRawFrame) -> bool:
        source = frame.transport_source
        ours = frame.request is None or frame.request.text == _REQUEST_TAG
        return ours and source in (None, self.config.user_video_source)

    # --- lifecycle ------------------------------------------------------------------------------
    async def _start(self) -> None:
        if self._running:
            return
        if self.session is None:
            from avatar_forcing.stream.session import AvatarSession

            self.session = await asyncio.to_thread(AvatarSession, self._checkpoint, self._portrait,
                                                   self._options)
        cfg = self.config
        loop = asyncio.get_running_loop()
        backlog = cfg.playout_delay_s if cfg.max_backlog_s is None else cfg.max_backlog_s
        self.runner = EngineRunner(
            self.session, track_every=cfg.track_every, max_backlog_s=backlog,
            close_mouth_on_interrupt=cfg.close_mouth_on_interrupt, mouth_ramp_frames=cfg.mouth_ramp_frames,
            mouth_release_frames=cfg.mouth_release_frames, stamp_frames=cfg.stamp_frames,
            on_error=lambda message: loop.call_soon_threadsafe(self._engine_failed, message))
        self._t0 = time.monotonic()
        self.runner.start(self._t0)
        self._running = True
        self.stats.started = time.time()
        self._clock_task = self.create_task(self._clock(), "avatar-clock")
        self._output_task = self.create_task(self._output(), "avatar-output")

    async def _finish(self) -> None:
        """EndFrame: let the queued speech play out (bounded), then stop."""
        if self._running:
            deadline = time.monotonic() + self._voice.queued_seconds + self.config.playout_delay_s + 2.0
            while time.monotonic() < deadline and (
                    self._voice.queued_samples > 0 or self._next_output <= self._last_speech_frame):
                await asyncio.sleep(0.02)
        await self._stop()

    async def _stop(self) -> None:
        self._running = False
        for task in (self._clock_task, self._output_task):
            if task is not None:
                await self.cancel_task(task)
        self._clock_task = self._output_task = None
        if self.runner is not None:
            await asyncio.to_thread(self.runner.stop)
        if self.session is not None:
            self.session.close()

    async def cleanup(self):
        await super().cleanup()
        if self._running:
            await self._stop()

    def _engine_failed(self, message: str) -> None:
        self.create_task(self.push_error(f"the avatar engine failed: {message}", fatal=True))

    def _interrupt(self) -> None:
        """The user barged in: no more of the current speech is heard or lip-synced."""
        self._voice.clear()
        first = self._next_output
        for index in [i for i in self._audio if i >= first]:
            del self._audio[index]
        self._last_speech_frame = min(self._last_speech_frame, first - 1)
        if self.runner is not None:
            self.runner.interrupt(first)
        self.stats.interruptions.append((time.time(), first))

    # --- real time ------------------------------------------------------------------------------
    async def _clock(self) -> None:
        """Every 40 ms of real time, one input frame: user audio, avatar voice, the newest picture."""
        while True:
            due = int((time.monotonic() - self._t0) * FPS)
            while self._next_input <= due:
                index = self._next_input
                voice = self._voice.pull()
                if voice.speaking:
                    self._last_speech_frame = index
                self._audio[index] = voice
                image, self._image = self._image, None
                self.runner.submit(InputFrame(index, self._user.pull(), self._user.rate, voice.pcm,
                                              voice.rate, image))
                self._next_input += 1
            await self._maybe_request_image()
            await asyncio.sleep(TICK_S)

    async def _output(self) -> None:
        """Frame n leaves at t0 + playout_delay + n / 25: its picture and its 40 ms of voice together."""
        delay = self.config.playout_delay_s
        while True:
            wait = self._t0 + delay + self._next_output / FPS - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            # Late (a blocked loop): the voice of every missed frame still goes out, in order (the
            # transport paces it); only the newest picture is shown.
            late = int((time.monotonic() - self._t0 - delay) * FPS)
            while self._next_output < late:
                await self._emit(self._next_output, picture=False)
                self._next_output += 1
            await self._emit(self._next_output, picture=True)
            self._next_output += 1
            self.runner.next_shown = self._next_output

    async def _emit(self, index: int, picture: bool) -> None:
        voice = self._audio.pop(index, None)
        if voice is not None:
            for marker in voice.before:
                await self.push_frame(marker)
            if voice.speaking:
                await self.push_frame(TTSAudioRawFrame(float_to_pcm16(voice.pcm), voice.rate, 1))
            for marker in voice.after:
                await self.push_frame(marker)
        if not picture:
            return
        out, own = self.runner.output_at(index)
        if out is None:
            return  # nothing generated yet: the transport keeps its last picture
        height, width = out.rgb.shape[:2]
        await self.push_frame(OutputImageRawFrame(out.rgb.tobytes(), (width, height), "RGB"))
        now = time.time()
        if self.stats.first_frame is None:
            self.stats.first_frame = now
        self.stats.repeated += int(not own)
        jaw = float(out.motion[JAW_OPEN]) if out.motion.shape[-1] == MOTION_DIM else None
        rms = float(np.sqrt(np.mean(voice.pcm**2))) if voice is not None and voice.speaking else 0.0
        speaking = bool(voice is not None and voice.speaking)
        loud = np.flatnonzero(np.abs(voice.pcm) > 0.02) if speaking else ()
        onset = float(loud[0]) / voice.rate if len(loud) else None
        self.stats.frames.append(FrameRecord(index, now, out.index, speaking, rms, jaw, onset))
        self.runner.prune(index)

    async def _maybe_request_image(self) -> None:
        """Ask the input transport for the camera when no picture came for a while."""
        cfg = self.config
        if not cfg.request_user_video:
            return
        now = time.monotonic()
        interval = cfg.image_request_interval_s
        if now - self._last_image_time < interval or now - self._last_request_time < interval:
            return
        if now < self._request_backoff_until:
            return
        self._last_request_time = now
        request = UserImageRequestFrame(user_id=cfg.user_id, text=_REQUEST_TAG, append_to_context=False,
                                        video_source=cfg.user_video_source, result_callback=self._no_image)
        self.stats.image_requests += 1
        sender = self._listener if self._listener is not None else self
        await sender.push_frame(request, FrameDirection.UPSTREAM)

    async def _no_image(self, result) -> None:
        """The transport answered a request with an error (no camera): ask again only every 2 s."""
        if isinstance(result, dict) and result.get("error"):
            self._request_backoff_until = time.monotonic() + 2.0


# Marks the image requests this service makes, so their answers are taken here and not by the LLM context.
_REQUEST_TAG = "avatar-forcing:listen"


class AvatarListener(FrameProcessor):
    """Put right after `transport.input()`: passes the user's audio on (and gives the service a copy),
    takes the user's camera pictures (the service's own image requests are answered here)."""

    def __init__(self, service: AvatarVideoService, **kwargs):
        super().__init__(**kwargs)
        self.service = service

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        service = self.service
        if isinstance(frame, InputAudioRawFrame) and direction == FrameDirection.DOWNSTREAM:
            service.on_user_audio(frame)
        elif isinstance(frame, UserImageRawFrame) and service._is_camera(frame):
            service.on_user_image(frame)
            return
        await self.push_frame(frame, direction)

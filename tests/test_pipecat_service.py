"""AvatarVideoService with Pipecat's own test helper (pipecat.tests.utils.run_test) and the real engine.

The engine is the built-in default model at a small size (NFE 2, frames at most 320 px) with the
frame index stamped into each picture, so a test can tell which generated frame every picture is.
Skipped without the `pipecat` extra (pip install 'avatar-forcing[pipecat]').
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

pytest.importorskip("pipecat", reason="the Pipecat integration needs the extra: "
                                      "pip install 'avatar-forcing[pipecat]' (.ci/run installs it)")

from pipecat.frames.frames import (  # noqa: E402
    CancelFrame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputImageRawFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserImageRawFrame,
    UserImageRequestFrame,
)
from pipecat.tests.utils import SleepFrame, run_test  # noqa: E402

from avatar_forcing.integrations.pipecat import AvatarServiceConfig, AvatarVideoService  # noqa: E402
from avatar_forcing.integrations.pipecat.mouth import MouthClosure  # noqa: E402
from avatar_forcing.integrations.pipecat.stamp import read_stamp, stamp  # noqa: E402
from avatar_forcing.integrations.pipecat.voice import AvatarVoice, float_to_pcm16  # noqa: E402
from avatar_forcing.motion.vector import FPS  # noqa: E402
from avatar_forcing.stream.options import SessionOptions  # noqa: E402

pytestmark = pytest.mark.timeout(120)
RATE = 24000  # a typical TTS rate: the service keeps it for the output
CLOSED = 0.1  # jawOpen below this is a closed mouth


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    from avatar_forcing.audio.tts import synthesize

    text = "Hello there! It is really very nice to meet you today. How are you doing?"
    return np.asarray(synthesize(text, sample_rate=RATE).pcm, np.float32)


def make_service(**config) -> AvatarVideoService:
    cfg = AvatarServiceConfig(stamp_frames=True, playout_delay_s=0.6, **config)
    return AvatarVideoService(options=SessionOptions(nfe=2, output_size=320, threads=1), config=cfg)


def tts_frames(pcm: np.ndarray, chunk_s: float = 0.2) -> list:
    step = int(chunk_s * RATE)
    return ([TTSStartedFrame()] + [TTSAudioRawFrame(float_to_pcm16(pcm[i:i + step]), RATE, 1)
                                   for i in range(0, len(pcm), step)] + [TTSStoppedFrame()])


def run(service, frames, **kwargs):
    return asyncio.run(run_test(service, frames_to_send=frames, start_timeout=30, **kwargs))


def audio_seconds(frames) -> float:
    return sum(f.num_frames / f.sample_rate for f in frames if isinstance(f, TTSAudioRawFrame))


def test_speech_in_frames_and_audio_out_in_sync(speech):
    service = make_service(request_user_video=False)
    down, up = run(service, tts_frames(speech))  # EndFrame right after: the speech must still play out
    kinds = [type(f) for f in down]
    images = [f for f in down if isinstance(f, OutputImageRawFrame)]
    height, width = service.frame_size
    assert images and all(f.size == (width, height) and f.format == "RGB" for f in images)
    # all of the speech came out (the last frame padded to 40 ms), at the TTS's own rate
    assert abs(audio_seconds(down) - len(speech) / RATE) < 1 / FPS + 1e-6
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {RATE}
    # start and stop frame the audio: the transport's "bot speaking" matches what is heard
    first_audio = kinds.index(TTSAudioRawFrame)
    last_audio = len(kinds) - 1 - kinds[::-1].index(TTSAudioRawFrame)
    assert kinds.index(TTSStartedFrame) < first_audio < last_audio < kinds.index(TTSStoppedFrame)
    # each picture leaves right after the 40 ms of voice of its own frame (the stamp tells the frame)
    speaking = sorted(r.index for r in service.stats.frames if r.speaking)
    heard, checked = 0, 0
    for f in down:
        if isinstance(f, TTSAudioRawFrame):
            heard += 1
        elif isinstance(f, OutputImageRawFrame):
            shown = read_stamp(np.frombuffer(f.image, np.uint8).reshape(height, width, 3))
            assert heard == int(np.searchsorted(speaking, shown, side="right"))
            checked += 1
    assert checked == len(images)
    # the mouth moves while the avatar speaks
    jaw = np.array([r.jaw_open for r in service.stats.frames if r.speaking])
    assert jaw.max() > 0.2 and jaw.std() > 0.03
    assert not up  # no camera requests when asked not to


def test_real_time_pacing_and_latency(speech):
    service = make_service(request_user_video=False)
    start = time.time()
    run(service, tts_frames(speech[: RATE * 2]) + [SleepFrame(1.0)])
    stats = service.stats
    times = np.array([r.time for r in stats.frames])
    # the first picture leaves one playout delay after the session start, then one every 40 ms
    assert 0.55 < stats.first_frame - stats.started < 0.9
    assert stats.started - start < 10
    assert abs(np.median(np.diff(times)) - 1 / FPS) < 0.005
    assert stats.repeated <= 2  # the engine keeps up at this size
    shown = [r.shown for r in stats.frames]
    assert shown == sorted(shown) and len(set(shown)) >= len(shown) - 2


def test_interruption_stops_speech_and_closes_mouth(speech):
    service = make_service(request_user_video=False)
    down, _ = run(service, tts_frames(speech) + [SleepFrame(1.6), InterruptionFrame(), SleepFrame(1.2)])
    (when, first_closed), = service.stats.interruptions
    records = list(service.stats.frames)
    # the voice stops with the frame shown at the interruption: nothing after it is heard
    heard = [r.index for r in records if r.speaking]
    assert heard and max(heard) < first_closed
    assert audio_seconds(down) < 1.6 + 0.2 and TTSStoppedFrame not in [type(f) for f in down]
    # before: talking; from the barge-in on the mouth closes within the ramp and stays closed
    jaw = {r.index: r.jaw_open for r in records}
    assert max(jaw[i] for i in range(first_closed) if i in jaw) > 0.2
    # (the engine may be inside a block's step when the barge-in comes: a few frames leave before their
    # mouth is closed; from then on it stays closed while the avatar listens)
    closed = next(r for r in records if r.index >= first_closed and r.jaw_open < CLOSED)
    assert closed.time - when < 0.4
    after = [r.jaw_open for r in records if r.index >= closed.index]
    assert len(after) > 15 and max(after) < CLOSED
    assert service.runner.stats.rerendered > 0


def test_user_camera_is_requested_and_tracked(astronaut):
    service = make_service(image_request_interval_s=0.2)
    face = np.ascontiguousarray(astronaut)
    user = [UserImageRawFrame(image=face.tobytes(), size=(face.shape[1], face.shape[0]), format="RGB",
                              user_id="user-1")]
    mic = [InputAudioRawFrame(bytes(2 * 320), 16000, 1) for _ in range(10)]
    frames = [SleepFrame(0.5)] + [x for _ in range(8) for x in (*user, *mic, SleepFrame(0.1))]
    down, up = run(service, frames + [SleepFrame(0.5)])
    assert up and all(isinstance(f, UserImageRequestFrame) for f in up)
    assert up[0].video_source == "camera" and up[0].append_to_context is False
    assert service.config.user_id == "user-1"  # learned from the user's frames, for later requests
    assert service.runner.stats.tracked >= 3
    assert not any(isinstance(f, UserImageRawFrame) for f in down)  # taken here, not passed to the LLM
    assert sum(isinstance(f, InputAudioRawFrame) for f in down) == len(mic) * 8  # the mic is passed on


def test_cancel_stops_at_once(speech):
    service = make_service(request_user_video=False)
    start = time.monotonic()
    run(service, tts_frames(speech) + [SleepFrame(0.8), CancelFrame()], send_end_frame=False)
    assert time.monotonic() - start < len(speech) / RATE  # did not wait for the speech to play out
    assert not service.runner.alive and service.session._closed


def test_end_of_pipeline_releases_the_engine(speech):
    service = make_service(request_user_video=False)
    run(service, tts_frames(speech[: RATE]))
    assert not service.runner.alive and service.runner.stats.error is None
    assert service.session._closed


def test_voice_queue_keeps_markers_with_their_audio():
    voice = AvatarVoice()
    start, stop = TTSStartedFrame(), TTSStoppedFrame()
    voice.mark(start)
    voice.feed(np.ones(int(RATE * 0.1), np.float32) * 0.5, RATE)  # 2.5 frames
    voice.mark(stop)
    pulled = [voice.pull() for _ in range(4)]
    assert pulled[0].before == [start] and pulled[0].speaking
    assert pulled[2].after == [stop] and pulled[2].speaking and not pulled[3].speaking
    assert all(len(p.pcm) == RATE // FPS for p in pulled)


def test_mouth_closure_ramps_in_and_releases():
    closure = MouthClosure(first_frame=10, speech_until=20, ramp=3, release=5)
    weights = [closure.weight(i) for i in range(8, 28)]
    assert weights[:2] == [0.0, 0.0] and 0 < weights[2] < weights[3] < weights[4] == 1.0
    assert closure.weight(20) == 1.0 and 0 < closure.weight(22) < 1 and closure.weight(25) == 0.0


def test_stamp_round_trip():
    rgb = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
    for index in (0, 1, 257, 40000):
        assert read_stamp(stamp(rgb, index)) == index


def test_a_barge_in_jumps_a_backlog_of_due_blocks(speech):
    """Six blocks are due at once (a loaded machine); the user barges in while the first is generated:
    the worker takes the barge-in before the next step, not after the whole backlog."""
    from avatar_forcing.integrations.pipecat.runner import EngineRunner, InputFrame
    from avatar_forcing.stream.session import AvatarSession

    session = AvatarSession(None, None, SessionOptions(nfe=2, output_size=320, threads=1))
    runner = EngineRunner(session)
    real_step, closed_before_step = session.step, []

    def step():
        closed_before_step.append(runner._closure is not None)
        block = real_step()
        if len(closed_before_step) == 1:
            runner.interrupt(first_frame=5)
        return block

    session.step = step
    pcm = speech[: 30 * RATE // FPS]
    n = RATE // FPS
    for i in range(30):
        runner.submit(InputFrame(i, np.zeros(640, np.float32), 16000, pcm[i * n:(i + 1) * n], RATE, None))
    runner.start(time.monotonic() + 10.0)  # the timeline starts later: nothing is shed as late
    deadline = time.monotonic() + 60
    while runner.generated < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.stop()
    session.close()
    assert runner.stats.error is None and runner.generated >= 30
    assert closed_before_step[:2] == [False, True]  # the second step already ran with the mouth closing
    assert runner.stats.silenced_s > 0 and runner.stats.rerendered > 0

"""The real-time budget: the playout clock (no repeats, the voice never ahead of its picture), the
degradation ladder, and the live NFE switch. No WebRTC here: the tracks are driven directly."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from avatar_forcing.serve.config import DegradeStep, RealtimeConfig
from avatar_forcing.serve.media import AvatarAudioTrack, AvatarVideoTrack, MediaMetrics
from avatar_forcing.serve.realtime import RealtimeController
from avatar_forcing.serve.timeline import OutputFrame, Released, Timeline

FPS, SR, SPF = 25, 16000, 640


def frame_audio(index: int) -> np.ndarray:
    """Frame ``index``'s voice is the constant (index + 1) / 1000: where a sample came from is readable."""
    return np.full(SPF, (index + 1) / 1000, np.float32)


def output(index: int, shown: bool = True) -> OutputFrame:
    rgb = np.full((8, 8, 3), index % 256, np.uint8) if shown else None
    return OutputFrame(rgb=rgb, block=index // 10, block_start=index // 10 * 10, ready=time.monotonic(),
                       motion=np.zeros(58, np.float32), shown=shown)


def play(produce, frames: int, delay_s: float = 0.05, realtime: RealtimeConfig | None = None):
    """Run both tracks on a timeline that ``produce(timeline, index)`` fills from a thread-free task.
    Returns (video frames sent, [(frame of each audio packet or None for silence, time)], metrics, tl)."""
    rt = realtime or RealtimeConfig()

    async def main():
        tl = Timeline(start=time.monotonic(), fps=FPS, playout_delay_s=delay_s)
        for i in range(frames + 20):
            tl.avatar_audio[i] = frame_audio(i)
            tl.arrival[i] = tl.start + i / FPS
        metrics = MediaMetrics()
        video = AvatarVideoTrack(tl, metrics, (8, 8), rt)
        audio = AvatarAudioTrack(tl, metrics, SR, rt)
        producer = asyncio.ensure_future(produce(tl))
        sent, packets = [], []

        async def pull_video():
            while len(sent) < frames:
                frame = await video.recv()
                sent.append(int(frame.to_ndarray(format="rgb24")[0, 0, 0]))

        async def pull_audio():
            while len(sent) < frames:
                frame = await audio.recv()
                pcm = frame.to_ndarray().reshape(-1).astype(np.float32) / 32767
                level = float(np.abs(pcm).max())
                packets.append((round(level * 1000) - 1 if level > 1e-4 else None, tl.released_upto))

        await asyncio.wait_for(asyncio.gather(pull_video(), pull_audio()), timeout=60)
        producer.cancel()
        return sent, packets, metrics, tl

    return asyncio.run(main())


def test_late_frames_are_waited_for_never_repeated_and_the_voice_waits_too():
    async def produce(tl):  # frame 10 comes at >= 0.8 s, due at 0.45 s: the clock must slip, nothing repeat
        for i in range(40):
            if i == 10:
                await asyncio.sleep(0.6)
            tl.put_output(i, output(i))
            await asyncio.sleep(0.5 / FPS)

    sent, packets, metrics, tl = play(produce, frames=30)
    assert sent == list(range(30))  # each frame once, in order: no repeats
    assert metrics.video_repeated == 0 and metrics.slips >= 1
    assert tl.delay_s > 0.05 + 0.3  # the clock slipped by (at least) the wait
    # the voice never ran ahead of the lips: every packet's frame was released when it was sent
    assert all(frame < released for frame, released in packets if frame is not None)
    assert metrics.audio_waited > 0  # silence was sent while the picture was late
    voiced = [frame for frame, _ in packets if frame is not None]
    assert voiced == sorted(voiced) and set(range(25)) <= set(voiced)  # the voice is delayed, not lost


def test_shed_frames_are_skipped_by_picture_and_voice_alike():
    async def produce(tl):
        for i in range(40):
            if 5 <= i < 10:
                tl.mark_shed([i])
            else:
                tl.put_output(i, output(i))
            await asyncio.sleep(0.2 / FPS)

    sent, packets, metrics, _ = play(produce, frames=20)
    assert sent == [i for i in range(25) if not 5 <= i < 10][:20]
    voiced = {frame for frame, _ in packets if frame is not None}
    assert not voiced & set(range(5, 10)) and metrics.video_skipped == 5


def test_half_rate_holds_frames_but_plays_their_voice():
    async def produce(tl):
        for i in range(60):
            tl.put_output(i, output(i, shown=i % 2 == 0))
            await asyncio.sleep(0.2 / FPS)

    sent, packets, _, _ = play(produce, frames=10)
    assert sent == list(range(0, 20, 2))
    voiced = {frame for frame, _ in packets if frame is not None}
    assert {1, 3, 5, 7} <= voiced  # held frames keep their voice


def test_delay_shrinks_back_in_silence_only():
    rt = RealtimeConfig(catchup_every=1, catchup_ready_frames=1, catchup_margin_s=0.0)

    async def produce(tl):
        tl.delay_s = 0.3  # as after a slip
        for i in range(80):
            tl.put_output(i, output(i))
        for i in range(20, 80):  # speech up to frame 20, then silence
            tl.avatar_audio[i] = np.zeros(SPF, np.float32)
        await asyncio.sleep(10)

    sent, _, metrics, tl = play(produce, frames=30, delay_s=0.05, realtime=rt)
    assert sent[:20] == list(range(20))  # no frame of speech was skipped
    assert metrics.video_caught_up > 0 and tl.delay_s < 0.3


def test_controller_steps_down_under_load_and_back_up_when_calm():
    steps = (DegradeStep("a", 10, 2, 1), DegradeStep("b", 5, 4, 1), DegradeStep("c", 3, 6, 2))
    cfg = RealtimeConfig(steps=steps, degrade_rtf=0.8, recover_rtf=0.4, smoothing=1.0, hold_blocks=1,
                         recover_blocks=3)
    c = RealtimeController(cfg)
    c.observe(0.1, 0.4, late=False)  # the first block is the hold: never judged
    assert c.step.name == "a"
    assert [c.observe(0.45, 0.4, late=False) for _ in range(4)] == [True, False, True, False]
    assert c.step.name == "c" and c.state.worst_step == 2
    assert c.observe(0.45, 0.4, late=False) is False  # the bottom rung: nowhere to go
    calm = [c.observe(0.1, 0.4, late=False) for _ in range(4)]
    assert calm == [False, False, True, False] and c.step.name == "b"
    busy = 0.25  # rtf 0.625: neither calm nor overloaded, only the slips count
    c.observe(busy, 0.4, late=True)
    assert c.step.name == "b"  # one block with a slip is a hiccup: the playout delay absorbs it
    c.observe(busy, 0.4, late=False)
    c.observe(busy, 0.4, late=True)
    assert c.step.name == "b"  # slips in blocks that are not consecutive are hiccups too
    c.observe(busy, 0.4, late=True)
    assert c.step.name == "c"  # slips in late_blocks blocks in a row step down, whatever the factor says


def test_a_fractional_stride_draws_frames_evenly():
    from avatar_forcing.serve.realtime import frame_shown

    assert [i for i in range(9) if frame_shown(i, 1.5)] == [0, 2, 3, 5, 6, 8]  # two in three, evenly
    assert [i for i in range(6) if frame_shown(i, 2)] == [0, 2, 4]
    assert all(frame_shown(i, 1) for i in range(6))
    for stride in (1, 1.5, 2, 3):
        assert sum(frame_shown(i, stride) for i in range(600)) == pytest.approx(600 / stride, abs=1)


def test_steps_are_valid():
    for step in RealtimeConfig().steps:
        assert step.nfe >= 1 and step.track_every >= 1 and step.frame_stride >= 1
    strides = [step.frame_stride for step in RealtimeConfig().steps]
    assert strides == sorted(strides)  # each step down sends no more frames than the one above
    with pytest.raises(ValueError):
        RealtimeController(RealtimeConfig(steps=()))


@pytest.mark.slow  # builds the (untrained, tiny) real engine
def test_nfe_switches_live_on_the_real_engine():
    import warnings

    from avatar_forcing.serve.worker import set_nfe
    from avatar_forcing.stream.options import SessionOptions
    from avatar_forcing.stream.session import AvatarSession

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = AvatarSession(options=SessionOptions(render=False, random_init=True, nfe=10),
                               reference_motion=np.zeros(58, np.float32))
    pcm = np.full(engine.block_size * SPF * 2, 0.01, np.float32)
    engine.push_user_audio(pcm, SR)
    engine.push_avatar_audio(pcm, SR)
    assert engine.step() is not None and len(engine.generator.times) == 10
    assert set_nfe(engine, 4)
    assert engine.generator.cfg.nfe == 4 and len(engine.generator.times) == 4
    block = engine.step()  # the cache made at nfe 10 serves the next block at nfe 4
    assert block is not None and np.isfinite(block.motion).all()
    engine.close()


def test_released_kinds_are_distinct():
    assert len({Released.SHOWN, Released.HELD, Released.SKIPPED}) == 3

"""AvatarSession: null conditions, chunking invariance, the cache against the reference path, long
sessions, bounded memory and bad input. Motion only (render=False) with a small random model."""

import warnings

import numpy as np
import pytest
import torch

from avatar_forcing.audio.features import log_mel
from avatar_forcing.errors import CheckpointError, InputError
from avatar_forcing.model.config import SamplerConfig, model_preset
from avatar_forcing.model.dfot import DFoT
from avatar_forcing.model.streaming import generate_offline
from avatar_forcing.motion.neutral import OnlineRest, clip_relative
from avatar_forcing.motion.vector import MotionStats
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession

SR = 16000


def small_model(seed: int = 0, **changes) -> DFoT:
    """A small DFoT with every weight random (the zero-initialised output layers too), so its motion
    really depends on the conditions."""
    torch.manual_seed(seed)
    cfg = dict(width=32, depth=2, heads=2, cond_dim=16, cond_heads=2, time_embed_dim=32)
    model = DFoT(model_preset("tiny", **{**cfg, **changes})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def make_session(model=None, **options) -> AvatarSession:
    torch.set_num_threads(1)
    opts = SessionOptions(**{"render": False, "nfe": 2, "start_at_rest": False, **options})
    stats = MotionStats(np.full(58, 0.2, np.float32), np.full(58, 0.5, np.float32))
    return AvatarSession(model=model or small_model(), stats=stats, options=opts,
                         reference_motion=np.zeros(58, np.float32))


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    envelope = (np.sin(np.arange(n) / SR * 2 * np.pi * 3) > 0).astype(np.float32)
    return (rng.uniform(-0.5, 0.5, n) * envelope).astype(np.float32)


def drain(session: AvatarSession) -> list:
    blocks = []
    while (block := session.step()) is not None:
        blocks.append(block)
    return blocks


def motion_of(blocks) -> np.ndarray:
    return np.concatenate([b.motion for b in blocks])


@pytest.mark.parametrize("clean_context,overlap", [(True, 0), (False, 0), (True, 2)])
def test_session_equals_offline_reference_path(clean_context, overlap):
    """Same noise, same conditions: the session (rolling cache, rebased positions, its own buffering and
    streaming features) gives the motion of the whole-sequence reference path (full history, absolute
    positions) of the model; with an overlap, a block waits for the inputs of the frames past it."""
    model = small_model()
    session = make_session(model, clean_context=clean_context, overlap=overlap)
    avatar, user = speech(2.0, 1), speech(2.0, 2)
    user_motion = np.random.default_rng(3).uniform(0, 1, (50, 58)).astype(np.float32)
    session.push_avatar_audio(avatar, SR)
    session.push_user_audio(user, SR)
    session.push_user_motion(user_motion)
    streamed = motion_of(drain(session))
    frames = 50 - (10 if overlap else 0)  # the last block waits for inputs past the end (or finish())
    assert streamed.shape == (frames, 58)
    stats, ref = session.stats, session.stats.normalize(np.zeros(58, np.float32))
    for rolling in (True, False):
        sampler = SamplerConfig(nfe=2, first_block="short", history_noise=session.options.history_noise,
                                clean_context=clean_context, w_audio=session.options.cfg_audio,
                                w_user=session.options.cfg_user, overlap=overlap)
        offline = generate_offline(model, sampler, log_mel(avatar),
                                   log_mel(user), stats.normalize(user_motion), torch.as_tensor(ref),
                                   seed=0, rolling=rolling)[:, :frames]
        # the session renders the head relative to its running rest (SessionOptions.recentre_pose)
        expected = OnlineRest().relative_pose(clip_relative(stats.denormalize(offline[0].numpy())))
        np.testing.assert_allclose(streamed, expected, atol=1e-4)


def test_chunking_with_interleaved_steps():
    avatar, user = speech(1.6, 1), speech(1.6, 2)
    whole = make_session()
    whole.push_avatar_audio(avatar, SR)
    whole.push_user_audio(user, SR)
    expected = motion_of(drain(whole))

    pieces = make_session()
    rng = np.random.default_rng(0)
    stereo_int16 = (np.stack([user, user], axis=1) * 32767).astype(np.int16)
    blocks, pos = [], 0
    while pos < len(user):
        step = int(rng.integers(1, 3000))
        pieces.push_avatar_audio(avatar[pos: pos + step], SR)
        pieces.push_user_audio(stereo_int16[pos: pos + step], SR)
        pos += step
        if (block := pieces.step()) is not None:
            blocks.append(block)
    blocks += drain(pieces)
    np.testing.assert_allclose(motion_of(blocks), expected, atol=2e-3)  # int16 quantisation of the user


def test_resampled_input_is_chunk_invariant():
    rng = np.random.default_rng(1)
    avatar = speech(1.2, 1)
    avatar_48k = np.repeat(avatar, 3)  # any 48 kHz signal
    runs = []
    for chunking in ([len(avatar_48k)], rng.integers(1, 5000, 200).tolist()):
        session = make_session()
        pos = 0
        for size in chunking:
            session.push_avatar_audio(avatar_48k[pos: pos + size], 48000)
            pos += size
        session.finish()
        runs.append(motion_of(drain(session)))
    assert len(runs[0]) == 30
    np.testing.assert_allclose(runs[0], runs[1], atol=1e-5)


def test_talking_listening_audio_only_and_idle_sessions():
    talking = make_session()
    talking.push_avatar_audio(speech(0.8), SR)
    blocks = drain(talking)
    assert len(blocks) == 2 and not any(b.has_user for b in blocks)

    listening = make_session()
    listening.push_user_audio(speech(0.8), SR)
    blocks = drain(listening)
    assert len(blocks) == 2 and all(b.has_user for b in blocks)
    assert all(b.avatar_audio.shape == (6400,) and not b.avatar_audio.any() for b in blocks)

    audio_only = make_session()  # no webcam: user motion is a null condition, the user's voice is not
    audio_only.push_user_audio(speech(0.8), SR)
    audio_only.push_avatar_audio(speech(0.4), SR)
    blocks = drain(audio_only)
    assert len(blocks) == 2 and blocks[0].avatar_audio.any() and not blocks[1].avatar_audio.any()

    idle = make_session()  # nothing at all: a wall clock still makes frames
    assert idle.step() is None
    idle.advance_to(1.0)
    assert len(drain(idle)) == 2
    for blocks in (drain(talking), drain(listening)):
        assert blocks == []  # nothing more is due


@pytest.mark.parametrize("overlap", [0, 2])
def test_avatar_audio_is_returned_with_its_frames(overlap):
    """Each sample comes back once, with its frame, also when blocks look past their end (overlap)."""
    session = make_session(overlap=overlap)
    audio = speech(1.0)
    session.push_avatar_audio(audio, SR)
    session.finish()
    blocks = drain(session)
    assert [b.start_frame for b in blocks] == [0, 10, 20] and all(len(b) == 10 for b in blocks)
    out = np.concatenate([b.avatar_audio for b in blocks])
    assert np.array_equal(out[: len(audio)], audio) and not out[len(audio):].any()


def test_reset_reproduces_and_sessions_are_independent():
    model = small_model()
    a, b = make_session(model), make_session(model)
    a.push_avatar_audio(speech(0.8), SR)
    first = motion_of(drain(a))
    b.push_avatar_audio(speech(0.8, seed=5), SR)  # another session on the same weights, interleaved
    drain(b)
    a.reset()
    a.push_avatar_audio(speech(0.8), SR)
    np.testing.assert_array_equal(motion_of(drain(a)), first)


def test_full_first_block():
    session = make_session(first_block="full")
    session.push_avatar_audio(speech(2.4), SR)
    blocks = drain(session)
    assert [len(b) for b in blocks] == [50, 10]


@pytest.mark.slow
def test_long_session_past_1024_positions_with_constant_buffers():
    """Over 1100 blocks (11000 frames: ten times the authors' 1024-entry RoPE table), simulated fast."""
    model = small_model(width=16, depth=1, heads=2, cond_dim=8, time_embed_dim=16)
    session = make_session(model, nfe=1)
    chunk = speech(0.4)
    motion_rows = np.zeros((10, 58), np.float32)
    sizes, last = [], None
    for i in range(1100):
        session.push_user_audio(chunk, SR)
        session.push_avatar_audio(chunk, SR)
        session.push_user_motion(motion_rows)
        last = session.step()
        assert last is not None
        if i in (50, 1099):
            sizes.append(session.buffer_sizes())
    assert last.start_frame == 10990 and np.isfinite(last.motion).all()
    assert sizes[0] == sizes[1]
    assert sizes[1]["cached_frames"] == model.cfg.cache_frames and sizes[1]["max_position"] < 64


def test_memory_bounded_with_live_pushes():
    session = make_session()
    rng = np.random.default_rng(0)
    sizes = []
    for i in range(60):
        for _ in range(20):  # 20 ms mic chunks at 48 kHz stereo, TTS in 24 kHz bursts
            session.push_user_audio(rng.uniform(-0.1, 0.1, (960, 2)).astype(np.float32), 48000)
        session.push_avatar_audio(rng.uniform(-0.1, 0.1, 9600).astype(np.float32), 24000)
        session.push_user_motion(np.zeros((10, 58), np.float32))
        session.step()
        if i in (20, 59):
            sizes.append(session.buffer_sizes())
    assert sizes[0] == sizes[1]


def test_huge_gap_is_skipped_not_generated():
    session = make_session()
    session.push_user_audio(speech(0.4), SR, timestamp=0.0)
    session.push_user_audio(speech(0.4), SR, timestamp=600.0)  # ten minutes later
    blocks = drain(session)
    assert len(blocks) <= 3 and blocks[-1].start_frame == 600 * 25
    assert session.skipped_frames > 14000


@pytest.mark.parametrize("push", [
    lambda s: s.push_user_audio(np.array([0.1, np.nan], np.float32), SR),
    lambda s: s.push_avatar_audio(np.full(100, np.inf), SR),
    lambda s: s.push_user_audio(np.array(["x"] * 10), SR),
    lambda s: s.push_avatar_audio(np.zeros(100, np.float32), 0),
    lambda s: s.push_avatar_audio(np.zeros(100, np.float32), 16000.0),
    lambda s: s.push_user_motion(np.zeros((3, 57), np.float32)),
    lambda s: s.push_user_motion(np.full((3, 58), np.nan, np.float32)),
    lambda s: s.push_user_frame(np.zeros((64, 64, 3), np.float32), 0.0),
    lambda s: s.push_user_frame(np.zeros((64, 64), np.uint8), 0.0),
    lambda s: s.push_user_frame(np.zeros((64, 64, 3), np.uint8), -1.0),
    lambda s: s.push_user_audio(np.zeros(10, np.float32), SR, timestamp=float("nan")),
    lambda s: s.advance_to(float("inf")),
])
def test_bad_pushes_raise_input_error(push):
    session = make_session()
    with pytest.raises(InputError):
        push(session)
    session.push_avatar_audio(speech(0.4), SR)  # still usable afterwards
    assert session.step() is not None


def test_webcam_frames_out_of_order_and_without_face(no_face_image):
    session = make_session()
    frame = np.ascontiguousarray(no_face_image[:128, :128])
    session.push_user_frame(frame, 0.0)
    session.push_user_frame(frame, 0.2)
    session.push_user_frame(frame, 0.1)  # out of order: ignored
    session.push_user_audio(speech(0.4), SR)
    block = session.step()
    assert block is not None and session.dropped_user_frames == 1
    session.close()
    with pytest.raises(InputError):
        session.push_user_audio(speech(0.1), SR)


def test_untrained_model_is_never_silent(tmp_path, monkeypatch):
    import avatar_forcing.stream.session as session_module

    monkeypatch.setattr(session_module, "DEFAULT_CHECKPOINT", tmp_path)  # as if no default model shipped
    with pytest.raises(CheckpointError, match="random_init"):
        AvatarSession(options=SessionOptions(render=False), reference_motion=np.zeros(58))
    with pytest.warns(UserWarning, match="UNTRAINED"):
        AvatarSession(options=SessionOptions(render=False, random_init=True), reference_motion=np.zeros(58))
    warnings.resetwarnings()


def test_silence_avatar_audio_stops_queued_speech_at_once():
    session = make_session()
    session.push_avatar_audio(speech(1.2, 4), SR)
    first = session.step()
    assert first is not None and np.abs(first.avatar_audio).max() > 0
    silenced = session.silence_avatar_audio()  # the user barges in
    assert silenced == pytest.approx(1.2 - len(first) / 25, abs=0.05)
    session.push_avatar_audio(speech(0.4, 5), SR)  # a new reply keeps its place after the silence
    session.finish()
    rest = [b.avatar_audio for b in iter(session.step, None)]
    tail = np.concatenate(rest)
    assert np.abs(tail[: int(silenced * SR)]).max() == 0 and np.abs(tail[int(silenced * SR):]).max() > 0


def test_session_starts_from_a_block_at_rest_in_its_past():
    """start_at_rest: before frame 0 the cache holds one block of the resting face (the photo as it is);
    the timeline is unchanged."""
    model = small_model()
    primed, plain = make_session(model, start_at_rest=True), make_session(model)
    gen = primed.generator
    cached = gen.mcfg.block_size - gen.mcfg.context  # the last 2 frames are the next block's offset frames
    assert len(gen.self_frames) == cached and len(plain.generator.self_frames) == 0
    rest = torch.as_tensor(primed.stats.normalize(np.zeros((2, 58), np.float32)))
    noise = (gen.context_latents[0] - (1 - primed.options.history_noise) * rest).std()  # rest + its noise
    assert 0 < noise < primed.options.history_noise * 1.5
    for session in (primed, plain):
        session.push_avatar_audio(speech(0.8, 1), SR)
        session.finish()
    a, b = motion_of(drain(primed)), motion_of(drain(plain))
    assert a.shape == b.shape == (20, 58)  # same timeline
    assert not np.allclose(a, b)  # the past changes what follows
    primed.reset()  # a reset starts at rest again
    assert len(primed.generator.self_frames) == cached

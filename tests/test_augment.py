"""The webcam/microphone corruption of the user side of training windows (data/augment.py)."""

import dataclasses

import numpy as np

from avatar_forcing.audio.features import LogMelConfig, log_mel
from avatar_forcing.data.augment import UserAugmentConfig, augment_audio, augment_user_motion
from avatar_forcing.motion.vector import MOTION_DIM, NUM_BLENDSHAPES, idx


def test_motion_keeps_the_expression_and_adds_what_a_tracker_adds():
    rng = np.random.default_rng(0)
    motion = np.zeros((50, MOTION_DIM), np.float32)
    motion[20:40, idx("mouthSmileLeft")] = 0.6
    cfg = dataclasses.replace(UserAugmentConfig(), hold_prob=1.0, hold_every=(2, 2))
    out = augment_user_motion(motion, rng, cfg)
    assert out.shape == motion.shape and out.dtype == np.float32
    smile = out[:, idx("mouthSmileLeft")]
    assert smile[25:35].mean() - smile[:15].mean() > 0.6 * cfg.gain[0] - 0.1  # the smile survives
    assert np.abs(out[:, :NUM_BLENDSHAPES]).max() <= 1.0
    assert (out[1:] == out[:-1]).all(axis=1).sum() >= 24  # every 2nd frame is a held copy
    assert out[:, idx("pitch")].std() > 0  # jitter and offset move a still head


def test_motion_augmentation_is_a_function_of_the_generator():
    motion = np.random.default_rng(1).normal(0, 0.1, (50, MOTION_DIM)).astype(np.float32)
    a = augment_user_motion(motion, np.random.default_rng(5), UserAugmentConfig())
    b = augment_user_motion(motion, np.random.default_rng(5), UserAugmentConfig())
    c = augment_user_motion(motion, np.random.default_rng(6), UserAugmentConfig())
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_audio_raises_silence_to_a_noise_floor_and_keeps_speech_on_top():
    mel = LogMelConfig()
    rate = mel.sample_rate
    t = np.arange(rate) / rate
    pcm = np.concatenate([np.zeros(rate), 0.3 * np.sin(2 * np.pi * 220 * t)]).astype(np.float32)
    feats = log_mel(pcm)
    cfg = dataclasses.replace(UserAugmentConfig(), gain_db=(0.0, 0.0), band_limit_prob=0.0)
    out = augment_audio(feats, np.random.default_rng(0), cfg)
    half = len(feats) // 2
    db = out * mel.db_scale + mel.db_center
    assert db[:half].mean() > cfg.noise_db[0] - 10  # digital silence became a microphone's hiss
    assert db[:half].mean() < cfg.noise_db[1] + 5
    assert out[half:].max() > out[:half].max() + 0.3  # the voice stands above it
    assert np.abs(out[half:].max() - feats[half:].max()) < 0.05  # and keeps its level


def test_loader_corrupts_the_user_side_and_the_avatar_voice_reproducibly(tmp_path):
    from avatar_forcing.data.loader import LoaderConfig, TrainLoader
    from tests.train_helpers import make_corpus

    corpus = make_corpus(tmp_path / "corpus")

    def first(augment):
        cfg = LoaderConfig(window=50, batch_size=4, seed=3, augment=augment)
        return next(iter(TrainLoader(corpus, cfg)))

    user_only = UserAugmentConfig(prob=1.0, avatar_audio_prob=0.0)
    clean, aug, again = first(None), first(user_only), first(user_only)
    for key in ("motion", "avatar_audio"):  # the target and the avatar's voice untouched
        assert np.array_equal(clean[key].numpy(), aug[key].numpy())
    voiced = first(UserAugmentConfig(prob=1.0, avatar_audio_prob=1.0))
    assert np.array_equal(clean["motion"].numpy(), voiced["motion"].numpy())  # the target never changes
    assert not np.array_equal(clean["avatar_audio"].numpy(), voiced["avatar_audio"].numpy())
    for key in ("user_motion", "user_audio"):
        assert not np.array_equal(clean[key].numpy(), aug[key].numpy())
        assert np.array_equal(aug[key].numpy(), again[key].numpy())


def test_a_room_fills_the_pauses_after_the_voice():
    from avatar_forcing.data.augment import reverberate

    power = np.full((200, 80), 1e-10)
    power[:50] = 1e-4  # 0.5 s of voice, then silence
    cfg = dataclasses.replace(UserAugmentConfig(), reverb_t60_s=(0.5, 0.5), reverb_wet=(0.5, 0.5))
    out = reverberate(power, np.random.default_rng(0), cfg)
    tail_db = 10 * np.log10(out[[55, 75], 0] / 1e-4)
    assert -30 < tail_db[0] < -3 and tail_db[1] < tail_db[0] - 15  # a tail that decays ~60 dB / 0.5 s
    assert np.allclose(out[60:], out[60:, :1])  # every band alike


def test_a_music_bed_sits_below_the_voice_in_harmonic_notes():
    from avatar_forcing.data.augment import music_bed

    rng = np.random.default_rng(0)
    power = np.full((400, 80), 1e-10)
    power[::4] = 1e-4  # the voice's loud hops
    cfg = dataclasses.replace(UserAugmentConfig(), music_snr_db=(10.0, 10.0))
    music = music_bed(power, rng, cfg)
    assert music.shape == power.shape and (music >= 0).all()
    snr = 10 * np.log10(np.percentile(power.sum(1), 90) / music.sum(1).mean())
    assert abs(snr - 10.0) < 0.5
    peaks = (music[200] > 0.2 * music[200].max()).sum()
    assert 2 <= peaks <= 30  # a few partials, not a noise floor
    assert (music[1:] != music[:-1]).any(axis=1).sum() >= 3  # the notes change

"""Noise suppression on log-mel features (audio/denoise.py) and its place in training and sessions."""

import numpy as np
import pytest

from avatar_forcing.audio.denoise import DenoiseConfig, LogMelDenoiser, denoise, denoise_preroll
from avatar_forcing.audio.features import LogMelConfig, StreamingLogMel, log_mel

MEL = LogMelConfig()
RATE = MEL.sample_rate


def _bursts_in_hum(hum: float, seconds: int = 6) -> np.ndarray:
    """Tone bursts (0.3 s on, 0.5 s off) over a steady hum with a little hiss."""
    rng = np.random.default_rng(0)
    t = np.arange(seconds * RATE) / RATE
    on = (t % 0.8) < 0.3
    pcm = 0.3 * np.sin(2 * np.pi * 440 * t) * on + hum * np.sin(2 * np.pi * 100 * t)
    return (pcm + hum * 0.1 * rng.standard_normal(len(t))).astype(np.float32), on


def _frame_level(features: np.ndarray) -> np.ndarray:
    return features.reshape(len(features), MEL.hops_per_frame, MEL.n_mels).mean((1, 2))


def _loudest_band(features: np.ndarray) -> np.ndarray:
    """Each frame's level in the band where the features are loudest overall (a tone's own band)."""
    bands = features.reshape(len(features), MEL.hops_per_frame, MEL.n_mels).mean(1)
    return bands[:, bands.max(0).argmax()]


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_a_stream_gives_the_offline_numbers_bit_for_bit(chunk):
    pcm, _ = _bursts_in_hum(0.01, 3)
    feats = log_mel(pcm)
    stream = LogMelDenoiser()
    chunked = np.concatenate([stream.push(feats[i:i + chunk]) for i in range(0, len(feats), chunk)])
    assert np.array_equal(chunked, denoise(feats))
    stream.reset()
    assert np.array_equal(stream.push(feats), denoise(feats))


def test_the_pauses_lose_their_hum_and_the_bursts_keep_their_level():
    pcm, on = _bursts_in_hum(0.01)
    raw, clean = log_mel(pcm), denoise(log_mel(pcm))
    frames = np.arange(len(raw)) * MEL.frame_samples
    settled = frames > 2 * DenoiseConfig().window_s * RATE  # after the floor is learnt
    burst = on[frames + MEL.frame_samples - 1] & on[frames] & settled
    pause = ~on[frames + MEL.frame_samples - 1] & ~on[frames] & settled
    drop = (_frame_level(raw) - _frame_level(clean)) * MEL.db_scale
    assert drop[pause].mean() > 10.0  # dB on average over the bands: a pause becomes quiet, as in the corpus
    tone_drop = (_loudest_band(raw) - _loudest_band(clean)) * MEL.db_scale
    assert np.abs(tone_drop[burst]).mean() < 1.0  # the tone stands where it was


def test_clean_speech_from_silence_is_left_alone():
    """A stream starts from silence: a TTS voice's first word is not taken for noise."""
    t = np.arange(RATE) / RATE
    pcm = np.concatenate([0.3 * np.sin(2 * np.pi * 300 * t), np.zeros(RATE)]).astype(np.float32)
    raw, clean = log_mel(pcm), denoise(log_mel(pcm))
    assert np.abs(_loudest_band(raw) - _loudest_band(clean))[:24].max() * MEL.db_scale < 0.5
    silence = slice(27, None)
    assert np.array_equal(clean[silence], raw[silence])


def test_a_training_window_hears_what_a_stream_would_have_heard():
    from avatar_forcing.data.loader import make_sample
    from avatar_forcing.motion.vector import MotionStats
    from tests.test_shards import fake_conversation

    conv = fake_conversation("x", 160, seed=3)
    cfg = DenoiseConfig()
    start, window = 100, 20
    assert start > denoise_preroll(cfg)
    sample = make_sample(conv, 0, start, window, MotionStats(), denoise_cfg=cfg)
    whole = denoise(conv.participants[0].features.astype(np.float32), cfg)
    assert np.abs(sample["avatar_audio"] - whole[start:start + window]).max() < 0.01
    plain = make_sample(conv, 0, start, window, MotionStats())
    assert not np.array_equal(sample["avatar_audio"], plain["avatar_audio"])


def test_a_session_repeats_the_suppression_its_checkpoint_was_trained_with():
    from avatar_forcing.stream.features import audio_features_for

    trained_with = {"feature_config": {"kind": "log_mel", "denoise": {"window_s": 1.0}}}
    stream = audio_features_for(trained_with, MEL.dim).stream()
    assert stream.denoiser is not None and stream.denoiser.cfg.window_s == 1.0 and stream.context is None
    assert isinstance(audio_features_for({}, MEL.dim).stream(), StreamingLogMel)
    assert isinstance(audio_features_for({"feature_config": {"denoise": None}}, MEL.dim).stream(),
                      StreamingLogMel)

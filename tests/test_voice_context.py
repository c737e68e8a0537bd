"""Each voice's recent loudness (audio/voice_context.py): the same in a stream, a file and a window."""

import numpy as np

from avatar_forcing.audio.features import FEATURE_DIM, LogMelConfig, log_mel
from avatar_forcing.audio.voice_context import SILENCE, VoiceContext, VoiceContextConfig, with_voice_context

CFG = VoiceContextConfig()
RATE = LogMelConfig().sample_rate


def _phrase_then_silence(speech_s: float = 1.0, silence_s: float = 3.0) -> np.ndarray:
    """Broadband sound (speech fills the mel bands; a pure tone fills one) for `speech_s`, then silence."""
    t = np.arange(int(speech_s * RATE)) / RATE
    voice = 0.1 * np.random.default_rng(1).standard_normal(len(t)) * (1.2 + np.sin(2 * np.pi * 4 * t))
    return np.concatenate([voice.astype(np.float32), np.zeros(int(silence_s * RATE), np.float32)])


def test_a_stream_in_any_chunking_gives_the_offline_numbers():
    features = np.random.default_rng(0).uniform(-1, 1, (240, FEATURE_DIM)).astype(np.float32)
    stream, parts, i = VoiceContext(CFG), [], 0
    for n in (1, 0, 7, 49, 50, 3, 130):
        parts.append(stream.push(features[i:i + n]))
        i += n
    offline = with_voice_context(features, CFG)
    assert offline.shape == (240, FEATURE_DIM + CFG.dim)
    assert np.array_equal(np.concatenate(parts), offline)
    assert np.array_equal(offline[:, :FEATURE_DIM], features)  # the log-mel itself is untouched


def test_the_context_tells_how_long_a_silence_has_lasted():
    context = with_voice_context(log_mel(_phrase_then_silence()), CFG)[:, FEATURE_DIM:]
    assert np.all(context[0] > SILENCE)  # the first frame's own sound counts, the rest is silence before
    end = 25  # the phrase ends after 1 s
    shortest, longest = context[:, 0], context[:, -1]
    # 0.3 s after the phrase end the short horizon is silent already, the 2 s one still hears the phrase
    assert shortest[end + 8] == SILENCE and longest[end + 8] > SILENCE + 0.3
    # 2 s after, every horizon is silent: the two moments differ in the context alone
    assert np.all(context[end + 50] == SILENCE)
    assert np.all(np.diff(longest[end:end + 50]) <= 1e-9)  # the memory of the phrase only fades


def test_a_training_window_hears_what_a_stream_would_have_heard():
    from avatar_forcing.data.loader import make_sample
    from avatar_forcing.motion.vector import MotionStats
    from tests.test_shards import fake_conversation

    conv = fake_conversation("x", 160, seed=3)
    start, window = 100, 20
    assert start > CFG.preroll
    sample = make_sample(conv, 1, start, window, MotionStats(), voice_context=CFG)
    whole = with_voice_context(conv.participants[0].features.astype(np.float32), CFG)
    assert sample["user_audio"].shape == (window, FEATURE_DIM + CFG.dim)
    assert np.allclose(sample["user_audio"], whole[start:start + window], atol=1e-6)
    early = make_sample(conv, 1, 10, window, MotionStats(), voice_context=CFG)  # silence before the start
    assert np.allclose(early["user_audio"], whole[10:10 + window], atol=1e-6)


def test_a_session_appends_the_context_its_checkpoint_was_trained_with():
    from avatar_forcing.stream.features import audio_features_for

    trained_with = {"feature_config": {"kind": "log_mel", "denoise": None,
                                       "voice_context": {"horizons": [5, 25]}}}
    features = audio_features_for(trained_with, FEATURE_DIM + 2)
    out = features.stream().push(_phrase_then_silence())
    assert features.dim == FEATURE_DIM + 2 and out.shape[1] == FEATURE_DIM + 2
    offline = with_voice_context(log_mel(_phrase_then_silence()), VoiceContextConfig((5, 25)))
    assert np.array_equal(out, offline)

import numpy as np
import pytest

from avatar_forcing.audio.features import FEATURE_DIM, LogMelConfig, StreamingLogMel, log_mel
from avatar_forcing.errors import InputError

SR = 16000


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise bursts with a moving tone: varied spectra, silences and loud parts."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    envelope = (np.sin(2 * np.pi * 3 * t) > 0).astype(np.float32)
    tone = np.sin(2 * np.pi * (200 + 300 * t) * t)
    return (0.3 * envelope * (tone + 0.3 * rng.standard_normal(len(t)))).astype(np.float32)


def stream(pcm: np.ndarray, sizes) -> np.ndarray:
    s, out, i = StreamingLogMel(), [], 0
    for n in sizes:
        out.append(s.push(pcm[i:i + n]))
        i += n
    out.append(s.push(pcm[i:]))
    return np.concatenate(out)


def test_shape_and_dim():
    pcm = speechlike(1.0)
    feats = log_mel(pcm[:16000 - 1])
    assert FEATURE_DIM == 320 and LogMelConfig().dim == 320
    assert feats.shape == ((16000 - 1) // 640, 320) and feats.dtype == np.float32
    assert log_mel(pcm[:639]).shape == (0, 320)


@pytest.mark.parametrize("chunk,seconds", [(320, 3.0), (592, 3.0), (6400, 3.0), (640, 3.0), (1, 0.3)])
def test_streaming_equals_offline_bit_for_bit(chunk, seconds):
    pcm = speechlike(seconds)
    ref = log_mel(pcm)
    got = stream(pcm, [chunk] * (len(pcm) // chunk))
    assert np.array_equal(got, ref)


def test_streaming_random_chunks_and_reset():
    pcm = speechlike(3.0, seed=1)
    ref = log_mel(pcm)
    rng = np.random.default_rng(2)
    sizes = list(rng.integers(0, 3000, size=60))
    assert np.array_equal(stream(pcm, sizes), ref)
    s = StreamingLogMel()
    s.push(speechlike(0.7, seed=5))
    s.reset()
    assert np.array_equal(s.push(pcm), ref)


def test_causal():
    pcm = speechlike(2.0)
    changed = pcm.copy()
    changed[640 * 20:] = 0.9
    a, b = log_mel(pcm), log_mel(changed)
    assert np.array_equal(a[:20], b[:20])
    assert not np.array_equal(a[20], b[20])


@pytest.mark.parametrize("signal", ["silence", "clipped", "dc", "tiny"])
def test_degenerate_inputs_are_finite(signal):
    t = np.arange(SR) / SR
    pcm = {
        "silence": np.zeros(SR),
        "clipped": np.clip(5 * np.sin(2 * np.pi * 440 * t), -1, 1),
        "dc": np.full(SR, 0.8),
        "tiny": np.full(SR, 1e-30),
    }[signal].astype(np.float32)
    feats = log_mel(pcm)
    assert np.isfinite(feats).all()
    assert feats.min() >= -1.0 and feats.max() < 2.0
    if signal == "silence":
        assert np.all(feats == -1.0)


def test_tone_lands_in_the_right_mel_bin():
    cfg = LogMelConfig()
    t = np.arange(SR) / SR
    feats = log_mel((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    per_bin = feats[5:].reshape(-1, cfg.hops_per_frame, cfg.n_mels).mean(axis=(0, 1))
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    centers = np.linspace(mel(cfg.fmin), mel(cfg.fmax), cfg.n_mels + 2)[1:-1]
    assert abs(int(np.argmax(per_bin)) - int(np.argmin(np.abs(centers - mel(1000))))) <= 1


def test_bad_input():
    with pytest.raises(InputError):
        log_mel(np.zeros((2, 1000), np.float32))
    with pytest.raises(InputError):
        log_mel(np.full(1000, np.nan, np.float32))
    with pytest.raises(InputError):
        StreamingLogMel().push(np.zeros(100, np.int16))

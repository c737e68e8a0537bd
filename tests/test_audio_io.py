import io
import wave

import av
import numpy as np
import pytest

from avatar_forcing.audio.io import StreamingResampler, load_audio, resample, save_wav, to_mono
from avatar_forcing.errors import InputError


def tone(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


def peak_hz(pcm: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.argmax(spectrum) * sr / len(pcm))


def write_wav(path, data: np.ndarray, sr: int, width: int) -> None:
    """data (samples, channels) integer samples written with `width` bytes each."""
    raw = data.astype("<i4").tobytes()
    raw = b"".join(raw[i:i + width] for i in range(0, len(raw), 4)) if width == 3 else data.tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(data.shape[1])
        w.setsampwidth(width)
        w.setframerate(sr)
        w.writeframes(raw)


def write_float_wav(path, data: np.ndarray, sr: int) -> None:
    """IEEE float wav (format tag 3), which the stdlib wave module cannot write."""
    body = data.astype("<f4").tobytes()
    channels = data.shape[1]
    fmt = (b"fmt " + (16).to_bytes(4, "little") + (3).to_bytes(2, "little") + channels.to_bytes(2, "little")
           + sr.to_bytes(4, "little") + (sr * 4 * channels).to_bytes(4, "little")
           + (4 * channels).to_bytes(2, "little") + (32).to_bytes(2, "little"))
    chunks = fmt + b"data" + len(body).to_bytes(4, "little") + body
    path.write_bytes(b"RIFF" + (4 + len(chunks)).to_bytes(4, "little") + b"WAVE" + chunks)


def encode(path, codec: str, pcm: np.ndarray, sr: int, video: bool = False) -> None:
    with av.open(str(path), "w") as out:
        if video:
            vs = out.add_stream("mpeg4", rate=25)
            vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        stream = out.add_stream(codec, rate=sr)
        stream.layout = "mono"
        for i in range(0, len(pcm), 1024):  # PyAV converts and re-frames for the encoder
            frame = av.AudioFrame.from_ndarray(pcm[None, i:i + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts = sr, i
            out.mux(stream.encode(frame))
            if video and i % 2048 == 0:
                img = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
                out.mux(vs.encode(img))
        out.mux(stream.encode(None))
        if video:
            out.mux(vs.encode(None))


def test_resample_keeps_a_1khz_tone():
    y = resample(tone(1000, 44100, 1.0), 44100, 16000)
    assert len(y) == 16000
    assert abs(peak_hz(y, 16000) - 1000) < 2


def test_resample_removes_content_above_the_new_nyquist():
    y = resample(tone(11000, 44100, 1.0), 44100, 16000)
    assert np.abs(y[500:-500]).max() < 0.01


@pytest.mark.parametrize("sr_in", [44100, 48000, 22050, 8000])
def test_streaming_resampler_matches_offline(sr_in):
    rng = np.random.default_rng(sr_in)
    x = (0.3 * rng.standard_normal(sr_in + 77)).astype(np.float32)
    ref = resample(x, sr_in, 16000)
    r, parts, i = StreamingResampler(sr_in, 16000), [], 0
    while i < len(x):
        n = int(rng.integers(1, 2500))
        parts.append(r.push(x[i:i + n]))
        i += n
    parts.append(r.flush())
    y = np.concatenate(parts)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_streaming_resampler_is_continuous_and_low_latency():
    r = StreamingResampler(48000, 16000)
    x = tone(440, 48000, 0.5)
    out = np.concatenate([r.push(x[i:i + 960]) for i in range(0, len(x), 960)])
    assert len(out) >= len(x) // 3 - 20  # at most a few samples held back
    assert np.abs(np.diff(out)).max() < 0.1  # no clicks at chunk joins


def test_to_mono():
    stereo = np.stack([np.ones(10), -np.ones(10) * 0.5], axis=1)
    assert np.allclose(to_mono(stereo), 0.25)
    surround = np.arange(6, dtype=np.float32)[:, None] * np.ones((6, 4))
    assert np.allclose(to_mono(surround, channel_axis=0), 2.5)
    assert to_mono(np.zeros(5)).dtype == np.float32


def test_int16_stereo_wav(tmp_path):
    left, right = tone(1000, 44100, 0.5), tone(1000, 44100, 0.5) * 0.5
    data = (np.stack([left, right], axis=1) * 32767).astype("<i2")
    write_wav(tmp_path / "a.wav", data, 44100, 2)
    pcm = load_audio(tmp_path / "a.wav")
    assert pcm.dtype == np.float32 and pcm.ndim == 1 and len(pcm) == 8000
    assert abs(peak_hz(pcm, 16000) - 1000) < 3
    assert abs(np.abs(pcm[1000:-1000]).max() - 0.375) < 0.01  # mean of 0.5 and 0.25 amplitude


def test_int24_six_channel_wav(tmp_path):
    x = tone(500, 16000, 0.5)
    data = np.stack([x * c / 6 for c in range(6)], axis=1)
    write_wav(tmp_path / "b.wav", np.round(data * (2 ** 23 - 1)).astype(np.int32), 16000, 3)
    pcm = load_audio(tmp_path / "b.wav")
    np.testing.assert_allclose(pcm, x * 2.5 / 6, atol=1e-4)


def test_float_wav_and_bytes(tmp_path):
    x = tone(300, 16000, 0.25, amp=0.9)
    write_float_wav(tmp_path / "f.wav", x[:, None], 16000)
    np.testing.assert_allclose(load_audio(tmp_path / "f.wav"), x, atol=1e-6)
    np.testing.assert_allclose(load_audio((tmp_path / "f.wav").read_bytes()), x, atol=1e-6)


def test_save_wav_roundtrip(tmp_path):
    x = tone(700, 16000, 0.3)
    save_wav(tmp_path / "s.wav", x)
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), x, atol=1e-4)


@pytest.mark.parametrize("name,codec,video", [("a.flac", "flac", False), ("a.mp3", "libmp3lame", False),
                                              ("a.m4a", "aac", False), ("v.mp4", "aac", True)])
def test_compressed_formats(tmp_path, name, codec, video):
    x = tone(1000, 48000, 1.0)
    encode(tmp_path / name, codec, x, 48000, video=video)
    pcm = load_audio(tmp_path / name)
    assert abs(len(pcm) - 16000) < 1000  # codecs add priming/padding
    assert abs(peak_hz(pcm, 16000) - 1000) < 3


def test_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_audio(tmp_path / "empty.wav")
    with pytest.raises(InputError, match="empty"):
        load_audio(b"")
    (tmp_path / "junk.wav").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(InputError):
        load_audio(tmp_path / "junk.wav")
    with pytest.raises(InputError):
        load_audio(io.BytesIO(b"x").getvalue() * 100)


def test_video_without_audio(tmp_path):
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=25)
        vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        for _ in range(3):
            out.mux(vs.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")))
        out.mux(vs.encode(None))
    with pytest.raises(InputError, match="no audio"):
        load_audio(path)

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from avatar_forcing.errors import InputError
from avatar_forcing.media.image import load_image


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def test_rgb_round_trip(astronaut, tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(encode(astronaut))
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == astronaut.shape
    np.testing.assert_array_equal(out, astronaut)


def test_grayscale_and_16_bit():
    gray = (np.arange(64 * 48) % 256).astype(np.uint8).reshape(48, 64)
    out = load_image(encode(gray))
    assert out.shape == (48, 64, 3)
    np.testing.assert_array_equal(out[..., 0], gray)
    deep = (gray.astype(np.uint16) * 257)
    out16 = load_image(encode(deep))
    assert out16.shape == (48, 64, 3)
    np.testing.assert_allclose(out16[..., 1].astype(int), gray.astype(int), atol=1)


def test_rgba_composited_on_white_and_palette(astronaut):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:4, :, 3] = 255  # top half opaque red, bottom half fully transparent
    out = load_image(encode(rgba))
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out[7, 0], [255, 255, 255])
    pal = Image.fromarray(astronaut).convert("P")
    buf = io.BytesIO()
    pal.save(buf, format="PNG")
    assert load_image(buf.getvalue()).shape == astronaut.shape


def test_rejects_non_images_and_truncated(astronaut, tmp_path):
    with pytest.raises(InputError, match="not a readable image"):
        load_image(b"definitely not an image" * 10)
    with pytest.raises(InputError):
        load_image(b"")
    with pytest.raises(InputError, match="not found"):
        load_image(tmp_path / "missing.jpg")
    jpeg = encode(astronaut, "JPEG")
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_image(jpeg[: len(jpeg) // 2])


def test_rejects_decompression_bomb_from_header():
    # A PNG that declares 20000 x 20000 pixels but carries almost no data: rejected from the header.
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    bomb = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + png_chunk(b"IEND", b""))
    assert len(bomb) < 200
    with pytest.raises(InputError, match="more pixels than the limit"):
        load_image(bomb)
    with pytest.raises(InputError, match="more pixels than the limit"):
        load_image(encode(np.zeros((100, 100, 3), np.uint8)), max_pixels=5000)


# ---- video ----

from avatar_forcing.media.video import (  # noqa: E402
    BackgroundVideoWriter,
    VideoWriter,
    probe,
    read_all,
    read_audio,
    read_video,
)


def test_video_round_trip_with_audio(tmp_path):
    path = tmp_path / "clip.mp4"
    frames = [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(20)]
    audio = (0.5 * np.sin(2 * np.pi * 440 * np.arange(20 * 640) / 16000)).astype(np.float32)
    with VideoWriter(path, fps=25, audio=audio) as writer:
        for f in frames:
            writer.write(f)
    info = probe(path)
    assert (info.width, info.height, info.fps, info.has_audio) == (64, 48, 25.0, True)
    video, times = read_all(path)
    assert video.shape == (20, 48, 64, 3)
    np.testing.assert_allclose(times, np.arange(20) / 25, atol=1e-6)
    np.testing.assert_allclose(video[:, 20, 20, 0], [8 * i for i in range(20)], atol=3)
    pcm = read_audio(path)
    assert abs(len(pcm) - len(audio)) < 1024  # AAC pads to whole 1024-sample frames
    assert np.corrcoef(pcm[1000:12000], audio[1000:12000])[0, 1] > 0.99


def test_odd_size_is_padded(tmp_path):
    path = tmp_path / "odd.mp4"
    with VideoWriter(path) as writer:
        writer.write(np.zeros((31, 45, 3), np.uint8))
        with pytest.raises(InputError, match="differs"):
            writer.write(np.zeros((32, 45, 3), np.uint8))
    assert probe(path).width == 46 and probe(path).height == 32


def test_background_writer_writes_every_frame_in_order(tmp_path):
    path = tmp_path / "bg.mp4"
    with BackgroundVideoWriter(path, queue_frames=3, fps=25) as writer:  # a small queue: write must block
        for i in range(30):
            writer.write(np.full((32, 48, 3), 8 * i, np.uint8))
    video, _ = read_all(path)
    assert writer.frames_written == 30 and video.shape == (30, 32, 48, 3)
    np.testing.assert_allclose(video[:, 10, 10, 0], [8 * i for i in range(30)], atol=3)
    assert writer.encode_ms > 0


def test_background_writer_reports_encoder_errors(tmp_path):
    writer = BackgroundVideoWriter(tmp_path / "bad.mp4")
    writer.write(np.zeros((32, 48, 3), np.uint8))
    writer.write(np.zeros((40, 48, 3), np.uint8))  # a size change: fails on the encoder thread
    with pytest.raises(InputError, match="differs"):
        writer.close()
    assert writer.frames_written == 1


def test_bad_videos(tmp_path):
    with pytest.raises(InputError, match="not found"):
        list(read_video(tmp_path / "missing.mp4"))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01 this is not a video " * 100)
    with pytest.raises(InputError):
        list(read_video(garbage))
    audio_only = tmp_path / "audio_only.mp4"
    VideoWriter(audio_only, audio=np.zeros(16000, np.float32)).close()
    with pytest.raises(InputError, match="no video stream"):
        list(read_video(audio_only))
    empty = tmp_path / "empty.mp4"
    VideoWriter(empty, size=(32, 32)).close()
    with pytest.raises(InputError):
        list(read_video(empty))


def test_truncated_video(tmp_path):
    path = tmp_path / "clip.mp4"
    with VideoWriter(path) as writer:
        for i in range(10):
            writer.write(np.full((32, 32, 3), 20 * i, np.uint8))
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: gone
    with pytest.raises(InputError):
        list(read_video(cut))


def test_live_encoder_has_no_frame_reordering(tmp_path):
    import av

    from avatar_forcing.media.video import LIVE_ENCODER

    def pts_in_decode_order(path):
        with av.open(str(path)) as c:
            return [p.pts for p in c.demux(video=0) if p.pts is not None]

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    for name, cfg in (("default", None), ("live", LIVE_ENCODER)):
        with VideoWriter(tmp_path / f"{name}.mp4", **({"cfg": cfg} if cfg else {})) as writer:
            for i in range(30):
                writer.write(np.roll(base, 2 * i, axis=1))
    # x264's default ("veryfast") uses B-frames, which a viewer must wait for; zerolatency does not.
    default, live = pts_in_decode_order(tmp_path / "default.mp4"), pts_in_decode_order(tmp_path / "live.mp4")
    assert default != sorted(default)
    assert live == sorted(live) and len(live) == 30
    assert read_all(tmp_path / "live.mp4")[0].shape == (30, 64, 64, 3)

"""Offline generation: motion export, audio mixing, frame-rate conversion, and a decodable MP4 with audio."""

import csv
import json

import numpy as np
import pytest

from avatar_forcing.motion.vector import MOTION_DIM
from avatar_forcing.stream.generate import EXPORT_NAMES, export_motion, frames_at_fps, mix


def test_export_motion_is_arkit_named(tmp_path):
    motion = np.random.default_rng(0).uniform(0, 1, (7, MOTION_DIM)).astype(np.float32)
    json_path, csv_path = export_motion(tmp_path / "curves", motion)
    data = json.loads(json_path.read_text())
    assert "_neutral" not in data["names"] and data["names"][0] == "browDownLeft"
    assert data["names"][-6:] == ["pitch", "yaw", "roll", "tx", "ty", "log_scale"]
    assert len(data["names"]) == 57
    assert np.allclose(data["curves"]["jawOpen"], motion[:, 25], atol=1e-5)
    rows = list(csv.reader(csv_path.open()))
    assert rows[0] == ["time", *EXPORT_NAMES] and len(rows) == 8 and rows[2][0] == "0.0400"


def test_mix_never_clips():
    out = mix(np.full(10, 0.8, np.float32), np.full(5, 0.8, np.float32))
    assert len(out) == 10 and out.max() <= 1.0 and out[-1] == pytest.approx(0.8 / 1.6)


def test_frames_at_fps_holds_and_repeats():
    frames = [(np.full((2, 2, 3), i, np.uint8), t) for i, t in enumerate([0.0, 0.1, 0.2])]  # 10 fps
    it = frames_at_fps(iter(frames), fps=25)
    got = [int(next(it)[0, 0, 0]) for _ in range(8)]
    assert got == [0, 0, 0, 1, 1, 2, 2, 2]


def test_generate_writes_a_decodable_mp4_with_audio(tmp_path, astronaut_face):
    pytest.importorskip("avatar_forcing.motion.renderer")
    import torch

    from avatar_forcing.media.video import probe, read_all, read_audio
    from avatar_forcing.stream.generate import generate
    from avatar_forcing.stream.options import SessionOptions

    torch.set_num_threads(1)
    sr, seconds = 16000, 0.9
    audio = (np.sin(np.arange(int(sr * seconds)) / sr * 2 * np.pi * 220) * 0.3).astype(np.float32)
    options = SessionOptions(output_size=128, nfe=1, random_init=True)
    with pytest.warns(UserWarning, match="UNTRAINED"):
        result = generate(astronaut_face, audio, tmp_path / "out.mp4", options=options, progress=False,
                          user_motion=np.zeros((10, MOTION_DIM), np.float32), side_by_side=True,
                          export_prefix=tmp_path / "motion")
    assert result.frames == 23 and result.motion.shape == (23, MOTION_DIM)
    frames, _ = read_all(result.path)
    assert frames.shape == (23, 128, 256, 3)
    assert probe(result.path).has_audio
    decoded = read_audio(result.path)
    assert abs(len(decoded) - len(audio)) <= 1024 + 0.01 * sr  # AAC pads to whole 1024-sample frames
    assert (tmp_path / "motion.json").is_file() and (tmp_path / "motion.csv").is_file()

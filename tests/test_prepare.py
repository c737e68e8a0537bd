"""`data prepare` on real pixels: a rotating astronaut (two videos, and side by side), broken input."""

import json

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from avatar_forcing.data.prepare import PrepareConfig, prepare
from avatar_forcing.data.shards import Corpus
from avatar_forcing.media.video import write_video
from avatar_forcing.motion.vector import idx

FRAMES = 40  # 1.6 s at 25 fps
SIZE = 256


def _faces(mirror: bool) -> tuple[np.ndarray, np.ndarray]:
    """Frames of the astronaut's face rolling by a known angle (degrees), and that angle."""
    img = skdata.astronaut()[:300, 100:400]
    img = img[:, ::-1] if mirror else img
    img = cv2.resize(np.ascontiguousarray(img), (SIZE, SIZE))
    angle = 12 * np.sin(np.linspace(0, 2 * np.pi, FRAMES) * (1.5 if mirror else 1.0))
    frames = [
        cv2.warpAffine(
            img,
            cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), a, 1.0),
            (SIZE, SIZE),
            borderMode=cv2.BORDER_REFLECT,
        )
        for a in angle
    ]
    return np.stack(frames), angle


def _tone(freq: float) -> np.ndarray:
    t = np.arange(FRAMES * 640) / 16000
    return (0.3 * np.sin(2 * np.pi * freq * t) * (t % 1 < 0.5)).astype(np.float32)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("conversations")
    truth = {}
    (root / "two").mkdir()
    for p in range(2):
        frames, angle = _faces(mirror=p == 1)
        write_video(root / "two" / f"p{p}.mp4", frames, fps=25, audio=_tone(220 * (p + 1)))
        truth[p] = (frames, angle)
    side = root / "side"
    side.mkdir()
    write_video(side / "video.mp4", np.concatenate([truth[0][0], truth[1][0]], axis=2), fps=25)
    (side / "layout.json").write_text(json.dumps({"p0": [0, 0, 0.5, 1], "p1": [0.5, 0, 0.5, 1]}))
    for p in range(2):
        from avatar_forcing.audio.io import save_wav

        save_wav(side / f"p{p}.wav", _tone(300 + p * 100))
    (side / "meta.json").write_text(json.dumps({"split": "heldout"}))
    broken = root / "broken"
    broken.mkdir()
    (broken / "p0.mp4").write_bytes(b"not a video at all")
    (broken / "p1.mp4").write_bytes(b"")
    return root, {p: truth[p][1] for p in range(2)}


@pytest.mark.parametrize("workers", [1, 2])  # 2: the conversations are tracked in a worker pool
def test_prepare_round_trip_and_resume(inputs, tmp_path, workers):
    root, angles = inputs
    cfg = PrepareConfig(min_seconds=1.0)
    report = prepare(root, tmp_path, cfg, workers=workers, progress=False)
    assert report["prepared"] == 2 and set(report["failed"]) == {"broken"}
    corpus = Corpus(tmp_path)
    assert {r.id: r.split for r in corpus.conversations()} == {"two": "train", "side": "heldout"}
    for cid in ("two", "side"):
        conv = corpus.load(cid)
        assert abs(conv.frames - FRAMES) <= 1
        for p in range(2):
            roll = conv.participants[p].motion[:, idx("roll")]
            n = min(len(roll), FRAMES)
            assert abs(np.corrcoef(roll[:n], angles[p][:n])[0, 1]) > 0.9, (cid, p)
            assert conv.participants[p].mask.mean() > 0.9
    two = corpus.load("two")
    energy = np.abs(two.participants[0].audio).reshape(two.frames, -1).mean(1)
    assert energy[:10].mean() > 0.1 and energy[15:22].mean() < 0.01  # the tone's on/off pattern
    again = prepare(root, tmp_path, cfg, workers=1, progress=False)  # resumable: nothing redone
    assert again["prepared"] == 0 and again["skipped"] == 2 and set(again["failed"]) == {"broken"}


def test_rendered_conversation_is_recovered(tmp_path):
    """Synthetic motion rendered onto portraits, then prepared: the tracked motion follows the truth."""
    pytest.importorskip("avatar_forcing.motion.renderer")
    from avatar_forcing.data.render_check import render_check

    report = render_check(tmp_path, seconds=3.0, size=192)
    # 3 s is short: only the mouth moves enough to correlate reliably (the 20 s figures are in DATA.md)
    assert report["mean"]["jawOpen"] > 0.5

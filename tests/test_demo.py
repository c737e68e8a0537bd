"""The demo: its shipped conversation, the captions, and `avatar-forcing demo` end to end."""

import av
import numpy as np
import pytest
import torch

from avatar_forcing.cli import main
from avatar_forcing.demo import CaptionStyle, Turn, active_turn, compose, load_demo_inputs
from avatar_forcing.motion.vector import FPS

TURNS = [Turn("avatar", 0.5, 2.0, "sentence", "Hello there."), Turn("user", 2.5, 4.0, "laugh", "ha ha")]


def test_demo_conversation_is_avatar_user_laugh_avatar():
    inputs = load_demo_inputs()
    assert 15 <= len(inputs.avatar_audio) / 16000 <= 20
    assert len(inputs.user_audio) == len(inputs.avatar_audio)
    assert len(inputs.user_motion) == inputs.frames
    speakers = [t.speaker for t in inputs.turns]
    assert speakers[0] == "avatar" and speakers[-1] == "avatar" and "user" in speakers
    assert any(t.speaker == "user" and t.kind == "laugh" for t in inputs.turns)
    # the user is silent while the avatar speaks its first line
    first = inputs.turns[0]
    span = slice(int(first.start * 16000), int(first.end * 16000))
    assert np.abs(inputs.user_audio[span]).max() < 1e-3 < np.abs(inputs.avatar_audio[span]).max()


def test_load_demo_inputs_cuts_to_seconds():
    inputs = load_demo_inputs(seconds=1.0)
    assert inputs.frames == FPS and len(inputs.user_motion) == FPS


def test_active_turn_holds_then_clears():
    assert active_turn(TURNS, 1.0, 0.3).speaker == "avatar"
    assert active_turn(TURNS, 2.2, 0.3).speaker == "avatar"  # held just after the line
    assert active_turn(TURNS, 2.4, 0.3) is None
    assert active_turn(TURNS, 3.0, 0.3).speaker == "user"


def test_compose_marks_the_speaker():
    style = CaptionStyle()
    grey = np.full((64, 64, 3), 128, np.uint8)
    quiet = compose(grey, grey, None, style)
    talking = compose(grey, grey, TURNS[0], style)
    bar = style.bar_height(64)
    assert quiet.shape == (64 + bar, 128, 3)
    # the avatar's panel gets a coloured frame and the bar a caption; the user's panel frame does not change
    assert not np.array_equal(quiet[:64, 64:], talking[:64, 64:])
    assert not np.array_equal(quiet[64:], talking[64:])
    assert np.array_equal(quiet[20:64, :64], talking[20:64, :64])


def test_demo_command_writes_video_with_audio(tmp_path, capsys):
    torch.set_num_threads(1)
    out = tmp_path / "demo.mp4"  # a 256 px panel: the face needs 32 px
    assert main(["demo", "--seconds", "2", "--size", "256", "--nfe", "2", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "real-time factor" in printed
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        frames = sum(1 for _ in container.decode(video=0))
        container.seek(0)
        samples = sum(f.samples for f in container.decode(audio=0))
    assert frames == 2 * FPS
    assert (video.width, video.height) == (2 * 256, 256 + CaptionStyle().bar_height(256))
    assert abs(samples / audio.rate - 2.0) < 0.1  # AAC pads a little


@pytest.mark.parametrize("photo", ["no_face_image"])
def test_demo_without_a_face_exits_2(tmp_path, request, photo, capsys):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(request.getfixturevalue(photo)).save(path)
    assert main(["demo", "--portrait", str(path), "--seconds", "0.4", "-o", str(tmp_path / "x.mp4")]) == 2
    assert "face" in capsys.readouterr().err.lower()

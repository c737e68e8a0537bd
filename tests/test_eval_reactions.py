"""`avatar-forcing eval reactions`: the metrics on synthetic signals with known answers, the 25 fps webcam
resampling, and one short end-to-end run on a real video (skipped when ../shared/real is absent)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

from avatar_forcing.data.synth.signals import nod
from avatar_forcing.eval import reactions as rx
from avatar_forcing.eval.metrics import answer_scores, smile_answers
from avatar_forcing.eval.portraits import Retracked, listen_metrics
from avatar_forcing.motion.tracker import NUM_LANDMARKS
from avatar_forcing.motion.vector import FPS, MOTION_DIM, idx

REAL_VIDEOS = Path("../shared/real/videos")
CFG = rx.ReactionsConfig()
SR = rx.SAMPLE_RATE


def smile_motion(values: np.ndarray) -> np.ndarray:
    motion = np.zeros((len(values), MOTION_DIM))
    motion[:, idx("mouthSmileLeft")] = motion[:, idx("mouthSmileRight")] = values
    return motion


def test_a_lagged_copy_of_the_smile_is_found_at_its_lag():
    rng = np.random.default_rng(0)
    user = np.convolve(rng.random(300), np.ones(10) / 10, mode="same")
    avatar = np.concatenate([np.zeros(12), user[:-12]])  # follows by 12 frames = 0.48 s
    avatar[100] = np.nan  # an untracked frame
    r, lag = rx.smile_lag(user, avatar)
    assert r > 0.99 and lag == pytest.approx(12 / FPS)
    r_lead, _ = rx.smile_lag(avatar, user)  # an avatar that leads is not a response at lags 0..1.6 s
    assert r_lead < 0.9


def smile_step(frames: int, at: int, level: float, ramp: int = 5) -> np.ndarray:
    return np.clip((np.arange(frames) - at) / ramp, 0.0, 1.0) * level


def test_smile_answers_times_the_answer_and_skips_what_cannot_be_judged():
    frames, at = 200, 40
    user = smile_step(frames, at, 0.6)
    answer = smile_step(frames, at + 15, 0.5)  # reaches half of 0.6 within the lag window
    times = smile_answers(user, answer)
    assert len(times) == 1 and 15 / FPS < times[0] < 20 / FPS
    assert np.isinf(smile_answers(user, np.zeros(frames))).all()  # never answered
    assert len(smile_answers(smile_step(frames, at, 0.2), answer)) == 0  # too faint to count
    assert len(smile_answers(user, np.full(frames, 0.4))) == 0  # the avatar was smiling already
    assert len(smile_answers(smile_step(frames, frames - 10, 0.6), answer)) == 0  # no time left to answer
    late = answer_scores(user, smile_step(frames, at + 60, 0.5))  # 2.4 s: after the window
    assert late["smiles"] == 1.0 and late["smiles_answered"] == 0.0 and math.isnan(late["answer_s"])
    assert answer_scores(user, answer)["smiles_answered"] == 1.0


def test_a_constant_face_has_no_smile_range_and_is_one_long_freeze():
    frames = 100
    seq = Retracked(smile_motion(np.full(frames, 0.3)), np.tile(face_landmarks(), (frames, 1, 1)))
    assert listen_metrics(seq, CFG.portraits)["smile_range"] == 0.0
    seconds, start = rx.longest_freeze(seq.landmarks)
    assert seconds == pytest.approx(frames / FPS) and start == 0.0
    assert seconds >= CFG.freeze_flag_s


def face_landmarks() -> np.ndarray:
    rng = np.random.default_rng(3)
    lm = np.column_stack([rng.uniform(100, 300, NUM_LANDMARKS), rng.uniform(100, 300, NUM_LANDMARKS),
                          np.zeros(NUM_LANDMARKS)])
    lm[234, :2], lm[454, :2] = (100, 200), (300, 200)  # cheeks: a 200 px face
    return lm


def test_the_summary_row_takes_the_worst_freeze_and_the_mean_of_the_rest():
    rows = [{"smile_range": 0.2, "longest_freeze_s": 0.1, "frozen": 0.0},
            {"smile_range": 0.4, "longest_freeze_s": 2.5, "frozen": 1.0},
            {"smile_range": math.nan, "longest_freeze_s": 0.3, "frozen": 0.0}]
    summary = rx.overall(rows)
    assert summary["smile_range"] == pytest.approx(0.3)  # NaN rows left out
    assert summary["longest_freeze_s"] == 2.5 and summary["frozen"] == 1.0  # one frozen video is a failure


def test_the_longest_freeze_is_the_still_stretch_between_motion():
    base = face_landmarks()
    shift = np.zeros(150)
    shift[:50] = np.arange(50) * 1.0           # moving 1 px (0.5 % face) per frame
    shift[50:110] = shift[49]                  # still for 60 frames
    shift[110:] = shift[49] + np.arange(1, 41) * 1.0
    lm = np.stack([base + [s, 0, 0] for s in shift])
    lm[130] = np.nan  # an untracked frame breaks no still run here (it is in the moving part)
    seconds, start = rx.longest_freeze(lm)
    assert seconds == pytest.approx(61 / FPS)  # frames 49..109 are one still pose
    assert start == pytest.approx(49 / FPS)


def speech(segments: list[tuple[float, float]], seconds: float, rng: np.random.Generator) -> np.ndarray:
    pcm = 1e-4 * rng.standard_normal(round(seconds * SR))  # a microphone's hiss
    for a, b in segments:
        pcm[round(a * SR): round(b * SR)] += 0.1 * rng.standard_normal(round(b * SR) - round(a * SR))
    return pcm.astype(np.float32)


def test_phrase_ends_are_speech_followed_by_a_pause():
    rng = np.random.default_rng(0)
    # a 0.1 s gap inside the first phrase (bridged), a click at 4.0 s (too short), speech to the end
    pcm = speech([(0.2, 1.0), (1.1, 1.6), (2.5, 3.5), (4.0, 4.08), (5.0, 6.0)], 6.0, rng)
    phrases = rx.voiced_segments(pcm)
    assert len(phrases) == 3
    assert phrases[0][0] == pytest.approx(0.2, abs=0.05) and phrases[0][1] == pytest.approx(1.6, abs=0.05)
    ends = rx.phrase_ends(pcm)
    np.testing.assert_allclose(ends, [1.6, 3.5], atol=0.05)  # the last phrase runs to the end: no pause
    assert len(rx.phrase_ends(np.zeros(3 * SR, np.float32))) == 0
    quiet = speech([(0.2, 1.0), (2.0, 3.0)], 4.0, rng) * 0.2  # a quiet recording still has phrases
    np.testing.assert_allclose(rx.phrase_ends(quiet), [1.0, 3.0], atol=0.05)
    # a noisy room: background at half the speech's RMS never reads as one endless phrase
    noisy = speech([(0.2, 1.0), (2.0, 3.0)], 4.0, rng) + 0.05 * rng.standard_normal(4 * SR).astype(np.float32)
    np.testing.assert_allclose(rx.phrase_ends(noisy), [1.0, 3.0], atol=0.05)


def test_nod_precision_and_recall_on_known_nods():
    t = np.arange(12 * FPS) / FPS
    pitch = 0.12 * (nod(t, 1.3, 0.5) + nod(t, 4.5, 0.5) + nod(t, 9.0, 0.5))  # two answers, one unprompted
    ends = np.array([1.0, 4.0, 7.0, 11.5])  # 11.5: its window runs past the clip and is not judged
    scores = rx.nod_scores(pitch, ends)
    assert scores["nods"] == 3 and scores["phrase_ends"] == 3
    assert scores["nod_recall"] == pytest.approx(2 / 3)
    assert scores["nod_precision"] == pytest.approx(2 / 3)
    assert scores["nod_precision_chance"] == pytest.approx(3 * 1.5 / 12, abs=0.01)
    assert scores["nod_recall_chance"] == pytest.approx(1 - (1 - 1.5 / 12) ** 3)
    silent = rx.nod_scores(pitch, np.zeros(0))
    assert math.isnan(silent["nod_precision"]) and math.isnan(silent["nod_recall"])
    assert rx.nod_scores(np.zeros_like(t), ends)["nod_recall"] == 0.0


def test_chance_level_of_random_nods():
    assert rx.chance_scores(np.array([2.0]), 0, 10.0, 1.5) == (pytest.approx(0.15), 0.0)
    assert rx.chance_scores(np.array([2.0, 3.0, 9.5]), 0, 10.0, 1.5)[0] == pytest.approx(0.3)  # overlaps once
    assert rx.chance_scores(np.array([2.0]), 1, 10.0, 1.5)[1] == pytest.approx(0.15)
    assert all(math.isnan(v) for v in rx.chance_scores(np.zeros(0), 3, 10.0, 1.5))


def test_a_30_fps_video_becomes_a_25_fps_webcam(monkeypatch):
    source_fps = 30

    def frames(video, seconds):
        for i in range(source_fps):  # one second; frame i shows the number i
            yield np.full((2, 2, 3), i, np.uint8), i / source_fps

    monkeypatch.setattr(rx, "video_frames", frames)
    ticks = list(rx.webcam(Path("x.mp4"), 1.0))
    assert [t for _, t in ticks] == pytest.approx([k / FPS for k in range(FPS)])
    shown = [int(rgb[0, 0, 0]) for rgb, _ in ticks]
    assert shown == [math.floor(k / FPS * source_fps + 1e-9) for k in range(FPS)]  # the latest frame by then
    assert len(list(rx.webcam(Path("x.mp4"), 2.0))) == 2 * FPS  # the last frame held to the end


def test_user_audio_is_silence_for_a_video_without_sound():
    if not REAL_VIDEOS.is_dir():
        pytest.skip("../shared/real is not here")
    pcm = rx.user_audio(REAL_VIDEOS / "d0.mp4", 1.0)
    assert pcm.shape == (SR,) and not pcm.any()


def test_end_to_end_on_a_real_video(tmp_path, astronaut_face):
    from PIL import Image

    video = REAL_VIDEOS / "d10.mp4"  # 30 fps, with speech
    if not video.is_file():
        pytest.skip("../shared/real is not here")
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / video.name).symlink_to(video.resolve())
    parser = argparse.ArgumentParser()
    rx.reactions_arguments(parser)
    out = tmp_path / "out"
    portrait = tmp_path / "face.png"  # 256 x 256: cheaper to render and re-track than the built-in 512
    Image.fromarray(astronaut_face).save(portrait)
    args = parser.parse_args(["--videos", str(folder), "--seconds", "1.5", "--baseline", "--portrait",
                              str(portrait), "-o", str(out)])
    assert rx.reactions_run(args) == 0
    for name in ("table.md", "table.json", "sheet.png", "d10.png", "d10.mp4", "signals/d10.npz"):
        assert (out / name).is_file(), name
    table = json.loads((out / "table.json").read_text())
    row = table["videos"][0]
    assert row["seconds"] == pytest.approx(1.5, abs=1 / FPS)
    for run in ("model", "baseline"):
        for key in ("smile_range", "asked_smile_range", "smile_lag_r", "yaw_ratio", "roll_ratio",
                    "longest_freeze_s", "tracked"):
            assert math.isfinite(row[run][key]), (run, key)
            assert math.isfinite(table["overall"][run][key]), (run, key)
        assert row[run]["tracked"] > 0.9  # MediaPipe finds the rendered face
        assert "nod_precision" in row[run] and "nod_recall" in row[run]
    signals = np.load(out / "signals" / "d10.npz")
    assert signals["model_motion"].shape == signals["baseline_motion"].shape == (round(1.5 * FPS), MOTION_DIM)
    assert not np.array_equal(signals["model_motion"], signals["baseline_motion"])  # the user matters
    # what the renderer was asked for is kept beside what was re-tracked, frame for frame
    assert signals["model_asked"].shape == signals["model_motion"].shape
    assert np.isfinite(signals["model_asked"]).all()
    (out / "d10.png").unlink()
    assert rx.reactions_run(parser.parse_args(["--rescore", "--baseline", "-o", str(out)])) == 0
    again = json.loads((out / "table.json").read_text())
    assert again["config"]["rescored"] and (out / "d10.png").is_file()
    for run in ("model", "baseline"):  # the signals are saved as float32: the same numbers, nearly
        for key, value in row[run].items():  # (null: NaN, e.g. no phrase end to answer)
            expected = None if value is None else pytest.approx(value, rel=1e-3, abs=1e-4)
            assert again["videos"][0][run][key] == expected, key


def test_no_video_folder_is_a_clean_skip(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    rx.reactions_arguments(parser)
    args = parser.parse_args(["--videos", str(tmp_path / "absent"), "-o", str(tmp_path / "out")])
    assert rx.reactions_run(args) == 0
    assert "no video folder" in capsys.readouterr().out

"""`avatar-forcing eval portraits`: the pure metrics on constructed landmark sets and signals, and one
small end-to-end run on the built-in portrait (plus a photo without a face, which must give a row)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

from avatar_forcing.eval import portraits as ev
from avatar_forcing.motion.tracker import NUM_LANDMARKS
from avatar_forcing.motion.vector import MOTION_DIM, idx

REAL_VIDEOS = Path("../shared/real/videos")
DEMO_AUDIO = Path(ev.__file__).resolve().parent.parent / "assets" / "demo" / "avatar.wav"
CFG = ev.PortraitsConfig()


def face(seed: int = 0) -> np.ndarray:
    """A (478, 3) landmark set: scattered points, cheeks 200 px apart, two eyes open differently."""
    rng = np.random.default_rng(seed)
    lm = np.column_stack([rng.uniform(100, 300, NUM_LANDMARKS), rng.uniform(100, 320, NUM_LANDMARKS),
                          rng.normal(0, 5, NUM_LANDMARKS)])
    points = {234: (100, 200), 454: (300, 200), 61: (160, 260), 291: (240, 260),
              33: (130, 150), 133: (170, 150), 159: (150, 140), 145: (150, 160),
              263: (270, 150), 362: (230, 150), 386: (250, 143), 374: (250, 157)}
    for i, (x, y) in points.items():
        lm[i, :2] = (x, y)
    return lm


def rotate(lm: np.ndarray, degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    centre = lm[:, :2].mean(0)
    out = lm.copy()
    out[:, :2] = (lm[:, :2] - centre) @ np.array([[c, s], [-s, c]]) + centre
    return out


def test_psnr_of_identical_images_is_the_cap_and_known_errors_give_known_db():
    a = np.full((8, 8, 3), 100, np.uint8)
    assert ev.psnr(a, a) == CFG.psnr_cap_db
    assert ev.psnr(a, a + 1) == pytest.approx(10 * math.log10(255 ** 2), abs=1e-9)


def test_shift_size_and_roll_changes_read_as_made():
    ref = face()
    shifted = ref.copy()
    shifted[:, 0] += 10.0  # 5% of the 200 px face width
    assert ev.geometry_change(shifted, ref)["centre_shift_pct"] == pytest.approx(5.0)
    centre = ref[:, :2].mean(0)
    bigger = ref.copy()
    bigger[:, :2] = (ref[:, :2] - centre) * 1.1 + centre
    change = ev.geometry_change(bigger, ref)
    assert change["size_change_pct"] == pytest.approx(10.0)
    assert change["centre_shift_pct"] == pytest.approx(0.0, abs=1e-9)
    assert ev.geometry_change(rotate(ref, 3.0), ref)["roll_change_deg"] == pytest.approx(3.0)
    assert ev.geometry_change(rotate(ref, -3.0), ref)["roll_change_deg"] == pytest.approx(-3.0)


def test_eye_asymmetry_is_zero_for_equal_eyes_and_unchanged_by_a_mirror():
    lm = face()
    assert ev.eye_asymmetry(lm) == pytest.approx((0.5 - 0.35) / 0.425)
    mirrored = lm.copy()
    mirrored[:, 0] = 400.0 - lm[:, 0]
    assert ev.geometry_change(mirrored, lm)["eye_asym_change"] == pytest.approx(0.0, abs=1e-12)
    lm[[386, 374], 1] = (140, 160)  # the second eye opened as wide as the first
    assert ev.eye_asymmetry(lm) == pytest.approx(0.0)


def test_face_box_is_padded_and_clipped():
    lm = face()
    x0, y0, x1, y1 = ev.face_box(lm, (1000, 1000, 3), pad=0.1)
    assert x0 == math.floor(lm[:, 0].min() - 20) and x1 == math.ceil(lm[:, 0].max() + 20)
    assert ev.face_box(lm, (250, 250, 3), pad=0.1)[2:] == (250, 250)


def test_rest_median_geometry_ignores_untracked_frames():
    ref = face()
    shifted = ref.copy()
    shifted[:, 1] += 4.0
    stack = np.stack([ref, shifted, shifted, np.full_like(ref, np.nan)])
    assert ev.median_geometry(stack, ref)["centre_shift_pct"] == pytest.approx(2.0)


def test_jaw_envelope_correlation_finds_the_lag():
    rng = np.random.default_rng(1)
    hop = ev.SAMPLE_RATE // 25
    amplitude = np.abs(np.sin(np.arange(60) / 3.0)) + 0.05
    pcm = (rng.standard_normal(60 * hop) * np.repeat(amplitude, hop)).astype(np.float32)
    envelope = np.sqrt(np.mean(pcm.reshape(60, hop) ** 2, 1))
    jaw = np.concatenate([np.zeros(2), envelope[:-2]])  # the mouth follows the sound by 2 frames
    jaw[30] = np.nan  # an untracked frame
    r, lag = ev.jaw_envelope_r(pcm, jaw)
    assert lag == 2 and r > 0.99
    assert np.isnan(ev.jaw_envelope_r(pcm, np.full(60, np.nan))[0])


def test_speaker_p1_is_relative_to_the_calm_mouth():
    n = 200
    motion = np.zeros((n, MOTION_DIM))
    ratios = np.full(n, 0.4)
    talking = np.arange(n) >= 100
    motion[talking, idx("jawOpen")] = motion[talking, idx("mouthPucker")] = 0.5
    motion[talking, idx("mouthFunnel")] = 0.5
    ratios[talking] = np.linspace(0.2, 0.44, 100)  # the mouth narrows to half its rest width
    assert ev.speaker_mouth_p1(ratios, motion) == pytest.approx(np.percentile(ratios / 0.4, 1.0))
    assert ev.speaker_mouth_p1(ratios, motion) < 0.55


def test_pixel_median_in_bands():
    frames = [np.full((5, 3, 3), v, np.uint8) for v in (0, 10, 200)]
    out = ev.pixel_median(frames, ev.PortraitsConfig(median_band_rows=2))
    assert out.shape == (5, 3, 3) and (out == 10).all()


def test_picked_frames_are_apart_and_taken_round_robin():
    score = np.array([0.1, 0.9, 0.8, 0.2, 0.7, np.nan, 0.6])
    assert ev.pick_frames(score, 3, gap=2, largest=True) == [1, 4, 6]
    assert ev.pick_frames(score, 2, gap=1, largest=False) == [0, 3]
    thumb = np.zeros((1, 1, 3), np.uint8)
    picks = {a: [ev.Pick(thumb, a, 0.0, 1.0, j) for j in js] for a, js in (("x", (0.9, 0.5)), ("y", (0.7,)))}
    chosen = ev.round_robin(picks, 3, key=lambda p: -p.jaw)
    assert [(p.audio, p.jaw) for p in chosen] == [("x", 0.9), ("y", 0.7), ("x", 0.5)]


def test_listening_picks_are_the_largest_smiles_then_head_turns_apart():
    from avatar_forcing.motion.vector import MOTION_DIM, idx

    motion = np.zeros((100, MOTION_DIM))
    motion[20, [idx("mouthSmileLeft"), idx("mouthSmileRight")]] = 0.6   # the broadest smile
    motion[60, [idx("mouthSmileLeft"), idx("mouthSmileRight")]] = 0.4
    motion[22, idx("yaw")] = np.radians(20)   # the largest turn, but next to the smile: not shown twice
    motion[80, idx("yaw")] = np.radians(8)
    motion[40, idx("roll")] = -np.radians(5)
    cfg = ev.PortraitsConfig(listen_pairs=4, min_pick_gap_frames=10)
    assert ev.listen_picks(motion, cfg) == [20, 40, 60, 80]


def test_silent_audio_is_left_out(tmp_path):
    rng = np.random.default_rng(0)
    tracks = {"speech": 0.1 * rng.standard_normal(32000), "hiss": 1e-4 * rng.standard_normal(32000),
              "zeros": np.zeros(32000)}
    files = [tmp_path / f"{name}.wav" for name in tracks]
    kept = ev.load_speech(files, ev.PortraitsConfig(seconds=1.0), lambda p: tracks[p.stem])
    assert list(kept) == ["speech"] and len(kept["speech"]) == ev.SAMPLE_RATE


def test_default_audio_files_are_the_videos_with_sound():
    if not REAL_VIDEOS.is_dir():
        pytest.skip("../shared/real is not here")
    names = [p.name for p in ev.default_audio_files(REAL_VIDEOS)]
    assert "d0.mp4" not in names  # no audio stream
    assert "d3.mp4" in names


def test_an_unchanged_portrait_judged_as_video_has_not_moved(astronaut_face):
    """The judge tracks the portrait the way it tracks the rendered frames (video mode): the same
    picture shown again must read as no change at all."""
    from avatar_forcing.motion.tracker import FaceTracker

    ref = ev.reference_landmarks(astronaut_face, CFG)
    with FaceTracker(mode="video") as tracker:
        frames = [tracker.track_frame(astronaut_face, timestamp_ms=40 * k).landmarks for k in range(40)]
    change = ev.median_geometry(np.stack(frames), ref)
    assert abs(change["roll_change_deg"]) < 0.1 and change["centre_shift_pct"] < 0.1
    assert abs(change["size_change_pct"]) < 0.2
    assert ev.reference_landmarks(np.zeros((64, 64, 3), np.uint8), CFG) is None  # no face


def test_a_real_speaker_is_measured_on_the_avatars_timeline():
    """The real speaker's own jaw against their speech: a talking person's mouth follows their sound
    (positive r); the same jaw against a time-reversed track does not do better."""
    if not REAL_VIDEOS.is_dir():
        pytest.skip("../shared/real is not here")
    from avatar_forcing.audio.io import load_audio

    path = REAL_VIDEOS / "d6.mp4"
    cfg = ev.PortraitsConfig(seconds=4.0)
    pcm = load_audio(path)[: round(cfg.seconds * ev.SAMPLE_RATE)]
    speaker = ev.speaker_reference(path, pcm, cfg)
    assert speaker.frames > 90 and 0.3 < speaker.mouth_p1 < 1.0
    assert speaker.jaw_r > 0.2
    assert ev.speaker_reference(path, pcm[::-1].copy(), cfg).jaw_r < speaker.jaw_r


def test_end_to_end_on_the_builtin_portrait(tmp_path, no_face_image):
    from PIL import Image

    from avatar_forcing.audio.io import load_audio, save_wav

    audio = tmp_path / "speech.wav"
    save_wav(audio, load_audio(DEMO_AUDIO)[: 2 * ev.SAMPLE_RATE])
    folder = tmp_path / "portraits"
    folder.mkdir()
    Image.fromarray(no_face_image).save(folder / "coffee.png")
    parser = argparse.ArgumentParser()
    ev.portraits_arguments(parser)
    out = tmp_path / "out"
    args = parser.parse_args(["--portraits", str(folder), "--audio", str(audio), "--rest-seconds", "1",
                              "--seconds", "2", "--listen-video", "none", "-o", str(out)])
    assert ev.portraits_run(args) == 0
    for name in ("table.md", "table.json", "builtin.png", "coffee.png"):
        assert (out / name).is_file(), name
    table = json.loads((out / "table.json").read_text())
    rows = {p["name"]: p for p in table["portraits"]}
    assert rows["coffee"]["status"].startswith("no face")
    builtin = rows["builtin"]
    assert builtin["status"] == "ok"
    assert math.isfinite(builtin["row"]["psnr_db"]) and builtin["row"]["psnr_db"] > 10
    assert builtin["speech"]["speech"]["frames"] == 50
    assert math.isfinite(builtin["speech"]["speech"]["asked_jaw_r"])  # the model's jaw, before rendering
    assert "no face" in (out / "table.md").read_text()

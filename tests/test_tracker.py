import cv2
import numpy as np
import pytest

from avatar_forcing.errors import InputError, NoFaceError
from avatar_forcing.motion.tracker import (
    FaceTracker,
    fill_gaps,
    head_angles,
    rotation_ypr,
    track_image,
    track_video,
)
from avatar_forcing.motion.vector import MOTION_DIM, NUM_BLENDSHAPES, idx


@pytest.fixture(scope="module")
def tracker():
    with FaceTracker(mode="image") as t:
        yield t


def pose_deg(obs):
    return np.degrees(obs.motion[NUM_BLENDSHAPES:NUM_BLENDSHAPES + 3])


def test_astronaut_face(tracker, astronaut):
    obs = tracker.track_frame(astronaut)
    assert obs is not None
    assert obs.motion.shape == (MOTION_DIM,) and obs.motion.dtype == np.float32
    assert obs.landmarks.shape == (478, 3) and obs.transform.shape == (4, 4)
    h, w = astronaut.shape[:2]
    assert (obs.landmarks[:, 0] >= 0).all() and (obs.landmarks[:, 0] < w).all()
    assert (obs.landmarks[:, 1] >= 0).all() and (obs.landmarks[:, 1] < h).all()
    blend = obs.motion[:NUM_BLENDSHAPES]
    assert (blend >= 0).all() and (blend <= 1).all()
    assert obs.motion[idx("mouthSmileLeft")] > 0.5  # she smiles broadly
    assert np.all(np.abs(pose_deg(obs)) < 15)
    # Her face sits in the upper-left-centre of the photo and spans ~1/3 of its width.
    assert obs.motion[idx("ty")] < -0.5 and abs(obs.motion[idx("tx")]) < 1
    assert -1.2 < obs.motion[idx("log_scale")] < -0.2


def test_flip_negates_yaw_and_roll(tracker, astronaut):
    a = pose_deg(tracker.track_frame(astronaut))
    b = pose_deg(tracker.track_frame(np.ascontiguousarray(astronaut[:, ::-1])))
    assert abs(a[0] - b[0]) < 3  # pitch unchanged
    assert abs(a[1] + b[1]) < 3 and abs(a[2] + b[2]) < 3
    assert abs(a[2]) > 1.5  # her head is visibly tilted, so the roll sign is really tested


def test_roll_sign_follows_image_rotation(tracker, astronaut):
    h, w = astronaut.shape[:2]
    base = pose_deg(tracker.track_frame(astronaut))[2]
    # cv2 angle -15 = clockwise in the image = head top toward the subject's left = positive roll.
    rot = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((w / 2, h / 2), -15, 1.0), (w, h))
    assert 10 < pose_deg(tracker.track_frame(rot))[2] - base < 20


def test_pose_stable_when_face_moves_in_frame(tracker, astronaut):
    canvas = np.full((768, 768, 3), 128, np.uint8)
    canvas[256:, 256:] = astronaut  # face moves from above the centre to near it
    a, b = pose_deg(tracker.track_frame(astronaut)), pose_deg(tracker.track_frame(canvas))
    assert np.all(np.abs(a - b) < 4)


def test_head_angles_invert_rotation():
    pose = (0.2, -0.3, 0.1)
    m = np.eye(4)
    m[:3, :3] = rotation_ypr(pose[1], pose[0], pose[2])
    m[:3, 3] = (0, 0, -60)  # on the optical axis: no view-ray correction
    np.testing.assert_allclose(head_angles(m), pose, atol=1e-9)


def test_no_face(tracker, no_face_image):
    assert tracker.track_frame(no_face_image) is None
    with pytest.raises(NoFaceError):
        track_image(np.full((64, 64, 3), 128, np.uint8))


def test_bad_frames(tracker):
    with pytest.raises(InputError):
        tracker.track_frame(np.zeros((32, 32), np.uint8))
    with pytest.raises(InputError):
        tracker.track_frame(np.zeros((32, 32, 3), np.float32))


def test_video_mode_tolerates_repeated_timestamps(astronaut_face):
    with FaceTracker(mode="video") as t:
        first = t.track_frame(astronaut_face, 1000)
        again = t.track_frame(astronaut_face, 1000)  # not increasing: bumped, not an error
        auto = t.track_frame(astronaut_face)
    assert first is not None and again is not None and auto is not None


def test_track_video_resamples_and_fills(astronaut_face):
    gray = np.full_like(astronaut_face, 128)
    # 30 fps source, 1 s: frames 10..14 have no face.
    frames = [(gray if 10 <= i < 15 else astronaut_face, i / 30) for i in range(30)]
    track = track_video(frames, fps=25)
    assert len(track) == 25 and track.fps == 25
    assert not track.mask.all() and track.mask[:8].all() and track.mask[-10:].all()
    # Filled frames interpolate between their observed neighbours.
    np.testing.assert_allclose(track.values[~track.mask], np.median(track.values[track.mask], 0)[None].repeat(
        (~track.mask).sum(), 0), atol=0.1)


def test_track_video_without_faces_raises():
    gray = np.full((64, 64, 3), 100, np.uint8)
    with pytest.raises(NoFaceError):
        track_video([gray] * 3)


def test_fill_gaps_edges_and_middle():
    m = np.zeros((5, MOTION_DIM), np.float32)
    m[1, 0], m[3, 0] = 1.0, 3.0
    out = fill_gaps(m, np.array([False, True, False, True, False]))
    np.testing.assert_allclose(out[:, 0], [1, 1, 2, 3, 3])


def test_track_cli_round_trip(tmp_path, astronaut_face, capsys):
    from avatar_forcing.cli import main
    from avatar_forcing.media.video import write_video
    from avatar_forcing.motion.vector import load_motion

    video = tmp_path / "face.mp4"
    write_video(video, [astronaut_face] * 4 + [np.full_like(astronaut_face, 128)] * 2)
    out = tmp_path / "motion.npz"
    assert main(["track", str(video), "-o", str(out)]) == 0
    assert "6 frames at 25 fps, face observed in 4 (66.7%)" in capsys.readouterr().out
    track = load_motion(out)
    assert len(track) == 6 and track.mask.tolist() == [True] * 4 + [False] * 2


def test_track_cli_bad_inputs(tmp_path, capsys):
    from avatar_forcing.cli import main
    from avatar_forcing.motion.vector import load_motion

    bad_motion = tmp_path / "bad.npz"
    np.savez(bad_motion, motion=np.zeros((10, 57), np.float32))
    with pytest.raises(InputError, match=r"shape \(frames, 58\)"):
        load_motion(bad_motion)
    assert main(["track", str(bad_motion), "-o", str(tmp_path / "m.npz")]) == 2
    assert main(["track", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err
    assert "cannot open video" in err and "not found" in err and "Traceback" not in err


def test_left_is_the_subjects_left_and_flip_swaps(tracker, astronaut):
    obs = tracker.track_frame(astronaut)
    eye = obs.landmarks[[263, 362, 386, 374]]  # the subject's left eye: image right, unmirrored
    assert eye[:, 0].mean() > obs.landmarks[:, 0].mean()
    covered = astronaut.copy()
    skin = tuple(int(v) for v in astronaut[int(obs.landmarks[425, 1]), int(obs.landmarks[425, 0])])
    half_width = int(abs(eye[0, 0] - eye[1, 0]) * 0.7)
    cv2.ellipse(covered, (int(eye[:, 0].mean()), int(eye[:, 1].mean())), (half_width, 7), 0, 0, 360, skin, -1)
    a = tracker.track_frame(covered)
    b = tracker.track_frame(np.ascontiguousarray(covered[:, ::-1]))
    left, right = idx("eyeBlinkLeft"), idx("eyeBlinkRight")
    assert a.motion[left] - a.motion[right] > 0.08
    assert b.motion[right] - b.motion[left] > 0.05

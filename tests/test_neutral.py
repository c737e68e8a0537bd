"""The one neutral: rests of a clip and of a live user, and the user condition relative to the user's rest."""

import numpy as np
import pytest

from avatar_forcing.motion.neutral import OnlineRest, RestConfig, clip_relative, rest_of_track, to_relative
from avatar_forcing.motion.vector import MOTION_DIM, MotionStats, idx


def resting_person(frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A person with a resting smile, squint and a head tilt, who sometimes smiles broadly and blinks."""
    rng = np.random.default_rng(seed)
    rest = np.zeros(MOTION_DIM, np.float32)
    rest[[idx("mouthSmileLeft"), idx("mouthSmileRight")]] = 0.4
    rest[[idx("eyeSquintLeft"), idx("eyeSquintRight")]] = 0.2
    rest[idx("roll")], rest[idx("ty")], rest[idx("log_scale")] = 0.15, -1.2, -0.8  # framing, tilt
    motion = np.repeat(rest[None], frames, 0) + rng.normal(0, 0.005, (frames, MOTION_DIM)).astype(np.float32)
    smiles = rng.random(frames) < 0.15
    motion[smiles, idx("mouthSmileLeft")] += 0.5
    motion[smiles, idx("mouthSmileRight")] += 0.5
    blinks = rng.random(frames) < 0.05
    motion[blinks, idx("eyeBlinkLeft")] = motion[blinks, idx("eyeBlinkRight")] = 0.9
    return motion, rest


def test_rest_of_a_clip_is_its_relaxed_face_not_its_mean():
    motion, rest = resting_person(500)
    got = rest_of_track(motion)
    np.testing.assert_allclose(got, rest, atol=0.02)  # smiles and blinks do not move it ...
    assert motion[:, idx("mouthSmileLeft")].mean() > rest[idx("mouthSmileLeft")] + 0.05  # ... the mean would
    relative = to_relative(motion, got)
    assert abs(np.median(relative[:, idx("roll")])) < 0.01 and abs(np.median(relative[:, idx("ty")])) < 0.01


def test_online_rest_converges_to_the_clips_rest_and_starts_at_the_first_frame():
    motion, rest = resting_person(600, seed=1)
    online = OnlineRest()
    first = online.update(motion[0])
    assert not first.any()  # the first frame is the rest until more arrive
    out = np.stack([online.update(m) for m in motion[1:]])
    np.testing.assert_allclose(online.rest, rest, atol=0.02)
    calm = out[-200:][motion[-200:, idx("mouthSmileLeft")] < 0.45]  # resting frames read as rest
    assert np.abs(calm[:, idx("mouthSmileLeft")]).max() < 0.05
    smiling = out[-200:][motion[-200:, idx("mouthSmileLeft")] > 0.8]
    assert smiling[:, idx("mouthSmileLeft")].min() > 0.4  # a broad smile reads as one


def test_online_rest_forgets_beyond_its_window():
    cfg = RestConfig(window_s=2.0)
    online = OnlineRest(cfg)
    a, b = np.zeros(MOTION_DIM, np.float32), np.zeros(MOTION_DIM, np.float32)
    b[idx("yaw")] = 0.3  # the user moved their chair: a new resting pose
    for _ in range(100):
        online.update(a)
    for _ in range(int(cfg.window_s * cfg.fps) + cfg.refresh_frames):
        last = online.update(b)
    assert abs(last[idx("yaw")]) < 1e-6


def test_relative_pose_removes_a_resting_bias_and_keeps_expressions_and_nods():
    """The avatar's head is rendered relative to its running rest: a model that rests with its head raised
    renders the portrait's pose, while a nod and a smile on top of that bias come through whole."""
    frames = 300
    motion = np.zeros((frames, MOTION_DIM), np.float32)
    motion[:, idx("pitch")] = -0.03  # the model's resting bias
    motion[200:210, idx("pitch")] += 0.12  # a nod
    motion[100:140, idx("mouthSmileLeft")] = 0.6
    out = OnlineRest().relative_pose(motion)
    assert out.shape == motion.shape and not np.shares_memory(out, motion)
    assert np.abs(out[50:200, idx("pitch")]).max() < 1e-6  # rests at the portrait's pitch
    np.testing.assert_allclose(out[200:210, idx("pitch")], 0.12, atol=1e-6)  # the nod, whole
    np.testing.assert_array_equal(out[:, idx("mouthSmileLeft")], motion[:, idx("mouthSmileLeft")])


def test_relative_ranges_are_clipped():
    m = np.full(MOTION_DIM, 5.0, np.float32)
    clipped = clip_relative(m)
    assert clipped.max() <= 1.0 and clip_relative(-m).min() >= -1.0


def test_bad_input_is_rejected():
    with pytest.raises(ValueError):
        rest_of_track(np.zeros((0, MOTION_DIM)))


def test_a_webcam_user_at_rest_is_a_resting_user_condition(astronaut):
    """The user condition of a session is the user's motion around their own rest: a smiling photo held
    up to the webcam gives no smile."""
    from avatar_forcing.stream.options import SessionOptions
    from avatar_forcing.stream.session import AvatarSession
    from tests.test_session import small_model

    session = AvatarSession(model=small_model(), stats=MotionStats(),
                            options=SessionOptions(render=False, nfe=1),
                            reference_motion=np.zeros(MOTION_DIM, np.float32))
    try:
        for k in range(6):
            session.push_user_frame(astronaut, timestamp=k / 25)
        raw, present = session.user_motion.take(0, 5)
        assert present.all()
        smile = raw[:, [idx("mouthSmileLeft"), idx("mouthSmileRight")]]
        assert np.abs(smile).max() < 0.05  # her tracked smile (0.9) is her rest: relative zero
        assert np.abs(raw).max() < 0.1  # and so is everything else, to the tracker's jitter
        assert session.user_rest.rest[idx("mouthSmileLeft")] > 0.5
    finally:
        session.close()

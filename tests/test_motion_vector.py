import numpy as np
import pytest

from avatar_forcing.errors import InputError
from avatar_forcing.motion import vector as mv


def test_names_and_dims():
    assert mv.MOTION_DIM == 58 and len(mv.BLENDSHAPE_NAMES) == 52 and len(set(mv.MOTION_NAMES)) == 58
    assert mv.idx("jawOpen") == 25 and mv.idx("log_scale") == 57
    with pytest.raises(KeyError):
        mv.idx("tongueOut")


def test_save_load_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 1, (30, 58)).astype(np.float32)
    mask = rng.uniform(size=30) > 0.2
    track = mv.MotionTrack(values, 25.0, mask)
    with pytest.raises(InputError, match="relative"):  # files hold relative motion only
        mv.save_motion(tmp_path / "m.npz", track)
    relative = track.relative_to_rest()
    mv.save_motion(tmp_path / "m.npz", relative)
    back = mv.load_motion(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.values, relative.values)
    np.testing.assert_array_equal(back.rest, relative.rest)
    np.testing.assert_array_equal(back.mask, mask)
    np.testing.assert_allclose(back.values + back.rest, values, atol=1e-6)
    assert back.fps == 25.0


def test_version_1_files_of_absolute_motion_load_relative(tmp_path):
    values = np.random.default_rng(1).uniform(0, 1, (40, 58)).astype(np.float32)
    np.savez(tmp_path / "old.npz", motion=values, fps=np.float32(25), version=np.int32(1))
    back = mv.load_motion(tmp_path / "old.npz")
    np.testing.assert_allclose(back.values + back.rest, values, atol=1e-6)


def test_wrong_shape_and_garbage_are_clear_errors(tmp_path):
    np.savez(tmp_path / "bad.npz", motion=np.zeros((10, 57), np.float32))
    with pytest.raises(InputError, match="shape"):
        mv.load_motion(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot read"):
        mv.load_motion(tmp_path / "junk.npz")
    with pytest.raises(InputError, match="NaN"):
        mv.validate_motion(np.full((2, 58), np.nan))


def test_stats_normalize_inverse():
    rng = np.random.default_rng(1)
    arrays = [rng.normal(2.0, 3.0, (100, 58)) for _ in range(3)]
    stats = mv.MotionStats.from_arrays(arrays)
    x = arrays[0].astype(np.float32)
    np.testing.assert_allclose(stats.denormalize(stats.normalize(x)), x, atol=1e-5)
    back = mv.MotionStats.from_dict(stats.to_dict())
    np.testing.assert_array_equal(back.mean, stats.mean)


def test_user_condition_zeroes_what_the_corpus_never_moves_and_bounds_the_rest():
    """A real face moves channels the corpus never moves (std at the floor): those reach the model as 0;
    the rest is clipped, never 100 sigma."""
    std = np.full(mv.MOTION_DIM, 0.1, np.float32)
    std[mv.idx("browDownLeft")] = mv.MotionStats.MIN_STD  # never moved in the corpus
    stats = mv.MotionStats(np.zeros(mv.MOTION_DIM, np.float32), std)
    user = np.zeros((3, mv.MOTION_DIM), np.float32)
    user[0, mv.idx("mouthSmileLeft")] = 0.2    # 2 sigma: passes as it is
    user[1, mv.idx("mouthSmileLeft")] = 0.9    # 9 sigma: clipped
    user[:, mv.idx("browDownLeft")] = 0.1      # would read 100 sigma
    user[2, mv.idx("yaw")] = -0.5              # 5 sigma the other way
    z = stats.normalize_condition(user)
    assert z[0, mv.idx("mouthSmileLeft")] == pytest.approx(2.0)
    assert z[1, mv.idx("mouthSmileLeft")] == mv.CONDITION_CLIP
    assert z[2, mv.idx("yaw")] == -mv.CONDITION_CLIP
    assert not z[:, mv.idx("browDownLeft")].any()
    assert np.abs(z).max() <= mv.CONDITION_CLIP

"""The head settles when nobody has spoken for a while (stream/settle.py): the silence count, the pull towards
the rest, and a session that settles its head but leaves its expressions and its speech alone."""

import numpy as np
import pytest
import torch
from test_session import SR, drain, make_session, motion_of, speech

from avatar_forcing.audio.features import FEATURE_DIM
from avatar_forcing.errors import ConfigError
from avatar_forcing.model.sampler import pull_pose_to_rest
from avatar_forcing.motion.vector import BLENDSHAPE_SLICE, POSE_SLICE, idx
from avatar_forcing.stream.options import SessionOptions, settle_after
from avatar_forcing.stream.settle import Settle, SettleConfig


def features(voice: list[bool]) -> np.ndarray:
    """Log-mel frames: silence (-1) or a voice (0)."""
    return np.where(np.asarray(voice)[:, None], 0.0, -1.0) * np.ones((1, FEATURE_DIM))


def test_settle_starts_once_both_voices_have_been_silent_long_enough():
    settle = Settle(SettleConfig(after_s=0.2, time_constant_s=0.25))  # 5 frames
    k, quiet, still = settle.keep_per_frame, features([False] * 10), np.zeros((10, 58))
    assert 0 < k < 1
    np.testing.assert_array_equal(settle.keep(quiet, quiet, still, 10), k)  # nobody there yet: at rest
    user = features([True] * 3 + [False] * 7)
    np.testing.assert_array_equal(settle.keep(quiet, user, still, 10), [1] * 7 + [k] * 3)  # 5 silent first
    np.testing.assert_array_equal(settle.keep(quiet, quiet, still, 10), k)  # the count goes on across blocks
    avatar = features([False] * 4 + [True] + [False] * 5)  # the avatar's own voice counts too
    np.testing.assert_array_equal(settle.keep(avatar, quiet, still, 10), [k] * 4 + [1] * 5 + [k])
    # only the kept frames move the count on: a voice in the overlap is heard again in the next block
    late = features([False] * 5 + [True] * 5)
    np.testing.assert_array_equal(settle.keep(quiet, late, still, 5), [k] * 5 + [1] * 5)
    np.testing.assert_array_equal(settle.keep(quiet, quiet, still, 10), k)
    settle.reset()
    np.testing.assert_array_equal(settle.keep(quiet, quiet, still, 10), k)


def test_a_silent_user_who_moves_their_head_keeps_the_avatars_head_free():
    """The user's head rests when over the last user_window_s (5 frames here) each angle's std stays under
    1 deg; the silence count restarts at every frame where it does not. A smile alone does not count."""
    cfg = SettleConfig(after_s=0.2, time_constant_s=0.25, user_window_s=0.2)
    quiet, still = features([False] * 10), np.zeros((10, 58))
    nodding = still.copy()
    nodding[:, POSE_SLICE.start] = np.radians(3.0) * (-1.0) ** np.arange(10)  # pitch +-3 deg
    smiling = still.copy()
    smiling[:, [idx("mouthSmileLeft"), idx("mouthSmileRight")]] = 0.6
    # one frame shows no motion yet; frames 10-13 still see the swing; 5 quiet frames from 14 on
    settle = Settle(cfg)
    keep = np.concatenate([settle.keep(quiet, quiet, nodding, 10), settle.keep(quiet, quiet, still, 10)])
    expected = np.full(20, settle.keep_per_frame)
    expected[1:18] = 1.0
    np.testing.assert_array_equal(keep, expected)
    np.testing.assert_array_equal(Settle(cfg).keep(quiet, quiet, smiling, 10), settle.keep_per_frame)


def test_pull_moves_only_the_head_pose_towards_the_rest():
    gen = torch.Generator().manual_seed(0)
    x, rest = torch.randn(2, 6, 58, generator=gen), torch.randn(2, 58, generator=gen)
    pulled = pull_pose_to_rest(x, rest, torch.full((6,), 0.5))
    torch.testing.assert_close(pulled[..., BLENDSHAPE_SLICE], x[..., BLENDSHAPE_SLICE])
    factor = 0.5 ** torch.arange(1, 7.0)[None, :, None]
    rest_pose = rest[:, None, POSE_SLICE]
    torch.testing.assert_close(pulled[..., POSE_SLICE] - rest_pose, (x[..., POSE_SLICE] - rest_pose) * factor)
    torch.testing.assert_close(pull_pose_to_rest(x, rest, torch.ones(6)), x)
    with pytest.raises(ConfigError, match="58-d"):
        pull_pose_to_rest(x[..., :20], rest[:, :20], torch.ones(6))


def test_a_silent_session_settles_its_head_and_keeps_its_expressions():
    runs = {}
    for settle in (None, 2.0):
        session = make_session(settle_after_s=settle)
        session.advance_to(4.0)
        session.finish()
        runs[settle] = motion_of(drain(session))
    free, settled = runs[None], runs[2.0]
    assert free.shape == settled.shape == (100, 58)
    # the first block's expressions are the model's own (the pull changes the head only)
    np.testing.assert_array_equal(settled[:10, BLENDSHAPE_SLICE], free[:10, BLENDSHAPE_SLICE])
    # a block's last frame keeps exp(-10 / 6.25) = 0.2 of the sampled offset (a random model does not
    # continue its past, so each block starts off the rest again)
    last = lambda m: np.abs(m[29::10, POSE_SLICE]).mean()  # noqa: E731
    assert last(settled) < 0.35 * last(free)


def test_a_voice_keeps_the_head_as_generated_until_the_silence_is_long_enough():
    runs = {}
    for settle in (None, 0.8):
        session = make_session(settle_after_s=settle)
        session.push_avatar_audio(np.concatenate([speech(1.2), np.zeros(int(1.8 * SR), np.float32)]), SR)
        session.finish()
        runs[settle] = motion_of(drain(session))
    free, settled = runs[None], runs[0.8]
    np.testing.assert_array_equal(settled[:48], free[:48])  # speech to 1.17 s, then under 0.8 s of silence
    assert not np.array_equal(settled[60:, POSE_SLICE], free[60:, POSE_SLICE])


def test_settle_options_are_checked():
    assert settle_after("off") is None and settle_after("1.5") == 1.5
    with pytest.raises(ValueError, match="seconds or 'off'"):
        settle_after("soon")
    for bad in ({"settle_after_s": -1.0}, {"settle_time_constant_s": 0.0}):
        with pytest.raises(ConfigError):
            SessionOptions(**bad).validate()

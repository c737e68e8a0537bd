"""Input buffers of the streaming session: validation, downmixing, placement on the timeline, trimming."""

import numpy as np
import pytest

from avatar_forcing.errors import InputError
from avatar_forcing.stream.inputs import (
    FRAME_SAMPLES,
    AudioInput,
    MotionInput,
    check_sample_rate,
    check_timestamp,
    to_mono_float,
)


def test_to_mono_float_scales_and_downmixes():
    stereo = np.stack([np.full(100, 16384, np.int16), np.full(100, -16384, np.int16)], axis=1)
    assert np.allclose(to_mono_float(stereo), 0.0)
    assert np.allclose(to_mono_float(stereo[:, 0]), 0.5)
    channels_first = np.stack([np.full(100, 0.5, np.float32), np.full(100, 0.25, np.float32)])
    assert np.allclose(to_mono_float(channels_first), 0.375)
    assert np.allclose(to_mono_float(np.full(10, 192, np.uint8)), 0.5)


@pytest.mark.parametrize("bad", [
    np.array([0.1, np.nan], np.float32),
    np.array([np.inf, 0.0]),
    np.array(["a", "b"]),
    np.array([True, False]),
    np.zeros((2, 3, 4), np.float32),
    np.zeros((100, 100), np.float32),
])
def test_to_mono_float_rejects(bad):
    with pytest.raises(InputError):
        to_mono_float(bad)


@pytest.mark.parametrize("rate", [0, -16000, 16000.5, "16k", True, 10**7])
def test_bad_sample_rates(rate):
    with pytest.raises(InputError):
        check_sample_rate(rate)


@pytest.mark.parametrize("t", [-1.0, float("nan"), float("inf"), "x", 1.7e9])
def test_bad_timestamps(t):
    with pytest.raises(InputError):
        check_timestamp(t, "frame")


def test_audio_input_chunking_is_invisible():
    rng = np.random.default_rng(0)
    pcm = rng.uniform(-1, 1, 10 * FRAME_SAMPLES).astype(np.float32)
    whole, pieces = AudioInput(), AudioInput()
    whole.push(pcm)
    cuts = [0, 7, 700, 701, 3000, len(pcm)]
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        pieces.push(pcm[a:b])
    for stream in (whole, pieces):
        assert stream.end_frame == 10
    got = [s.take(0, 4)[0] for s in (whole, pieces)] + [s.take(4, 10)[0] for s in (whole, pieces)]
    assert np.array_equal(got[0], got[1]) and np.array_equal(got[2], got[3])
    assert np.array_equal(np.concatenate([got[0], got[2]]), pcm)
    assert whole.chunks == [] and pieces.chunks == []  # trimmed once committed


def test_audio_input_gap_and_late_data():
    stream = AudioInput()
    stream.push(np.ones(FRAME_SAMPLES, np.float32))                      # frame 0
    stream.push(np.ones(FRAME_SAMPLES, np.float32), at_sample=3 * FRAME_SAMPLES)  # frame 3, gap at 1-2
    pcm, coverage = stream.take(0, 4)
    assert coverage.tolist() == [1.0, 0.0, 0.0, 1.0]
    assert pcm[FRAME_SAMPLES: 3 * FRAME_SAMPLES].max() == 0.0
    stream.push(np.ones(FRAME_SAMPLES, np.float32), at_sample=0)         # in the past: dropped
    assert stream.dropped_samples == FRAME_SAMPLES and stream.chunks == []


def test_untimestamped_audio_after_a_dry_spell_starts_now():
    stream = AudioInput()
    stream.take(0, 5)  # five frames committed with nothing queued (the avatar was silent)
    stream.push(np.ones(FRAME_SAMPLES, np.float32))
    _, coverage = stream.take(5, 6)
    assert coverage.tolist() == [1.0]


def test_motion_input_hold_gap_and_order():
    motion = MotionInput(max_gap_s=0.1)
    row = np.ones(58, np.float32)
    assert motion.add(0.0, row, 0)
    assert not motion.add(0.0, row, 0)          # same timestamp again: out of order
    assert motion.add(0.5, None, 0)             # a frame with no face
    assert motion.add(1.0, 2 * row, 0)
    values, present = motion.take(0, 26)
    # held for max_gap_s (+ one frame) after t=0, then absent, then the no-face frame, then t=1.0
    assert present[:3].all() and not present[4:25].any() and present[25]
    assert values[25, 0] == 2.0 and values[10].sum() == 0.0
    assert motion.dropped == 1 and len(motion.times) == 1


def test_motion_rows_continue_at_25fps():
    motion = MotionInput(max_gap_s=0.5)
    rows = np.arange(5 * 58, dtype=np.float32).reshape(5, 58)
    motion.add_rows(rows[:2], None, 0)
    motion.add_rows(rows[2:], None, 0)
    assert motion.end_frame == 5
    values, present = motion.take(0, 5)
    assert present.all() and np.array_equal(values, rows)
    with pytest.raises(InputError):
        motion.add_rows(np.full((2, 58), np.nan), None, 0)

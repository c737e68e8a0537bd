"""Round trip: relative motion rendered onto the astronaut is read back by MediaPipe, relative to what it
reads on the photo (loose bounds, few frames; `avatar-forcing eval roundtrip` has the full table)."""

import numpy as np
import pytest

from avatar_forcing.eval.roundtrip import SWEEPS, RoundtripConfig, sweep_track
from avatar_forcing.motion.renderer import PortraitRenderer
from avatar_forcing.motion.tracker import FaceTracker
from avatar_forcing.motion.vector import MOTION_DIM, idx


@pytest.fixture(scope="module")
def renderer(astronaut):
    return PortraitRenderer(astronaut)


def read_back(renderer, asked: np.ndarray) -> np.ndarray:
    with FaceTracker(mode="image") as tracker:
        frames = renderer.render_many(asked)
        return np.stack([tracker.track_frame(f).motion for f in frames]) - renderer.rest_motion


def test_jaw_blink_and_yaw_read_back_in_the_asked_direction(renderer):
    asked = np.zeros((6, MOTION_DIM), np.float32)
    asked[:, idx("jawOpen")] = np.linspace(0, 0.5, 6)
    asked[:, idx("eyeBlinkLeft")] = asked[:, idx("eyeBlinkRight")] = np.linspace(0, 1.0, 6)[::-1]
    asked[:, idx("yaw")] = np.radians(np.linspace(-12, 12, 6))
    read = read_back(renderer, asked)
    for name in ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "yaw"):
        assert np.corrcoef(asked[:, idx(name)], read[:, idx(name)])[0, 1] > 0.8, name
    assert np.abs(np.degrees(read[:, idx("yaw")] - asked[:, idx("yaw")])).mean() < 5.0


def test_a_smile_below_the_portraits_own_reads_lower(renderer):
    asked = np.zeros((2, MOTION_DIM), np.float32)
    asked[1, [idx("mouthSmileLeft"), idx("mouthSmileRight")]] = -0.6  # the astronaut smiles at rest
    read = read_back(renderer, asked)
    assert (read[1, [idx("mouthSmileLeft"), idx("mouthSmileRight")]] < read[0, idx("mouthSmileLeft")]).all()


def test_sweep_track_sweeps_one_control_at_a_time_from_rest():
    track, segments = sweep_track(RoundtripConfig(frames_per_control=8))
    seg = track[segments["jawOpen"]]
    assert seg[:, idx("jawOpen")].max() == pytest.approx(SWEEPS[("jawOpen",)][1])
    assert not np.delete(seg, idx("jawOpen"), 1).any()  # everything else at rest
    smile = track[segments["mouthSmileLeft"], idx("mouthSmileLeft")]
    assert smile.min() < 0 < smile.max()  # below and above the portrait's own smile

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
    n = 6
    asked = np.zeros((2 * n, MOTION_DIM), np.float32)
    # the jaw alone, within the astronaut's own travel (her lips part at rest: RigConfig.jaw_min_travel),
    # where MediaPipe reads little of it and a blink or a turn would drown it
    jaw = slice(0, n)
    asked[jaw, idx("jawOpen")] = np.linspace(0, renderer.rig.bounds[1][idx("jawOpen")], n)
    rest = slice(n, 2 * n)
    asked[rest, idx("eyeBlinkLeft")] = asked[rest, idx("eyeBlinkRight")] = np.linspace(0, 1.0, n)[::-1]
    asked[rest, idx("yaw")] = np.radians(np.linspace(-12, 12, n))
    read = read_back(renderer, asked)
    for name, seg in (("jawOpen", jaw), ("eyeBlinkLeft", rest), ("eyeBlinkRight", rest), ("yaw", rest)):
        assert np.corrcoef(asked[seg, idx(name)], read[seg, idx(name)])[0, 1] > 0.8, name
    assert np.abs(np.degrees(read[rest, idx("yaw")] - asked[rest, idx("yaw")])).mean() < 5.0


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

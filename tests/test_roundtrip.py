"""Round trip: motion rendered onto the astronaut is read back by MediaPipe (loose bounds, few frames;
`avatar-forcing eval roundtrip` has the full table)."""

import numpy as np
import pytest

from avatar_forcing.eval.roundtrip import RoundtripConfig, sweep_track
from avatar_forcing.motion.renderer import PortraitRenderer
from avatar_forcing.motion.tracker import FaceTracker
from avatar_forcing.motion.vector import idx


@pytest.fixture(scope="module")
def renderer(astronaut):
    return PortraitRenderer(astronaut, 256)


def read_back(renderer, asked: np.ndarray) -> np.ndarray:
    with FaceTracker(mode="image") as tracker:
        return np.stack([tracker.track_frame(f).motion for f in renderer.render_many(asked)])


def test_jaw_blink_and_yaw_read_back_as_asked(renderer):
    asked = np.repeat(renderer.reference_motion[None], 6, 0)
    asked[:, idx("jawOpen")] = np.linspace(0, 0.3, 6)
    asked[:, idx("eyeBlinkLeft")] = asked[:, idx("eyeBlinkRight")] = np.linspace(0, 0.5, 6)[::-1]
    asked[:, idx("yaw")] += np.radians(np.linspace(-15, 15, 6))
    read = read_back(renderer, asked)
    for name in ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "yaw"):
        assert np.corrcoef(asked[:, idx(name)], read[:, idx(name)])[0, 1] > 0.8, name
    assert np.abs(read[:, idx("jawOpen")] - asked[:, idx("jawOpen")]).mean() < 0.1  # calibrated scale
    assert np.abs(np.degrees(read[:, idx("yaw")] - asked[:, idx("yaw")])).mean() < 4.0


def test_a_smile_below_the_portraits_own_reads_lower(renderer):
    asked = np.repeat(renderer.reference_motion[None], 2, 0)
    asked[1, [idx("mouthSmileLeft"), idx("mouthSmileRight")]] = 0.1  # the astronaut smiles 0.9 at rest
    read = read_back(renderer, asked)
    assert (read[1, [idx("mouthSmileLeft"), idx("mouthSmileRight")]] < 0.5).all()


def test_sweep_track_sweeps_one_control_at_a_time():
    rest = np.zeros(58, np.float32)
    rest[idx("mouthSmileLeft")] = rest[idx("mouthSmileRight")] = 0.9
    track, segments = sweep_track(rest, RoundtripConfig(frames_per_control=8))
    seg = track[segments["jawOpen"]]
    assert seg[:, idx("jawOpen")].max() > 0.2
    assert np.allclose(np.delete(seg, idx("jawOpen"), 1), np.delete(rest, idx("jawOpen"))[None])
    smile = track[segments["mouthSmileLeft"], idx("mouthSmileLeft")]
    assert smile.min() == 0.0 and smile.max() == 1.0  # -1..+1 around the resting smile, clipped

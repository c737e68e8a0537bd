"""The portrait renderer: identity, sizes, errors, calibration and a short round trip."""

import numpy as np
import pytest

from avatar_forcing.errors import InputError, NoFaceError
from avatar_forcing.motion.calibration import invert_sweep
from avatar_forcing.motion.renderer import PortraitRenderer
from avatar_forcing.motion.tracker import FaceTracker
from avatar_forcing.motion.vector import idx


@pytest.fixture(scope="module")
def renderer(astronaut):
    return PortraitRenderer(astronaut, 256)


def test_identity_motion_gives_back_the_aligned_portrait(renderer):
    frame = renderer.render(renderer.reference_motion)
    assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
    err = np.abs(frame.astype(float) - renderer.image.astype(float)).mean()
    assert err < 2.0, err  # mean absolute error in 8-bit levels


@pytest.mark.parametrize("size", [128, 384])
def test_any_square_size(astronaut, size):
    r = PortraitRenderer(astronaut, size)
    assert r.render(r.reference_motion).shape == (size, size, 3)


def test_grayscale_and_rgba_portraits_are_handled(tmp_path, astronaut):
    import cv2

    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    path = tmp_path / "gray.png"
    cv2.imwrite(str(path), gray)
    assert PortraitRenderer(path, 128).render_many(np.zeros((0, 58), np.float32)).shape == (0, 128, 128, 3)


def test_no_face_is_a_clear_error(no_face_image):
    with pytest.raises(NoFaceError):
        PortraitRenderer(no_face_image, 128)


def test_wrong_motion_shape_is_rejected(renderer):
    with pytest.raises(InputError):
        renderer.render(np.zeros(57, np.float32))


def test_open_jaw_paints_a_dark_mouth_interior(renderer):
    m = renderer.reference_motion.copy()
    m[idx("jawOpen")] = 0.3
    frame = renderer.render(m)
    changed = np.abs(frame.astype(int) - renderer.image.astype(int)).sum(-1) > 40
    assert changed.sum() > 200  # the lower face moved
    lips = renderer._face_xy[list(renderer._lower)].mean(0)
    upper = renderer._face_xy[list(renderer._upper)].mean(0)
    mid = ((lips + upper) / 2).astype(int)
    assert frame[mid[1], mid[0]].mean() < renderer.image[mid[1], mid[0]].mean()


def test_invert_sweep_is_monotone_and_stops_at_the_peak():
    reads, amounts = invert_sweep(np.array([0, 0.5, 1, 1.5, 2.0]), np.array([0, 0.1, 0.3, 0.2, 0.0]))
    assert amounts[-1] == 1.0 and np.all(np.diff(reads) > 0)


def test_short_round_trip(astronaut):
    """Asked jawOpen and yaw are read back by MediaPipe (loose bounds; `eval roundtrip` has the table)."""
    r = PortraitRenderer(astronaut, 256)
    asked = np.repeat(r.reference_motion[None], 8, 0)
    asked[:, idx("jawOpen")] = np.linspace(0, 0.3, 8)
    asked[:, idx("yaw")] += np.radians(np.linspace(-12, 12, 8))
    with FaceTracker(mode="image") as tracker:
        read = np.stack([tracker.track_frame(f).motion for f in r.render_many(asked)])
    assert np.corrcoef(asked[:, idx("jawOpen")], read[:, idx("jawOpen")])[0, 1] > 0.8
    assert np.abs(np.degrees(read[:, idx("yaw")] - asked[:, idx("yaw")])).mean() < 4.0

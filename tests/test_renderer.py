"""The portrait renderer: identity, sizes, errors, calibration, fold-overs, still background."""

import numpy as np
import pytest

from avatar_forcing.errors import InputError, NoFaceError
from avatar_forcing.motion.calibration import Calibration, invert_sweep
from avatar_forcing.motion.renderer import PortraitRenderer
from avatar_forcing.motion.vector import BLENDSHAPE_NAMES, idx


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


def test_invert_sweep_is_monotone_exact_at_zero_and_stops_at_the_peak():
    amounts = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0])
    reads, rig = invert_sweep(amounts, np.array([-0.2, -0.1, 0.05, 0.15, 0.35, 0.25, 0.1]))
    assert np.all(np.diff(reads) > 0) and rig[-1] == 1.0 and rig[0] == -1.0
    assert np.interp(0.0, reads, rig) == pytest.approx(0.0, abs=1e-4)  # rest reads as rest
    assert invert_sweep(amounts, np.full(7, 0.3)) is None  # the tracker does not read it: no curve


def test_calibration_is_identity_at_rest_and_cancels_cross_talk():
    rest = np.zeros(52)
    cal = Calibration({}, {"eyeBlinkLeft": {"eyeBlinkRight": 0.25}})
    assert np.abs(cal.rig_amounts(rest, rest)).max() < 1e-12
    asked = rest.copy()
    asked[BLENDSHAPE_NAMES.index("eyeBlinkLeft")] = 0.4
    own = cal.rig_amounts(asked, rest)
    # the left blink alone would read 0.1 on the right eye: the right lid is asked to open that much
    assert own[BLENDSHAPE_NAMES.index("eyeBlinkRight")] == pytest.approx(-0.1)
    assert Calibration.load_default().rig_amounts(rest, rest) == pytest.approx(rest, abs=1e-4)


def test_warp_unfolds_fold_overs_when_the_head_turns(renderer):
    m = renderer.reference_motion.copy()
    m[idx("yaw")] += np.radians(20)
    m[idx("jawOpen")] = 0.3
    w = renderer.warper
    raw = w.full_displacement(renderer.control_displacement(m))
    assert w.flipped(raw).any()  # the far cheek and the nose fold over in the dense mesh ...
    disp = w.unfold(raw)
    # ... and unfolding leaves at most a few sliver triangles
    assert w.folded_area(disp) < min(0.02 * w.folded_area(raw), 1e-3 * renderer.size**2)
    assert np.abs(disp[w.num_free :]).max() == 0.0  # the image border stays put
    m[idx("yaw")] = renderer.reference_motion[idx("yaw")] + np.radians(8)
    assert w.folded_area(w.unfold(w.full_displacement(renderer.control_displacement(m)))) < 2.0  # pixels


def test_background_stays_still_when_the_head_turns(renderer):
    m = renderer.reference_motion.copy()
    m[idx("yaw")] += np.radians(15)
    frame = renderer.render(m).astype(int)
    diff = np.abs(frame - renderer.image.astype(int)).sum(-1)
    assert diff[:8, :].mean() < 3 and diff[:, :8].mean() < 3  # top and left edges: background
    assert diff[100:160, 100:160].mean() > 10  # the face moved

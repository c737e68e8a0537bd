"""The portrait renderer: the neutral, framing, symmetry, bounds, bad portraits, fold-overs, still
background."""

import cv2
import numpy as np
import pytest

from avatar_forcing.errors import InputError, NoFaceError
from avatar_forcing.motion.renderer import PortraitRenderer, RenderConfig
from avatar_forcing.motion.rig import MOUTH_CORNERS, FaceRig
from avatar_forcing.motion.vector import BLENDSHAPE_NAMES, MOTION_DIM, NUM_BLENDSHAPES, idx

REST = np.zeros(MOTION_DIM, np.float32)


def ask(**values: float) -> np.ndarray:
    m = REST.copy()
    for name, v in values.items():
        m[idx(name)] = v
    return m


@pytest.fixture(scope="module")
def renderer(astronaut):
    return PortraitRenderer(astronaut)


def test_rest_renders_the_portrait_unchanged(renderer, astronaut):
    frame = renderer.render(REST)
    assert frame.shape == astronaut.shape and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, astronaut)  # bit for bit: no crop, zoom, painted teeth or lids


def test_a_small_ask_is_a_small_change(renderer):
    """No tracker inversion blows a small ask up: a 0.05 ask of any control moves a landmark by little."""
    rest = renderer.face_landmarks(REST)
    for name in BLENDSHAPE_NAMES:
        moved = renderer.face_landmarks(ask(**{name: 0.05}))
        assert np.abs(moved - rest).max() < 0.02 * renderer.face_width, name


@pytest.mark.parametrize("shape", [(400, 300), (512, 512), (768, 1024)])
def test_the_output_has_the_photos_size_and_framing(astronaut, shape):
    photo = cv2.resize(astronaut, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    r = PortraitRenderer(photo)
    frame = r.render(ask(jawOpen=0.3, yaw=0.1))
    assert frame.shape == photo.shape
    far = np.ones(shape, bool)
    far[r.region] = False  # outside the warped region the photo is untouched
    np.testing.assert_array_equal(frame[far], photo[far])


def test_a_face_filling_the_frame_and_a_small_face_in_a_large_painting(astronaut, astronaut_face):
    full = PortraitRenderer(astronaut_face)  # the face fills most of a 256^2 frame
    assert full.render(ask(jawOpen=0.4)).shape == astronaut_face.shape
    canvas = np.zeros((1000, 1400, 3), np.uint8)
    canvas[:] = np.linspace(40, 200, 1400, dtype=np.uint8)[None, :, None]  # a plain "painting"
    canvas[300:812, 700:1212] = astronaut
    small = PortraitRenderer(canvas)
    frame = small.render(ask(jawOpen=0.4, mouthSmileLeft=0.5, mouthSmileRight=0.5))
    assert frame.shape == canvas.shape
    centre = small.landmarks_full[:, :2].mean(0)
    assert np.abs(centre - [700 + 224, 300 + 123]).max() < 10  # found where it is, animated in place
    rows, cols = small.region
    assert (rows.stop - rows.start) * (cols.stop - cols.start) < 0.1 * canvas.shape[0] * canvas.shape[1]
    np.testing.assert_array_equal(frame[:rows.start], canvas[:rows.start])


def test_max_side_scales_the_photo_once(astronaut):
    r = PortraitRenderer(astronaut, RenderConfig(max_side=256))
    assert r.render(REST).shape == (256, 256, 3)


def test_rig_is_symmetric_by_construction(renderer):
    rig = renderer.rig
    corner_r, corner_l = MOUTH_CORNERS["R"][0], MOUTH_CORNERS["L"][0]
    for pair in ("mouthSmile", "mouthStretch", "mouthFrown"):
        left = rig.basis[BLENDSHAPE_NAMES.index(pair + "Left")]
        right = rig.basis[BLENDSHAPE_NAMES.index(pair + "Right")]
        # mirrored: the same vertical move, opposite horizontal moves in the face frame, each half's
        # foreshortened by its share of the mouth's width (1 on a frontal face, RigConfig.foreshortening)
        assert left[corner_l] @ rig.ey == pytest.approx(right[corner_r] @ rig.ey, rel=1e-6)
        out_l = left[corner_l] @ rig.ex / rig.side_scale["L"]
        out_r = right[corner_r] @ rig.ex / rig.side_scale["R"]
        assert out_l == pytest.approx(-out_r, rel=1e-6, abs=1e-9)
    # lids move by the same fraction of each eye's own opening
    for pair in ("eyeBlink", "eyeSquint", "eyeWide"):
        frac = []
        for side, suffix in (("R", "Right"), ("L", "Left")):
            up, gap = rig._lids(side)
            field = rig.basis[BLENDSHAPE_NAMES.index(pair + suffix)][up] @ rig.ey
            frac.append(field / np.maximum(gap, 1e-9))
        np.testing.assert_allclose(frac[0], frac[1], rtol=1e-6, atol=1e-9)


def test_every_control_is_bounded(renderer):
    """Beyond a control's limit nothing more happens, and the mouth never becomes a snout."""
    for name in BLENDSHAPE_NAMES:
        assert np.allclose(renderer.face_landmarks(ask(**{name: 1.0})),
                           renderer.face_landmarks(ask(**{name: 5.0}))), name
    low, high = renderer.rig.cfg.bounds()
    assert (low <= 0).all() and (high > 0).all() and len(low) == NUM_BLENDSHAPES
    xy = renderer.face_landmarks(ask(mouthPucker=1.0, mouthFunnel=1.0))
    width = np.linalg.norm(xy[MOUTH_CORNERS["L"][0]] - xy[MOUTH_CORNERS["R"][0]])
    assert width >= 0.6 * renderer.rig.mouth_width  # real mouths reach 0.53-0.88 (1st pct., DATA.md)


def test_rig_units_are_the_portraits_own(astronaut):
    """The same ask moves a wide mouth and a narrow one by the same fraction of their own widths."""
    from avatar_forcing.motion.tracker import track_image

    lm = track_image(astronaut).landmarks.astype(np.float64)
    wide = lm.copy()
    centre = lm[:, :2].mean(0)
    mouth = [i for i in range(len(lm)) if lm[i, 1] > lm[2, 1]]  # below the nose
    wide[mouth, 0] = centre[0] + 1.3 * (lm[mouth, 0] - centre[0])  # a wider lower face
    ratios = []
    for points in (lm, wide):
        rig = FaceRig(points)
        field = rig.basis[BLENDSHAPE_NAMES.index("mouthPucker")]
        inward = np.linalg.norm(field[MOUTH_CORNERS["L"][0]])
        ratios.append(inward / (rig.mouth_width * rig.side_scale["L"]))  # that half's own width
    # (the other corner's field reaches this one with a weight of ~0.01, scaled by the other half's share)
    assert ratios[0] == pytest.approx(ratios[1], rel=1e-3)


def test_bad_portraits_get_clear_errors(no_face_image, astronaut, tmp_path):
    with pytest.raises(NoFaceError):
        PortraitRenderer(no_face_image)
    tiny = cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA)  # face ~22 px wide
    with pytest.raises(NoFaceError, match="px"):
        PortraitRenderer(tiny)
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    path = tmp_path / "gray.png"
    cv2.imwrite(str(path), gray)
    assert PortraitRenderer(path).render_many(np.zeros((0, 58), np.float32)).shape == (0, 512, 512, 3)


def test_several_faces_animate_the_largest(astronaut):
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    group = np.zeros((512, 768, 3), np.uint8)
    group[:, :512], group[128:384, 512:] = astronaut, small
    r = PortraitRenderer(group)
    assert r.landmarks_full[:, 0].mean() < 512  # the big face, on the left
    frame = r.render(ask(jawOpen=0.4))
    np.testing.assert_array_equal(frame[:, 560:], group[:, 560:])  # the other face is left alone


def test_a_huge_photo_is_scaled_to_max_side(astronaut):
    huge = cv2.resize(astronaut, (2400, 2400), interpolation=cv2.INTER_CUBIC)
    r = PortraitRenderer(huge, RenderConfig(max_side=600))
    assert r.render(ask(jawOpen=0.2)).shape == (600, 600, 3)


def test_wrong_motion_shape_is_rejected(renderer):
    with pytest.raises(InputError):
        renderer.render(np.zeros(57, np.float32))


def test_open_jaw_paints_a_dark_mouth_interior(renderer):
    m = ask(jawOpen=0.4)
    frame = renderer.render(m)
    changed = np.abs(frame.astype(int) - renderer.image.astype(int)).sum(-1) > 40
    assert changed.sum() > 100  # the lower face moved
    xy = renderer.face_landmarks(m)
    mid = ((xy[list(renderer._lower)].mean(0) + xy[list(renderer._upper)].mean(0)) / 2).astype(int)
    assert frame[mid[1], mid[0]].mean() < renderer.image[mid[1], mid[0]].mean()


def test_open_jaw_does_not_fold_the_lips(renderer):
    # a lip ring lagging behind the rest of the lip folds the mesh and drags the photo's dark corner
    # pixels out beside the painted opening
    w = renderer.warper
    for amount in (0.3, 0.5):
        raw = w.full_displacement(renderer.control_displacement(ask(jawOpen=amount))[0])
        assert w.folded_area(raw) < 5.0


def test_warp_unfolds_fold_overs_when_the_head_turns(renderer):
    m = ask(yaw=np.radians(20), jawOpen=0.3)
    w = renderer.warper
    raw = w.full_displacement(renderer.control_displacement(m)[0])
    disp = w.unfold(raw)
    area = w.height * w.width
    assert w.folded_area(disp) <= min(0.05 * w.folded_area(raw) + 1.0, 1e-3 * area)
    assert np.abs(disp[w.num_free :]).max() == 0.0  # the region's border stays put
    small = ask(yaw=np.radians(8))
    assert w.folded_area(w.unfold(w.full_displacement(renderer.control_displacement(small)[0]))) < 2.0


def test_background_stays_still_when_the_head_turns(renderer):
    frame = renderer.render(ask(yaw=np.radians(15))).astype(int)
    diff = np.abs(frame - renderer.image.astype(int)).sum(-1)
    assert diff[:, :8].mean() < 3 and diff[-8:, :].mean() < 3  # left and bottom edges: background
    x, y = renderer.landmarks_full[:, :2].mean(0).astype(int)
    assert diff[y - 20 : y + 20, x - 20 : x + 20].mean() > 10  # the face moved


def test_the_painted_lid_takes_the_skin_not_the_crease_shadow():
    """Half of the lid-skin patch is a dark crease shadow or brow: the painted lid gets the skin's colour."""
    from avatar_forcing.motion.eyes import EyelidConfig, eye_look

    skin, shadow = np.array([200, 160, 140], np.uint8), np.array([70, 45, 35], np.uint8)
    image = np.broadcast_to(skin, (200, 200, 3)).copy()
    face_width, cfg = 200.0, EyelidConfig()
    upper = np.stack([np.linspace(80, 120, 7), np.full(7, 100.0)], 1)
    lower = upper + [0.0, 8.0]
    centre_y = int(100 - cfg.skin_offset * face_width)
    image[: centre_y + 1] = shadow  # everything above the patch's middle row, the middle row included
    look = eye_look(image, upper, lower, face_width, cfg)
    np.testing.assert_allclose(look.skin, skin, atol=2.0)


def test_painted_teeth_take_the_hue_of_the_eye_whites_beside_the_iris_if_they_are_whites():
    """A yellowed painting's eye whites yellow its painted teeth; the iris and a shadowed (too dark) sample
    do not count, and teeth are never made brighter than their white."""
    from avatar_forcing.motion.eyes import eye_look
    from avatar_forcing.motion.mouth import MouthConfig, mouth_look

    sclera, iris_rgb = np.array([200, 170, 100], np.uint8), np.array([40, 60, 120], np.uint8)
    image = np.broadcast_to(np.array([190, 150, 110], np.uint8), (200, 200, 3)).copy()
    upper = np.stack([np.linspace(60, 140, 9), 100 - 12 * np.sin(np.linspace(0, np.pi, 9))], 1)
    lower = np.stack([np.linspace(60, 140, 9), 100 + 10 * np.sin(np.linspace(0, np.pi, 9))], 1)
    cv2.fillPoly(image, [np.round(np.concatenate([upper, lower[::-1]])).astype(np.int32)], sclera.tolist())
    cv2.circle(image, (100, 100), 9, iris_rgb.tolist(), -1)
    rim = np.array([[100, 100], [109, 100], [100, 91], [91, 100], [100, 109]], np.float64)
    white = eye_look(image, upper, lower, 200.0, iris=rim).white
    np.testing.assert_allclose(white, sclera, atol=1.0)  # the iris is left out

    lips = (np.stack([np.linspace(70, 130, 11), np.full(11, 160.0)], 1), np.stack(
        [np.linspace(73, 127, 9), np.full(9, 160.0)], 1))
    skin = np.full((32, 3), 150.0, np.float32)  # luma 150: the whites (~171) are brighter
    cfg = MouthConfig()
    plain = mouth_look(image, *lips, skin).teeth
    yellowed = mouth_look(image, *lips, skin, eye_white=white.astype(np.float32)).teeth
    assert yellowed[0] == pytest.approx(plain[0])  # the brightest channel stays
    assert yellowed[2] < 0.7 * plain[2] and yellowed[2] >= cfg.white_cast_floor * plain[2] - 1e-3
    assert np.all(yellowed <= plain + 1e-3)
    shadowed = mouth_look(image, *lips, skin, eye_white=white.astype(np.float32) * 0.5).teeth
    np.testing.assert_allclose(shadowed, plain)  # darker than the skin: lashes or shadow, not a white

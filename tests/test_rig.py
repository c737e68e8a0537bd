"""The rig moves the landmarks each control should move, and only those."""

import numpy as np
import pytest

from avatar_forcing.motion import rig as R
from avatar_forcing.motion.eyes import EyelidConfig
from avatar_forcing.motion.tracker import track_image
from avatar_forcing.motion.vector import BLENDSHAPE_NAMES


@pytest.fixture(scope="module")
def face_rig(astronaut):
    return R.FaceRig(track_image(astronaut).landmarks)


@pytest.fixture(scope="module")
def closed_rig(face_rig):
    """The astronaut with her lips together at rest (her photo shows her teeth): the jaw's full travel."""
    closed = np.array(face_rig.rest)
    closed[R.LIP_INNER_MIDDLE[1]] = closed[R.LIP_INNER_MIDDLE[0]]
    return R.FaceRig(np.concatenate([closed, np.zeros((len(closed), 1))], 1))


def moved(face_rig, name: str, amount: float = 1.0) -> np.ndarray:
    amounts = np.zeros(len(BLENDSHAPE_NAMES))
    amounts[BLENDSHAPE_NAMES.index(name)] = amount
    return np.linalg.norm(face_rig.displacement(amounts), axis=1) > 0.05 * face_rig.face_width * 0.1


def test_jaw_open_moves_lower_lip_and_chin_down_not_eyes(closed_rig):
    face_rig = closed_rig
    amounts = np.zeros(len(BLENDSHAPE_NAMES))
    amounts[BLENDSHAPE_NAMES.index("jawOpen")] = 1.0
    disp = face_rig.displacement(amounts)
    down = disp @ face_rig.ey
    lower = list(R.LIP_LOWER_INNER)
    assert (down[lower[2:-2]] > 0.15 * face_rig.face_width).all()  # the lower lip's middle drops fully ...
    corners = [R.MOUTH_CORNERS[s][0] for s in "RL"]
    assert (down[lower] > down[corners].max()).all()  # ... more than the corners, which hinge
    # the whole lower lip (all four rings) moves with the jaw: none of it lags behind into a fold
    rings = list(R.LIP_LOWER_INNER + R.LIP_LOWER_MID + R.LIP_LOWER_OUTER)
    assert (down[rings] > down[corners].max()).all()
    assert down[152] > 0.1 * face_rig.face_width  # chin
    eyes = [i for s in "RL" for i in R.EYE_UPPER[s] + R.EYE_LOWER[s]]
    assert np.abs(disp[eyes]).max() == 0.0
    assert np.abs(disp[list(R.LIP_UPPER_INNER[1:-1])]).max() == 0.0  # upper lip stays with the skull


@pytest.mark.parametrize("side, other", [("Left", "R"), ("Right", "L")])
def test_blink_moves_only_its_own_eye(face_rig, side, other):
    hit = moved(face_rig, f"eyeBlink{side}")
    own = "L" if side == "Left" else "R"
    assert hit[list(R.EYE_UPPER[own])].all()
    assert not hit[list(R.EYE_UPPER[other] + R.EYE_LOWER[other])].any()
    assert not hit[list(R.LIP_LOWER_INNER + R.LIP_UPPER_INNER)].any()


def test_smile_left_is_image_right_and_lifts_the_corner(face_rig):
    amounts = np.zeros(len(BLENDSHAPE_NAMES))
    amounts[BLENDSHAPE_NAMES.index("mouthSmileLeft")] = 1.0
    disp = face_rig.displacement(amounts)
    corner = R.MOUTH_CORNERS["L"][0]
    assert disp[corner] @ face_rig.ex > 0 and disp[corner] @ face_rig.ey < 0  # out (image right) and up
    assert np.linalg.norm(disp[R.MOUTH_CORNERS["R"][0]]) < 0.1 * np.linalg.norm(disp[corner])


@pytest.mark.parametrize(
    "name",
    [
        "browInnerUp",
        "browOuterUpLeft",
        "browDownRight",
        "cheekSquintLeft",
        "mouthPucker",
        "mouthFunnel",
        "mouthFrownLeft",
        "mouthStretchRight",
        "eyeWideLeft",
        "eyeSquintRight",
        "mouthClose",
    ],
)
def test_every_listed_control_moves_something_and_no_iris(face_rig, name):
    hit = moved(face_rig, name)
    assert hit.any()
    assert not hit[list(R.IRISES)].any()


def test_no_op_controls_are_zero(face_rig):
    for name in ("cheekPuff", "jawLeft", "eyeLookInLeft", "_neutral"):
        assert not moved(face_rig, name).any()


def smile(face_rig, amount: float) -> np.ndarray:
    amounts = np.zeros(len(BLENDSHAPE_NAMES))
    amounts[[BLENDSHAPE_NAMES.index("mouthSmileLeft"), BLENDSHAPE_NAMES.index("mouthSmileRight")]] = amount
    return face_rig.displacement(amounts)


def test_a_smile_curves_the_lips_and_lifts_cheeks_and_lower_lids(face_rig):
    disp, mw = smile(face_rig, 1.0), face_rig.mouth_width
    up = -(disp @ face_rig.ey)
    corners = up[[R.MOUTH_CORNERS[s][0] for s in "RL"]].mean()
    assert corners - up[[0, 17, 13, 14]].mean() > 0.9 * face_rig.cfg.smile_up * mw  # the lips curve
    assert (up[list(R.CHEEK["R"] + R.CHEEK["L"])] > 0).all()  # the cheeks rise ...
    for side in "RL":  # ... and the lower lids, a little: less than a painted blink would need
        lo, (_, gap) = list(R.EYE_LOWER[side]), face_rig._lids(side)
        assert (up[lo] > 0).all() and up[lo].mean() < 0.6 * EyelidConfig().start * gap.mean()
        assert np.abs(disp[list(R.EYE_UPPER[side])]).max() == 0.0


def test_smile_onset_is_eased_in_and_ends_at_a_full_smile(face_rig):
    corner, left = R.MOUTH_CORNERS["L"][0], BLENDSHAPE_NAMES.index("mouthSmileLeft")

    def smile_left(amount: float) -> np.ndarray:
        amounts = np.zeros(len(BLENDSHAPE_NAMES))
        amounts[left] = amount
        return face_rig.displacement(amounts)

    size = [np.linalg.norm(smile_left(a)[corner]) for a in np.linspace(0, 1.2, 25)]
    assert size[0] == 0.0 and (np.diff(size) >= -1e-9).all()  # none at rest, never shrinking with the ask
    full = np.linalg.norm(face_rig.basis[left][corner])
    assert size[-1] == pytest.approx(full)  # a full smile is the field itself, not more
    assert size[1] < 0.15 * full  # an ask of 0.05 is still a small change
    assert np.linalg.norm(smile_left(-0.3)[corner]) == pytest.approx(0.3 * full)  # less smile: linear


def test_mouth_controls_are_in_neutral_mouth_widths(face_rig):
    """A photo that smiles at rest has a wider mouth; openings must not grow with it."""
    smiling = R.FaceRig(face_rig.rest, rest_smile=0.9)
    jaw = BLENDSHAPE_NAMES.index("jawOpen")
    ratio = np.abs(smiling.basis[jaw]).max() / np.abs(face_rig.basis[jaw]).max()
    assert ratio == pytest.approx(1 / (1 + R.RigConfig().rest_smile_widening * 0.9), rel=0.01)
    eyes = BLENDSHAPE_NAMES.index("eyeBlinkLeft")  # not a mouth control: unchanged
    assert np.allclose(smiling.basis[eyes], face_rig.basis[eyes])


def test_a_turned_head_moves_its_far_mouth_corner_less(face_rig):
    """Squeeze the image-left half of the face as a head turned away on that side shows it: the far
    corner's sideways travel shrinks with its half of the mouth, the near one's grows, and a frontal
    face's two sides stay within a few per cent of each other."""
    assert all(abs(s - 1.0) < 0.1 for s in face_rig.side_scale.values())
    pts = np.array(face_rig.rest)
    mid = pts[list(R.MOUTH_MIDLINE)].mean(0)
    far = (pts - mid) @ face_rig.ex < 0  # image left: the subject's right ("R")
    pts[far] = mid + (pts[far] - mid) * 0.6
    turned = R.FaceRig(np.concatenate([pts, np.zeros((len(pts), 1))], 1))
    assert turned.side_scale["R"] < 0.8 < 1.2 < turned.side_scale["L"]
    amounts = np.zeros(len(BLENDSHAPE_NAMES))
    for name in ("mouthSmileLeft", "mouthSmileRight"):
        amounts[BLENDSHAPE_NAMES.index(name)] = 1.0
    sideways = {s: abs(turned.displacement(amounts)[R.MOUTH_CORNERS[s][0]] @ turned.ex) for s in "RL"}
    ratio = sideways["R"] / sideways["L"]
    assert ratio == pytest.approx(turned.side_scale["R"] / turned.side_scale["L"], rel=0.15)


def test_lips_parted_at_rest_leave_the_jaw_less_travel(face_rig, closed_rig):
    """The astronaut's smile parts her lips at rest: jawOpen's limit bounds the lips' total gap, so she
    opens less far than a closed mouth would, and never less than RigConfig.jaw_min_travel."""
    cfg = face_rig.cfg
    jaw = BLENDSHAPE_NAMES.index("jawOpen")
    limit = dict((p, hi) for p, _, hi in cfg.limits)["jawOpen"]
    assert face_rig.rest_jaw > 0.1

    def lower_lip_travel(rig, amount):
        amounts = np.zeros(len(BLENDSHAPE_NAMES))
        amounts[jaw] = amount
        return rig.displacement(amounts)[R.LIP_INNER_MIDDLE[1]] @ rig.ey

    expected = max(limit - face_rig.rest_jaw, cfg.jaw_min_travel)
    assert expected < limit - 0.1
    assert lower_lip_travel(face_rig, 1.0) == pytest.approx(lower_lip_travel(face_rig, expected))
    assert lower_lip_travel(face_rig, expected - 0.05) < lower_lip_travel(face_rig, expected) - 1e-6
    assert closed_rig.rest_jaw == 0.0
    assert lower_lip_travel(closed_rig, 1.0) == pytest.approx(lower_lip_travel(closed_rig, limit))


@pytest.mark.parametrize("name", ["mouthUpperUp", "mouthLowerDown", "mouthPress"])
def test_one_sided_lip_controls_move_the_middle_whole_together_and_hold_the_corners(face_rig, name):
    """Both sides together move the lip's middle by the control's full amplitude (no notch at the midline),
    one side moves it half, and the corners stay where they are."""
    def field(*sides: str) -> np.ndarray:
        amounts = np.zeros(len(BLENDSHAPE_NAMES))
        for side in sides:
            amounts[BLENDSHAPE_NAMES.index(name + side)] = 1.0
        return face_rig.displacement(amounts) @ face_rig.ey / face_rig.mouth_width  # down, mouth widths

    cfg = R.RigConfig()
    full = {"mouthUpperUp": -cfg.upper_up, "mouthLowerDown": cfg.lower_down,
            "mouthPress": -cfg.press_up}[name]
    middle = R.LIP_INNER_MIDDLE[0] if name == "mouthUpperUp" else R.LIP_INNER_MIDDLE[1]
    both, left, right = field("Left", "Right"), field("Left"), field("Right")
    assert both[middle] == pytest.approx(full, rel=0.01)
    # the middle landmark sits a hair off the mouth's centre, so one side takes a little more of it
    assert left[middle] == pytest.approx(full / 2, rel=0.05)
    assert right[middle] == pytest.approx(full / 2, rel=0.05)
    lip = R.LIP_UPPER_INNER[1:-1] if name == "mouthUpperUp" else R.LIP_LOWER_INNER
    assert np.abs(both[list(lip)]).max() == pytest.approx(abs(full), rel=0.01)  # the middle moves most
    corners = [i for s in "RL" for i in R.MOUTH_CORNERS[s]]
    assert np.abs(both[corners]).max() < 1e-9

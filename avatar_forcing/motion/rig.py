"""Blendshapes -> landmark displacements, authored on MediaPipe's 478-point face-mesh topology.

Each control is a displacement field over the landmarks at amount 1, built once from the portrait's own
geometry and expressed in image pixels; a frame's expression is the linear combination
``amounts @ basis`` (a positive smile first eased through its onset, RigConfig.smile_onset). Amounts
may be negative (e.g. less smile than the portrait's resting smile).
"Left"/"Right" are the subject's sides: MediaPipe's Left is image-right in an unmirrored photo.

Controls with a displacement field: jawOpen, mouthClose, mouthFunnel, mouthPucker, mouthSmileL/R,
mouthFrownL/R, mouthStretchL/R, mouthPressL/R, mouthUpperUpL/R, mouthLowerDownL/R, mouthRollLower,
eyeBlinkL/R, eyeWideL/R, eyeSquintL/R, browInnerUp, browDownL/R, browOuterUpL/R, cheekSquintL/R,
noseSneerL/R.
No-ops (a 2-D warp of a photo cannot show them convincingly): _neutral, cheekPuff, eyeLook* (gaze),
jawForward, jawLeft, jawRight, mouthLeft, mouthRight, mouthDimpleL/R, mouthRollUpper,
mouthShrugLower, mouthShrugUpper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar_forcing.motion.vector import BLENDSHAPE_NAMES, NUM_BLENDSHAPES

# --- face-mesh index groups (MediaPipe topology); "R" = subject's right = image left ------------------
LIP_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIP_LOWER_INNER = (95, 88, 178, 87, 14, 317, 402, 318, 324)
LIP_UPPER_OUTER = (185, 40, 39, 37, 0, 267, 269, 270, 409)
LIP_LOWER_OUTER = (146, 91, 181, 84, 17, 314, 405, 321, 375)
# the two rings between the inner and outer lip lines (corners excluded: they are in MOUTH_CORNERS)
LIP_UPPER_MID = (183, 42, 41, 38, 12, 268, 271, 272, 407, 184, 74, 73, 72, 11, 302, 303, 304, 408)
LIP_LOWER_MID = (96, 89, 179, 86, 15, 316, 403, 319, 325, 77, 90, 180, 85, 16, 315, 404, 320, 307)
MOUTH_CORNERS = {"R": (61, 78, 62, 76), "L": (291, 308, 292, 306)}
MOUTH_MIDLINE = (0, 13, 14, 17)  # the lips' middle, outer and inner, upper and lower
LIP_INNER_MIDDLE = (13, 14)  # upper, lower
MOUTH_INNER_RING = LIP_UPPER_INNER + tuple(reversed(LIP_LOWER_INNER))  # closed polygon, corner to corner
EYE_UPPER = {"R": (246, 161, 160, 159, 158, 157, 173), "L": (466, 388, 387, 386, 385, 384, 398)}
EYE_LOWER = {"R": (7, 163, 144, 145, 153, 154, 155), "L": (249, 390, 373, 374, 380, 381, 382)}
EYE_CORNERS = {"R": (33, 133), "L": (263, 362)}
EYE_CREASE = {"R": (247, 30, 29, 27, 28, 56, 190), "L": (467, 260, 259, 257, 258, 286, 414)}
BROW_INNER = {"R": (107, 66, 55, 65), "L": (336, 296, 285, 295)}
BROW_OUTER = {"R": (70, 63, 46, 53), "L": (300, 293, 276, 283)}
BROW_MID = {"R": (105, 52), "L": (334, 282)}
CHEEK = {"R": (50, 101, 118, 117, 123, 187, 205, 36, 142), "L": (280, 330, 347, 346, 352, 411, 425, 266, 371)}
NOSE_WING = {"R": (129, 98, 64, 48, 115), "L": (358, 327, 294, 278, 344)}
CHIN = (
    152,
    148,
    176,
    149,
    150,
    377,
    400,
    378,
    379,
    175,
    199,
    200,
    18,
    83,
    313,
    201,
    421,
    208,
    428,
    32,
    262,
    194,
    418,
    182,
    406,
    171,
    396,
    140,
    369,
    170,
    395,
    211,
    431,
    204,
    424,
    106,
    335,
)
IRIS = {"R": tuple(range(468, 473)), "L": tuple(range(473, 478))}  # centre, then four on the rim
IRISES = IRIS["R"] + IRIS["L"]
FACE_WIDTH = (234, 454)


@dataclass(frozen=True)
class RigConfig:
    """Amplitudes at amount 1 in the portrait's own anatomy: mouth controls in rest mouth widths (corner to
    corner), lids in fractions of each eye's own opening, brows, cheeks and nose in face widths. The two
    sides of every paired control share one number, so the rig is symmetric by construction."""

    # Real-face geometry per unit of each blendshape, the mean over the nine real videos of
    # docs/benchmarks/real_faces.json (scripts/measure_real_faces.py), each person counting once:
    # lip gap 0.82 mouth widths per jawOpen; mouth width -0.21 per pucker, -0.17 per funnel, +0.32 per
    # smile, +0.47 per stretch, -0.08 per jawOpen; corner lift 0.22 per smile; eye opening -1.81 per
    # blink and -0.65 per squint; brow height 0.074 face widths per browInnerUp.
    jaw_drop: float = 0.82  # lower lip / chin travel at jawOpen = 1
    jaw_narrow: float = 0.04  # per corner: the mouth narrows a little as the jaw drops ...
    jaw_narrow_top: float = 0.1  # ... below this height above the mouth centre (face widths)
    jaw_line: float = 0.01  # face widths above the mouth centre where the moving jaw begins ...
    jaw_fade: float = 0.06  # ... and below it where it moves fully
    jaw_width: float = 0.42  # sideways falloff of the jaw's motion toward the ears (face widths)
    jaw_corner_follow: float = 0.3  # the mouth corners drop less than the lower lip (not an O) ...
    jaw_corner_radius: float = 0.12  # ... and so does the lower lip and skin around them, blending into
    # the jaw's field over this Gaussian radius (rest mouth widths): a hinge, not a tear that stretches the
    # photo's dark corner pixels into blobs beside the opening (the upper lip stays with the skull)
    mouth_close_lift: float = 0.15
    pucker_inward: float = 0.105  # per corner
    funnel_inward: float = 0.085  # per corner, and the lips part a little:
    funnel_open: float = 0.06
    smile_out: float = 0.16
    # Mouth controls are in *neutral* mouth widths: the amplitudes above were measured on people whose rest
    # is close to neutral, and a photo that smiles at rest has a mouth ~1.3x wider (0.32 per unit of smile,
    # the real faces' widening), which made every opening ~30 % larger (the astronaut "screamed").
    rest_smile_widening: float = 0.32
    # Corner lift over the lip centre (the lift fades to none at the midline). Real faces lift 0.22 per unit
    # of smile, but a warp moves no shading, shows no teeth and folds no skin, and at 0.22 fresh reviewers
    # read the avatar's full smile as widened, pouting lips. 0.32 (with the cheek and lid below) is what
    # reads as a smile, and brings the re-tracked smile at an ask of 0.9 from 0.76-0.81 to 0.83-0.86 on
    # the portraits that read it best (s2, s4, s42), without overshooting the ask.
    smile_up: float = 0.32
    # A real smile is more than the corners. Per unit of mouthSmile over the real videos (landmarks
    # aligned on the skull): the cheek rises ~0.02-0.03 face widths and bulges out, bunching the skin
    # under the eye and deepening the fold from nose wing to corner, and the lower lid rises ~0.3 of the
    # eye opening (MediaPipe reads eyeSquint ~0.15 per unit of smile there). Like the corner lift, the
    # warp needs a little more than the real cheek's rise to read as one.
    smile_cheek_up: float = 0.035  # face widths, around the cheek (cheek_radius); lips and lids excluded
    smile_cheek_out: float = 0.008  # face widths, away from the nose
    # Lower lid, fraction of the eye opening: half the real rise, so that a full smile alone closes the eye
    # less than where the renderer starts painting a blinking lid over it (EyelidConfig.start, 0.3).
    smile_lid_rise: float = 0.14
    # Real smiles start with a step: by the time MediaPipe reads 0.05-0.2 of smile, the corners are already
    # ~0.05 mouth widths higher and the mouth ~0.08 wider than at rest (below that the tracker reads no
    # smile at all). A positive ask gets this much extra smile field, eased in over smile_onset_scale of
    # the ask and tapering off toward a full smile, which stays the geometry of the rates above.
    smile_onset: float = 0.25
    smile_onset_scale: float = 0.15
    frown_down: float = 0.1
    stretch_out: float = 0.235
    press_up: float = 0.035
    # The upper lip's middle rises 0.139 rest mouth widths per unit of mouthUpperUp against the skull (nose
    # base), jaw and smile held (real_faces.json, upper_lip_rise.fit_upper_up, mean of the videos); it was
    # 0.07, so a real broad smile's lifted lip (mouthUpperUp 0.24-0.43) parted the lips by a hair.
    upper_up: float = 0.139
    lower_down: float = 0.08
    roll_lower: float = 0.05
    corner_radius: float = 0.33  # falloff radius around a mouth corner
    # One side's lip control (press, upper up, lower down) moves that half of the lip, fading across the
    # midline over this share of the half mouth width (the middle moves half with each side, so both sides
    # together move it whole, not leave a notch) and to nothing at the corners, which hold the lip.
    lip_midline_band: float = 0.15
    # A turned head shows the far half of its mouth foreshortened: sideways motion of each half (corners
    # out or in, the cheek's bulge) is scaled by that half's share of the rest mouth width, so the far
    # corner of a 3/4 portrait no longer travels as far as the near one and past the cheek's outline.
    # Bounded so that a tracker's bad corner cannot zero or double a side.
    foreshortening: tuple[float, float] = (0.4, 1.4)
    blink_cover: float = 1.55  # upper lid travel per unit, as a fraction of the eye opening ...
    blink_lower_rise: float = 0.25  # ... and the lower lid's: the eye is shut at eyeBlink 0.55
    blink_crease_follow: float = 0.35
    wide_lift: float = 0.3
    squint_rise: float = 0.45
    squint_lower: float = 0.2
    brow_inner_up: float = 0.074  # face widths from here on
    brow_outer_up: float = 0.065
    brow_down: float = 0.035
    brow_radius: float = 0.09
    cheek_up: float = 0.03
    cheek_radius: float = 0.1
    sneer_up: float = 0.02
    # Where each control still looks like a face: amounts are clipped to [low, high]. Default (0, 1);
    # channels that may go below the portrait's rest (less smile than a smiling photo) get a negative low.
    limits: tuple[tuple[str, float, float], ...] = (
        ("mouthSmile", -0.6, 1.0),
        ("mouthFrown", -0.3, 1.0),
        ("mouthPress", -0.5, 1.0),
        ("eyeSquint", -0.5, 1.0),
        ("eyeWide", -0.3, 0.8),
        ("cheekSquint", -0.5, 1.0),
        ("browInnerUp", -0.5, 1.0),
        ("browDown", -0.5, 1.0),
        ("browOuterUp", -0.5, 1.0),
        # Real speakers open to 0.48 at p99 (real_faces.json, mean of videos); past 0.5 the warped opening
        # turns boxy and leaves the lip corners behind (a fresh review of rendered mouths, 2026-12-05).
        ("jawOpen", -0.1, 0.5),
        ("mouthClose", 0.0, 0.6),
        ("eyeBlink", 0.0, 0.56),  # shut: more would push the lid through the lower lid
    )
    # jawOpen's limit bounds the lips' gap, so a portrait whose lips already part at rest (the astronaut's
    # smile, s10, s42: 0.15-0.20 mouth widths, a jawOpen of 0.18-0.24) has that much less travel: on top of
    # their own opening a full 0.5 read as a scream to fresh reviewers. At least this much is always left:
    jaw_min_travel: float = 0.25

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) per blendshape; a limit's name matches both sides of a paired control."""
        low, high = np.zeros(NUM_BLENDSHAPES), np.ones(NUM_BLENDSHAPES)
        for prefix, lo, hi in self.limits:
            for i, name in enumerate(BLENDSHAPE_NAMES):
                if name.removesuffix("Left").removesuffix("Right") == prefix:
                    low[i], high[i] = lo, hi
        return low, high


def _gauss(dist: np.ndarray, radius: float) -> np.ndarray:
    return np.exp(-0.5 * (dist / radius) ** 2)


class FaceRig:
    """The displacement basis for one portrait: ``basis[c]`` is a (478, 2) pixel field for control c."""

    def __init__(self, landmarks: np.ndarray, cfg: RigConfig = RigConfig(), rest_smile: float = 0.0):
        """`rest_smile`: the smile the tracker reads on the portrait (mean of both sides)."""
        self.cfg = cfg
        pts = np.asarray(landmarks, np.float64)[:, :2]
        self.rest = pts
        left, right = pts[FACE_WIDTH[1]], pts[FACE_WIDTH[0]]
        self.face_width = float(np.linalg.norm(left - right))
        rest_width = float(np.linalg.norm(pts[MOUTH_CORNERS["L"][0]] - pts[MOUTH_CORNERS["R"][0]]))
        self.mouth_width = rest_width / (1.0 + cfg.rest_smile_widening * max(rest_smile, 0.0))
        ex = (left - right) / self.face_width  # image-right along the face
        ey = np.array([-ex[1], ex[0]])  # image-down along the face
        self.ex, self.ey = ex, ey
        self.side_scale = self._foreshortening()
        self.basis = np.zeros((NUM_BLENDSHAPES, len(pts), 2))
        self.rest_jaw = self._rest_jaw()
        low, high = cfg.bounds()
        jaw = BLENDSHAPE_NAMES.index("jawOpen")
        high[jaw] = max(high[jaw] - self.rest_jaw, min(cfg.jaw_min_travel, high[jaw]))
        self._bounds = (low, high)
        self._smile_idx = [BLENDSHAPE_NAMES.index(f"mouthSmile{side}") for side in ("Left", "Right")]
        self._build()

    # --- helpers ----------------------------------------------------------------------------------------
    def _rest_jaw(self) -> float:
        """How far the portrait's lips part at rest, as the jawOpen that would part closed lips as far."""
        gap = float((self.rest[LIP_INNER_MIDDLE[1]] - self.rest[LIP_INNER_MIDDLE[0]]) @ self.ey)
        return max(gap / (self.cfg.jaw_drop * self.mouth_width), 0.0)

    def _foreshortening(self) -> dict[str, float]:
        """Each half mouth's width over the mean half width ("R", "L": image left, image right half)."""
        mid = self.rest[list(MOUTH_MIDLINE)].mean(0)
        half = {s: abs(float((self.rest[MOUTH_CORNERS[s][0]] - mid) @ self.ex)) for s in "RL"}
        mean = max(0.5 * (half["R"] + half["L"]), 1e-6)
        lo, hi = self.cfg.foreshortening
        return {s: float(np.clip(half[s] / mean, lo, hi)) for s in "RL"}

    def _vec(self, right: float, down: float) -> np.ndarray:
        """A face-frame vector (face widths) in image pixels."""
        return (right * self.ex + down * self.ey) * self.face_width

    def _mouth(self, right: float, down: float) -> np.ndarray:
        """A face-frame vector (neutral mouth widths) in image pixels."""
        return (right * self.ex + down * self.ey) * self.mouth_width

    def _set(self, name: str, field: np.ndarray) -> None:
        self.basis[BLENDSHAPE_NAMES.index(name)] += field

    def _points(self, indices, vec: np.ndarray, weights=None) -> np.ndarray:
        field = np.zeros_like(self.rest)
        w = np.ones(len(indices)) if weights is None else np.asarray(weights, float)
        field[list(indices)] += w[:, None] * vec
        return field

    def _radial(self, centre_idx, vec: np.ndarray, radius: float, exclude=()) -> np.ndarray:
        centre = self.rest[list(centre_idx)].mean(0)
        w = _gauss(np.linalg.norm(self.rest - centre, axis=1), radius * self.face_width)
        w[list(exclude)] = 0.0
        return w[:, None] * vec

    def _lids(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-point vertical gap between matching upper and lower lid points (pixels, along ey)."""
        up, lo = np.array(EYE_UPPER[side]), np.array(EYE_LOWER[side])
        gap = (self.rest[lo] - self.rest[up]) @ self.ey
        return up, np.maximum(gap, 0.0)

    # --- the controls -----------------------------------------------------------------------------------
    def _build(self) -> None:
        c = self.cfg
        radius = c.corner_radius * self.mouth_width / self.face_width  # _radial takes face widths
        fy = (self.rest - self.rest[list(MOUTH_INNER_RING)].mean(0)) @ self.ey / self.face_width
        fx = (self.rest - self.rest[list(MOUTH_INNER_RING)].mean(0)) @ self.ex / self.face_width
        lower = list(LIP_LOWER_INNER + LIP_LOWER_MID + LIP_LOWER_OUTER)
        upper = list(LIP_UPPER_INNER[1:-1] + LIP_UPPER_MID + LIP_UPPER_OUTER)
        corners = [i for s in "RL" for i in MOUTH_CORNERS[s]]
        lips = tuple(upper) + tuple(lower) + LIP_UPPER_INNER[:1] + LIP_UPPER_INNER[-1:] + tuple(corners)
        eye_groups = (EYE_UPPER, EYE_LOWER, EYE_CREASE, EYE_CORNERS)
        eyes = IRISES + tuple(i for g in eye_groups for s in "RL" for i in g[s])  # smile: own lid rule

        # jawOpen: the lower face below the mouth line drops, fading out toward the ears.
        below = np.clip((fy + c.jaw_line) / c.jaw_fade, 0.0, 1.0) * _gauss(fx, c.jaw_width)
        below[upper + list(IRISES)] = 0.0
        below[lower] = 1.0
        hinge = np.zeros(len(self.rest))
        for side in "RL":
            dist = np.linalg.norm(self.rest - self.rest[MOUTH_CORNERS[side][0]], axis=1)
            hinge = np.maximum(hinge, _gauss(dist, c.jaw_corner_radius * self.mouth_width))
        hinge[corners] = 1.0
        hinge[upper + list(IRISES)] = 0.0  # the upper lip stays with the skull, and so does what is above
        hinge[fy < -c.jaw_narrow_top] = 0.0  # the mouth (the Gaussian's far tail would reach the eyes)
        below += (c.jaw_corner_follow - below) * hinge
        self._set("jawOpen", below[:, None] * self._mouth(0, c.jaw_drop))
        # the narrowing stays around the mouth, and the upper lip stays with the skull
        above = np.concatenate([np.flatnonzero(fy < -c.jaw_narrow_top), upper])
        for side, sign in (("R", 1.0), ("L", -1.0)):
            narrow = self._mouth(sign * c.jaw_narrow * self.side_scale[side], 0)
            self._set("jawOpen", self._radial(MOUTH_CORNERS[side][:1], narrow, radius, exclude=above))
        self._set("mouthClose", self._points(lower, self._mouth(0, -c.mouth_close_lift)))
        self._set("mouthRollLower", self._points(LIP_LOWER_OUTER, self._mouth(0, -c.roll_lower)))

        # Pucker / funnel: the corners move toward the middle, the lips push apart a little (funnel).
        for name, inward in (("mouthPucker", c.pucker_inward), ("mouthFunnel", c.funnel_inward)):
            field = np.zeros_like(self.rest)
            for side, sign in (("R", 1.0), ("L", -1.0)):
                inward_px = self._mouth(sign * inward * self.side_scale[side], 0)
                field += self._radial(MOUTH_CORNERS[side][:1], inward_px, radius)
            self._set(name, field)
        self._set(
            "mouthFunnel",
            self._points(LIP_UPPER_INNER[2:-2], self._mouth(0, -c.funnel_open))
            + self._points(LIP_LOWER_INNER[1:-1], self._mouth(0, c.funnel_open)),
        )

        corner_x = {s: max(abs(float(fx[MOUTH_CORNERS[s][0]])), 1e-6) for s in "RL"}  # each half's width

        def lip_half(x: np.ndarray, out: float) -> np.ndarray:
            """Weights of lip points at ``x`` (face widths from the mouth centre) for the side ``out``."""
            u = np.where(x < 0, x / corner_x["R"], x / corner_x["L"])  # -1 .. 1, corner to corner
            side = np.clip(0.5 + out * u / (2 * c.lip_midline_band), 0.0, 1.0)
            return side * np.clip(1.0 - u**2, 0.0, 1.0)

        for side, out in (("R", -1.0), ("L", 1.0)):
            suffix = "Right" if side == "R" else "Left"
            corner = MOUTH_CORNERS[side][:1]

            def radial(vec: np.ndarray, corner=corner) -> np.ndarray:
                return self._radial(corner, vec, radius, exclude=IRISES)

            # The corners go out and up; the lift fades to none at the midline, so the lips curve (a mouth
            # that rises whole does not read as a smile). The cheek rises and bulges out around the lips,
            # bunching the skin under the eye and deepening the fold from nose wing to corner; the lower
            # lid comes up a little (and only it moves the lids).
            midline = np.clip(fx / fx[corner[0]], 0.0, 1.0)[:, None]
            sideways = out * self.side_scale[side]  # toward this side's ear, foreshortened
            cheek = self._vec(sideways * c.smile_cheek_out, -c.smile_cheek_up)
            self._set(
                f"mouthSmile{suffix}",
                self._radial(corner, self._mouth(sideways * c.smile_out, 0.0), radius, exclude=eyes)
                + midline * self._radial(corner, self._mouth(0.0, -c.smile_up), radius, exclude=eyes)
                + self._radial(CHEEK[side], cheek, c.cheek_radius, exclude=eyes + lips)
                + self._points(EYE_LOWER[side], -self.ey * (c.smile_lid_rise * self._lids(side)[1])[:, None]),
            )
            self._set(f"mouthFrown{suffix}", radial(self._mouth(0.0, c.frown_down)))
            self._set(f"mouthStretch{suffix}", radial(self._mouth(sideways * c.stretch_out, 0.0)))
            half_upper, half_lower = lip_half(fx[upper], out), lip_half(fx[lower], out)
            self._set(f"mouthPress{suffix}", self._points(lower, self._mouth(0, -c.press_up), half_lower))
            self._set(f"mouthUpperUp{suffix}", self._points(upper, self._mouth(0, -c.upper_up), half_upper))
            self._set(f"mouthLowerDown{suffix}",
                      self._points(lower, self._mouth(0, c.lower_down), half_lower))

            up, gap = self._lids(side)
            lo = np.array(EYE_LOWER[side])
            down = self.ey[None, :]
            self._set(
                f"eyeBlink{suffix}",
                self._points(up, down * (c.blink_cover * gap)[:, None])
                + self._points(lo, -down * (c.blink_lower_rise * gap)[:, None])
                + self._points(EYE_CREASE[side], down * (c.blink_crease_follow * gap.mean())),
            )
            self._set(
                f"eyeWide{suffix}",
                self._points(up, -down * (c.wide_lift * gap)[:, None])
                + self._points(EYE_CREASE[side], -down * (0.5 * c.wide_lift * gap.mean())),
            )
            self._set(
                f"eyeSquint{suffix}",
                self._points(lo, -down * (c.squint_rise * gap)[:, None])
                + self._points(up, down * (c.squint_lower * gap)[:, None]),
            )

            brows = BROW_INNER[side] + BROW_MID[side] + BROW_OUTER[side]
            not_brow = [i for i in range(len(self.rest)) if i not in brows and fy[i] > -0.55]
            self._set(
                "browInnerUp",
                self._radial(
                    BROW_INNER[side], self._vec(0, -c.brow_inner_up), c.brow_radius, exclude=not_brow
                ),
            )
            self._set(
                f"browOuterUp{suffix}",
                self._radial(
                    BROW_OUTER[side], self._vec(0, -c.brow_outer_up), c.brow_radius, exclude=not_brow
                ),
            )
            self._set(
                f"browDown{suffix}",
                self._radial(
                    BROW_INNER[side] + BROW_MID[side],
                    self._vec(-out * 0.01, c.brow_down),
                    c.brow_radius,
                    exclude=not_brow,
                ),
            )
            self._set(
                f"cheekSquint{suffix}",
                self._radial(
                    CHEEK[side], self._vec(0, -c.cheek_up), c.cheek_radius, exclude=IRISES + EYE_UPPER[side]
                )
                + self._points(lo, -down * (0.15 * gap)[:, None]),
            )
            self._set(f"noseSneer{suffix}", self._radial(NOSE_WING[side], self._vec(0, -c.sneer_up), 0.05))
        self.basis[:, list(IRISES)] = 0.0  # irises are not control points (see renderer)

    def displacement(self, amounts: np.ndarray) -> np.ndarray:
        """(478, 2) pixel displacement for 52 blendshape amounts (relative to the portrait's rest), each
        clipped to where it still looks like a face; lids that the controls together would cross meet."""
        amounts = self.clip(amounts)
        # a smile starts with a step (RigConfig.smile_onset), eased in so that a small ask stays small
        smile, c = self._smile_idx, self.cfg
        ask = np.maximum(amounts[..., smile], 0.0)
        onset = -np.expm1(-ask / c.smile_onset_scale) * np.maximum(1.0 - ask, 0.0)
        amounts[..., smile] += c.smile_onset * onset
        disp = np.tensordot(amounts, self.basis, axes=1)
        for side in "RL":
            up, lo = list(EYE_UPPER[side]), list(EYE_LOWER[side])
            overlap = ((self.rest[up] + disp[up]) - (self.rest[lo] + disp[lo])) @ self.ey  # > 0: crossed
            shut = np.maximum(overlap, 0.0)[:, None] * self.ey / 2
            disp[up] -= shut
            disp[lo] += shut
        return disp

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) per blendshape for this portrait (the config's, the jaw's less its rest opening)."""
        return self._bounds[0].copy(), self._bounds[1].copy()

    def clip(self, amounts: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(amounts, np.float64), *self._bounds)

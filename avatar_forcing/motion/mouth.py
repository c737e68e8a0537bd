"""The mouth interior, painted where the warped lips part beyond the portrait's own opening.

Laid out in the mouth's own frame (along the lips, corner to corner, and down the face), so it follows a
tilted head: a dark cavity that deepens toward the throat and into the corners (the buccal corridor), an
arch of upper teeth hanging from the upper lip (fixed to the skull) and a smaller arch of lower teeth
riding on the lower lip, both only across the middle of the mouth and with faint gaps between teeth,
shaded by the lips above them; a soft tongue low in the cavity. Colours come from the portrait (its own
teeth when it shows them, else a tooth white scaled to the photo's light), so a painting gets painted
teeth and a dim photo dim ones. A closed mouth paints nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class MouthConfig:
    fade_in: float = 0.04  # the interior fades in over this much extra opening (face widths), so a
    # portrait that already shows teeth keeps its own mouth at rest
    cavity: RGB = (110, 42, 46)  # just inside the lips
    cavity_back: RGB = (22, 6, 8)  # the throat
    teeth: RGB = (226, 218, 204)  # tooth white under the reference light ...
    reference_light: float = 170.0  # ... the skin luminance that light gives
    light_range: tuple[float, float] = (0.45, 1.1)  # how far the photo's light may scale it
    own_teeth_opening: float = 0.06  # a rest opening this wide (mouth widths) shows the portrait's teeth
    upper_teeth: float = 0.2  # visible height of the upper teeth at most (mouth widths) ...
    upper_teeth_share: float = 0.45  # ... and at most this share of the opening
    upper_teeth_span: float = 0.36  # half-width of the upper arch (mouth widths from the centre)
    lower_teeth: float = 0.06
    lower_teeth_share: float = 0.12
    lower_teeth_span: float = 0.24
    tooth_width: float = 0.085  # mouth widths between tooth gaps (incisors)
    tooth_gap_shade: float = 0.05  # darkening along a gap (faint: strong gaps read as a comb) ...
    tooth_gap_px: float = 0.6  # ... of about this width (pixels)
    lip_shadow: float = 0.35  # the lip's shadow on the teeth just below (above) it
    corner_shade: float = 0.75  # darkening into the corners
    tongue: RGB = (168, 84, 86)
    tongue_width: float = 0.26  # half-width, mouth widths
    tongue_height: float = 0.45  # share of the opening
    tongue_opacity: float = 0.85
    feather: float = 0.01  # edge softness (face widths)
    reference_chroma: float = 40.0  # skin this colourful takes the paint's colours as they are; a grey
    # photo (chroma 0) gets grey paint


def _fill(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=2)
    return mask.astype(np.float32) / 255.0


def mouth_opening(upper: np.ndarray, lower: np.ndarray) -> float:
    """Vertical gap between the middle thirds of the inner lips, in pixels (a smile lifting the corners
    does not open the mouth)."""
    mid_upper, mid_lower = len(upper) // 2, len(lower) // 2
    lower_y = np.mean(lower[mid_lower - 1 : mid_lower + 2, 1])
    return float(lower_y - np.mean(upper[mid_upper - 1 : mid_upper + 2, 1]))


@dataclass(frozen=True)
class MouthLook:
    teeth: np.ndarray  # RGB float32
    colour: float = 1.0  # how colourful the photo is: 0 = black and white, 1 = as the config's colours
    light: float = 1.0  # the photo's light on skin relative to the reference light


def mouth_look(image: np.ndarray, upper: np.ndarray, lower: np.ndarray, skin: np.ndarray,
               cfg: MouthConfig = MouthConfig()) -> MouthLook:
    """Sample the rest portrait once: its own teeth if its mouth is open enough to show them, else tooth
    white scaled to the light on its skin (``skin``: (N, 3) pixels of the face)."""
    width = max(float(np.linalg.norm(upper[-1] - upper[0])), 1.0)
    pixels = skin.astype(np.float32)
    chroma = float(np.median(pixels.max(1) - pixels.min(1)))
    colour = float(np.clip(chroma / cfg.reference_chroma, 0.0, 1.0))
    luma = float(np.median(pixels @ np.array([0.299, 0.587, 0.114], np.float32)))
    light = float(np.clip(luma / cfg.reference_light, *cfg.light_range))
    if mouth_opening(upper, lower) > cfg.own_teeth_opening * width:
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(np.concatenate([upper, lower[::-1]])).astype(np.int32)], 1)
        inside = image[mask > 0].astype(np.float32)
        if len(inside) >= 8:
            bright = inside.sum(1) >= np.percentile(inside.sum(1), 75)
            return MouthLook(inside[bright].mean(0), colour, light)
    return MouthLook(np.array(cfg.teeth, np.float32) * light, colour, light)


def draw_mouth(
    image: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    face_width: float,
    rest_opening: float = 0.0,
    look: MouthLook | None = None,
    cfg: MouthConfig = MouthConfig(),
) -> np.ndarray:
    """Paint the interior inside the inner-lip polygon. ``upper``: inner upper-lip points corner to corner;
    ``lower``: inner lower-lip points in the same direction (without the corners); ``rest_opening``: the
    portrait's own opening, below which its real mouth is kept."""
    opening = mouth_opening(upper, lower)
    strength = np.clip((opening - rest_opening) / (cfg.fade_in * face_width), 0.0, 1.0)
    if strength <= 0.0:
        return image
    teeth_rgb = np.array(cfg.teeth, np.float32) if look is None else look.teeth
    ring = np.concatenate([upper, lower[::-1]])
    pad = int(cfg.feather * face_width * 3) + 2
    x0, y0 = np.floor(ring.min(0)).astype(int) - pad
    x1, y1 = np.ceil(ring.max(0)).astype(int) + pad
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return image
    shape = (y1 - y0, x1 - x0)

    # The mouth frame: origin between the corners, `along` toward the subject's left corner, `down`.
    corner_a, corner_b = upper[0], upper[-1]
    width = max(float(np.linalg.norm(corner_b - corner_a)), 1.0)
    ex = (corner_b - corner_a) / width
    ey = np.array([-ex[1], ex[0]])
    origin = (corner_a + corner_b) / 2
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    rel = np.stack([xx - origin[0], yy - origin[1]], -1)
    u = (rel @ ex) / width  # -0.5 .. 0.5 corner to corner
    v = rel @ ey  # pixels down the face
    top = _curve(upper, origin, ex, ey, width, u)  # inner upper lip at each u (pixels down)
    bottom = _curve(np.concatenate([upper[:1], lower, upper[-1:]]), origin, ex, ey, width, u)
    gap = np.maximum(bottom - top, 1.0)
    depth = np.clip((v - top) / gap, 0.0, 1.0)  # 0 at the upper lip, 1 at the lower lip

    # cavity: darker toward the middle of the opening (the throat) and into the corners
    throat = np.clip(1 - np.hypot(2 * u / 0.8, 2 * (depth - 0.55)), 0, 1)[..., None]
    corners = np.clip(np.abs(2 * u), 0, 1)[..., None] ** 2
    paint = np.array(cfg.cavity, np.float32) * (1 - throat) + np.array(cfg.cavity_back, np.float32) * throat

    # tongue: a soft mound low in the cavity
    rise = (1 - depth) / max(cfg.tongue_height, 1e-3)
    tongue = np.sqrt(np.clip(1 - (u / cfg.tongue_width) ** 2 - rise**2, 0, 1))[..., None] * cfg.tongue_opacity
    tongue_rgb = np.array(cfg.tongue, np.float32) * (0.6 + 0.4 * (1 - depth[..., None]))
    paint = paint * (1 - tongue) + tongue_rgb * tongue

    sigma = max(cfg.feather * face_width, 0.5)
    for from_top, height, share, span in (
        (True, cfg.upper_teeth, cfg.upper_teeth_share, cfg.upper_teeth_span),
        (False, cfg.lower_teeth, cfg.lower_teeth_share, cfg.lower_teeth_span),
    ):
        arch = np.sqrt(np.clip(1 - (u / span) ** 2, 0, 1))  # tallest in the middle, gone by the canines
        tall = np.minimum(height * width, share * opening) * arch
        dist = (v - top) if from_top else (bottom - v)  # pixels from the lip the teeth hang from
        edge = np.clip((tall - dist) / max(sigma, 0.5) + 0.5, 0, 1) * (dist > -sigma)
        shade = 1 - cfg.lip_shadow * np.exp(-np.maximum(dist, 0) / max(0.35 * tall.max(), 1.0))
        phase = (u / cfg.tooth_width) - 0.5  # a gap at the centre line, then every tooth width
        gaps = np.exp(-(((phase - np.round(phase)) * cfg.tooth_width * width / cfg.tooth_gap_px) ** 2) / 2)
        shade = shade * (1 - cfg.tooth_gap_shade * gaps)
        m = (edge * (tall > 0.5))[..., None]
        paint = paint * (1 - m) + teeth_rgb * shade[..., None] * m
    paint *= 1 - cfg.corner_shade * corners
    if look is not None:  # the photo's own light and colourfulness (a grey photo gets a grey mouth)
        grey = paint @ np.array([0.299, 0.587, 0.114], np.float32)
        paint = grey[..., None] + look.colour * (paint - grey[..., None])

    off = np.array([x0, y0], np.float64)
    alpha = _fill(shape, ring - off)
    alpha = strength * cv2.GaussianBlur(alpha, (0, 0), sigma)[..., None]
    out = image.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(roi * (1 - alpha) + paint * alpha, 0, 255).astype(np.uint8)
    return out


def _curve(points: np.ndarray, origin: np.ndarray, ex: np.ndarray, ey: np.ndarray, width: float,
           u: np.ndarray) -> np.ndarray:
    """A lip line (points corner to corner) as its distance down the face at each u of the mouth frame."""
    rel = points - origin
    pu, pv = (rel @ ex) / width, rel @ ey
    order = np.argsort(pu)
    return np.interp(u, pu[order], pv[order]).astype(np.float32)

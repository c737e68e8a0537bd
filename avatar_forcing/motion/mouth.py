"""The mouth interior, painted where the warped lips part: a shaded cavity, upper teeth fixed to the
skull (they hang from the upper lip), lower teeth that move with the jaw, and a tongue hint."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class MouthConfig:
    fade_in: float = 0.04  # the interior fades in over this much extra opening (face widths), so a
    # portrait that already shows teeth keeps its own mouth at rest
    cavity: RGB = (58, 18, 22)
    cavity_back: RGB = (14, 4, 6)  # the throat, darkest at the centre-back
    teeth: RGB = (222, 214, 200)
    upper_teeth: float = 0.05  # visible height of the upper teeth at most (face widths)
    upper_teeth_share: float = 0.45  # ... and at most this share of the opening
    lower_teeth: float = 0.035
    lower_teeth_share: float = 0.2
    tongue: RGB = (142, 62, 66)
    tongue_height: float = 0.22  # share of the opening
    corner_shade: float = 0.55  # darkening toward the mouth corners
    feather: float = 0.006  # edge softness (face widths)


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


def draw_mouth(
    image: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    face_width: float,
    rest_opening: float = 0.0,
    cfg: MouthConfig = MouthConfig(),
) -> np.ndarray:
    """Paint the interior inside the inner-lip polygon. ``upper``: inner upper-lip points corner to corner;
    ``lower``: inner lower-lip points in the same direction (without the corners); ``rest_opening``: the
    portrait's own opening, below which its real mouth is kept."""
    opening = mouth_opening(upper, lower)
    strength = np.clip((opening - rest_opening) / (cfg.fade_in * face_width), 0.0, 1.0)
    if strength <= 0.0:
        return image
    ring = np.concatenate([upper, lower[::-1]])
    pad = int(cfg.feather * face_width * 3) + 2
    x0, y0 = np.floor(ring.min(0)).astype(int) - pad
    x1, y1 = np.ceil(ring.max(0)).astype(int) + pad
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return image
    off = np.array([x0, y0], np.float64)
    shape = (y1 - y0, x1 - x0)
    ring_l, upper_l, lower_l = ring - off, upper - off, lower - off

    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    centre = ring_l.mean(0)
    half_width = max(np.ptp(ring_l[:, 0]) / 2, 1.0)
    across = np.clip(np.abs(xx - centre[0]) / half_width, 0, 1)
    depth = np.clip(1 - np.hypot((xx - centre[0]) / half_width, (yy - centre[1]) / max(opening / 2, 1)), 0, 1)
    paint = (
        np.array(cfg.cavity, np.float32) * (1 - depth[..., None])
        + np.array(cfg.cavity_back, np.float32) * depth[..., None]
    )

    upper_h = min(cfg.upper_teeth * face_width, cfg.upper_teeth_share * opening)
    lower_h = min(cfg.lower_teeth * face_width, cfg.lower_teeth_share * opening)
    for lip, height in ((upper_l, upper_h), (lower_l, -lower_h)):
        band = np.concatenate([lip, (lip + [0, height])[::-1]])
        m = cv2.GaussianBlur(_fill(shape, band), (0, 0), max(cfg.feather * face_width, 0.5))[..., None]
        shade = 1 - 0.35 * across[..., None] ** 2
        paint = paint * (1 - m) + np.array(cfg.teeth, np.float32) * shade * m
    mid_lower = lower_l[len(lower_l) // 2]
    tongue_axes = (int(0.45 * half_width), max(int(cfg.tongue_height * opening), 1))
    tongue = np.zeros(shape, np.uint8)
    cv2.ellipse(
        tongue, (int(mid_lower[0]), int(mid_lower[1] - lower_h * 0.3)), tongue_axes, 0, 180, 360, 255, -1
    )
    tm = (tongue.astype(np.float32) / 255)[..., None] * 0.7
    paint = paint * (1 - tm) + np.array(cfg.tongue, np.float32) * tm
    paint *= 1 - cfg.corner_shade * across[..., None] ** 3

    alpha = _fill(shape, ring_l)
    sigma = max(cfg.feather * face_width, 0.5)
    alpha = strength * cv2.GaussianBlur(alpha, (0, 0), sigma)[..., None]
    out = image.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(roi * (1 - alpha) + paint * alpha, 0, 255).astype(np.uint8)
    return out

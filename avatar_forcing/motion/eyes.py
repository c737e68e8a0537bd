"""Closed eyelids: where a blink nearly closes the eye, the warp alone leaves a slit of eye white, so the
lid is painted over it in the portrait's own lid skin tone, with a lash line where the lids meet."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class EyelidConfig:
    start: float = 0.35  # the painted lid appears once the eye is this much closed ...
    full: float = 0.75  # ... and is opaque from this much closed
    skin_offset: float = 0.06  # lid skin is sampled this far above the upper lid (face widths)
    lash: RGB = (52, 36, 32)
    lash_width: float = 0.008  # face widths
    feather: float = 0.006


def lid_skin(image: np.ndarray, upper: np.ndarray, face_width: float, cfg: EyelidConfig) -> np.ndarray:
    """Median colour of a small patch above the upper lid of the rest portrait."""
    centre = upper.mean(0) - [0, cfg.skin_offset * face_width]
    r = max(int(0.02 * face_width), 2)
    x, y = int(centre[0]), int(centre[1])
    patch = image[max(y - r, 0) : y + r, max(x - 2 * r, 0) : x + 2 * r].reshape(-1, 3)
    return np.median(patch, axis=0).astype(np.float32)


def draw_eyelid(
    image: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    closure: float,
    skin: np.ndarray,
    face_width: float,
    cfg: EyelidConfig = EyelidConfig(),
) -> np.ndarray:
    """``upper``/``lower``: deformed lid points corner to corner; ``closure``: 1 - gap / rest gap."""
    strength = float(np.clip((closure - cfg.start) / (cfg.full - cfg.start), 0.0, 1.0))
    if strength <= 0.0:
        return image
    ring = np.concatenate([upper, lower[::-1]])
    pad = int(face_width * (cfg.lash_width + 3 * cfg.feather)) + 3
    x0, y0 = np.maximum(np.floor(ring.min(0)).astype(int) - pad, 0)
    x1, y1 = np.ceil(ring.max(0)).astype(int) + pad
    x1, y1 = min(x1, image.shape[1]), min(y1, image.shape[0])
    if x1 <= x0 or y1 <= y0:
        return image
    off = np.array([x0, y0])
    shape = (y1 - y0, x1 - x0)
    lid = np.zeros(shape, np.uint8)
    cv2.fillPoly(lid, [np.round((ring - off) * 4).astype(np.int32)], 255, cv2.LINE_AA, shift=2)
    lash = np.zeros(shape, np.uint8)
    lash_line = (upper + lower) / 2 if closure > 0.9 else upper + [0, 0.5 * cfg.lash_width * face_width]
    cv2.polylines(
        lash,
        [np.round((lash_line - off) * 4).astype(np.int32)],
        False,
        255,
        max(int(cfg.lash_width * face_width), 1),
        cv2.LINE_AA,
        shift=2,
    )
    sigma = max(cfg.feather * face_width, 0.5)
    a_lid = strength * cv2.GaussianBlur(lid.astype(np.float32) / 255, (0, 0), sigma)[..., None]
    a_lash = strength * cv2.GaussianBlur(lash.astype(np.float32) / 255, (0, 0), sigma / 2)[..., None]
    out = image.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)
    roi = roi * (1 - a_lid) + skin * a_lid
    roi = roi * (1 - a_lash) + np.array(cfg.lash, np.float32) * a_lash
    out[y0:y1, x0:x1] = np.clip(roi, 0, 255).astype(np.uint8)
    return out

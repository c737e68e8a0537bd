"""Eyelids. As a blink closes the eye, the warp drags the lashes down over the eye and leaves a smear, so
the lid is painted, opaque, over the region between the lid crease and the lid's margin where it now is
(the meeting line of the lids once shut): the portrait's own lid skin, shaded darker toward the margin,
soft toward the crease, with a lash line (the portrait's own lash colour) along the margin. What is still
open below the margin stays the portrait's own eye."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from avatar_forcing.media.image import LUMA


@dataclass(frozen=True)
class EyelidConfig:
    # The warp alone lowers the portrait's own lid, lashes and crease faithfully up to about a third closed
    # (eyeBlink ~0.15-0.2, or a little blink, squint and smile together while talking); a painted lid
    # before that replaces the real lid with flat skin and reads as a sleepy droop. Past it the lashes
    # start to smear, so:
    start: float = 0.3  # the painted lid appears once the eye is this much closed ...
    full: float = 0.5  # ... and is opaque from this much closed
    shut: float = 0.9  # from this much closed the lids meet
    skin_offset: float = 0.05  # lid skin is sampled this far above the upper lid (face widths) ...
    # ... from its brightest quarter: the crease's shadow and brow hair fall in the patch too (often more
    # than half of it) and made the painted lid a dark brown band, "a bruise" to fresh reviewers
    skin_quantile: float = 75.0
    margin_shade: float = 0.2  # the lid darkens by this much toward its margin
    lash_width: float = 0.007  # face widths
    lash_quantile: float = 5.0  # lash colour: this percentile of the rest eye region's brightness
    feather: float = 0.005  # edge softness at the lower lid (face widths)
    crease_feather: float = 0.03  # and toward the crease, where the painted lid meets the real one
    white_quantile: float = 75.0  # the eye white: the brightest quarter of the eye outside the iris ...
    iris_margin: float = 1.15  # ... whose circle (iris landmarks' mean radius) is widened by this


@dataclass(frozen=True)
class EyeLook:
    skin: np.ndarray  # RGB float32
    lash: np.ndarray  # RGB float32
    white: np.ndarray | None = None  # RGB float32 of the eye white; None when too little of it shows


def eye_look(image: np.ndarray, upper: np.ndarray, lower: np.ndarray, face_width: float,
             cfg: EyelidConfig = EyelidConfig(), iris: np.ndarray | None = None) -> EyeLook:
    """Sample the rest portrait: lid skin above the upper lid, the lash colour inside the eye and, given
    the iris (its centre and ring points), the eye white beside it."""
    centre = upper.mean(0) - [0, cfg.skin_offset * face_width]
    r = max(int(0.02 * face_width), 2)
    x, y = int(centre[0]), int(centre[1])
    patch = image[max(y - r, 0) : y + r, max(x - 2 * r, 0) : x + 2 * r].reshape(-1, 3)
    luma = patch.astype(np.float32) @ LUMA
    skin = np.median(patch[luma >= np.percentile(luma, cfg.skin_quantile)], axis=0).astype(np.float32)
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(np.concatenate([upper, lower[::-1]])).astype(np.int32)], 1)
    inside = image[mask > 0].astype(np.float32)
    if len(inside) < 4:
        return EyeLook(skin, skin * 0.3)
    dark = inside.sum(1) <= np.percentile(inside.sum(1), cfg.lash_quantile)
    white = None
    if iris is not None:
        yy, xx = np.nonzero(mask)  # the pixels of `inside`, in the same order
        radius = cfg.iris_margin * np.linalg.norm(iris[1:] - iris[0], axis=1).mean()
        sclera = inside[np.hypot(xx - iris[0, 0], yy - iris[0, 1]) > radius]
        if len(sclera) >= 4:
            luma = sclera @ LUMA
            white = np.median(sclera[luma >= np.percentile(luma, cfg.white_quantile)], axis=0)
    return EyeLook(skin, inside[dark].mean(0), white)


def draw_eyelid(image: np.ndarray, crease: np.ndarray, upper: np.ndarray, lower: np.ndarray, closure: float,
                look: EyeLook, face_width: float, cfg: EyelidConfig = EyelidConfig()) -> np.ndarray:
    """``crease``/``upper``/``lower``: deformed points corner to corner (crease without the corners);
    ``closure``: 1 - gap / rest gap."""
    strength = float(np.clip((closure - cfg.start) / (cfg.full - cfg.start), 0.0, 1.0))
    if strength <= 0.0:
        return image
    top = np.concatenate([upper[:1], crease, upper[-1:]])
    # where the lid's edge is: the meeting line of the lids once (nearly) shut, no slit of iris below it
    margin = (upper + lower) / 2 if closure >= cfg.shut else upper
    margin = np.concatenate([upper[:1], margin[1:-1], upper[-1:]])
    region = np.concatenate([top, margin[::-1]])
    pad = int(face_width * (cfg.crease_feather * 3 + cfg.lash_width)) + 3
    x0, y0 = np.maximum(np.floor(region.min(0)).astype(int) - pad, 0)
    x1, y1 = np.ceil(region.max(0)).astype(int) + pad
    x1, y1 = min(x1, image.shape[1]), min(y1, image.shape[0])
    if x1 <= x0 or y1 <= y0:
        return image
    off = np.array([x0, y0])
    shape = (y1 - y0, x1 - x0)

    def fill(polygon: np.ndarray, sigma: float) -> np.ndarray:
        mask = np.zeros(shape, np.uint8)
        cv2.fillPoly(mask, [np.round((polygon - off) * 4).astype(np.int32)], 255, cv2.LINE_AA, shift=2)
        return cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), max(sigma, 0.5))

    # Opaque from the margin up to a third of the way to the crease, fading out toward the crease.
    half = np.concatenate([upper[:1], (crease + 2 * margin[1:-1]) / 3, upper[-1:]])
    core = fill(np.concatenate([half, margin[::-1]]), cfg.feather * face_width)
    soft = fill(region, cfg.crease_feather * face_width)
    alpha = strength * np.maximum(core, soft)[..., None]

    # Lid shading: darker toward the margin.
    yy = np.arange(shape[0], dtype=np.float32)[:, None] + y0
    top_y, margin_y = float(top[:, 1].mean()), float(margin[:, 1].mean())
    t = np.clip((yy - top_y) / max(margin_y - top_y, 1.0), 0, 1)[..., None]
    lid = look.skin * (1 - cfg.margin_shade * t)

    lash = np.zeros(shape, np.uint8)
    width = max(int(round(cfg.lash_width * face_width)), 1)
    line = np.round((margin - off) * 4).astype(np.int32)
    cv2.polylines(lash, [line], False, 255, width, cv2.LINE_AA, shift=2)
    a_lash = strength * cv2.GaussianBlur(lash.astype(np.float32) / 255, (0, 0), 0.6)[..., None]

    out = image.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)
    roi = roi * (1 - alpha) + lid * alpha
    roi = roi * (1 - a_lash) + look.lash * a_lash
    out[y0:y1, x0:x1] = np.clip(roi, 0, 255).astype(np.uint8)
    return out

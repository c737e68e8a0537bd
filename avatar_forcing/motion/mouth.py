"""The mouth interior, painted where the warped lips part beyond the portrait's own opening.

Laid out in the mouth's own frame (along the lips, corner to corner, and down the face), so it follows a
tilted head. Built as a real talking mouth looks from the front: the upper teeth are fixed to the skull,
so their biting edge stays where it is while the jaw drops and the upper lip covers their roots; the
visible part is the lower edge of the incisors, flattest across the front teeth and fading into the
shadowed corners (the buccal corridor). The lower teeth ride on the jaw just above the lower lip and show
less, in the upper teeth's shadow. Behind them a cavity that is dim but not black (the lips' own colour,
darkened, deepest toward the throat), and a low tongue. Where a moustache hangs over the upper lip its
hair stays in front of the opening. Colours come from the portrait: its own teeth when it shows them,
else a tooth white scaled to the photo's light; cavity and tongue from its lower lip, so a painting gets
painted colours, a dim photo a dim mouth and a grey photo a grey one. A closed mouth paints nothing, and
nothing is painted outside the inner lip line.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from avatar_forcing.media.image import LUMA

RGB = tuple[int, int, int]
GAINS = tuple[float, float, float]


@dataclass(frozen=True)
class MouthConfig:
    fade_in: float = 0.04  # the interior fades in over this much extra opening (face widths), so a
    # portrait that already shows teeth keeps its own mouth at rest
    # -- colours --
    lips: RGB = (176, 100, 98)  # lip colour when no portrait was sampled
    lip_band: tuple[float, float] = (0.05, 0.12)  # the lower lip is sampled this far below its inner
    lip_band_span: float = 0.2  # edge (mouth widths), this far either side of the middle
    cavity_gain: GAINS = (0.52, 0.36, 0.36)  # just inside the lips: the lips' colour, darker and redder
    cavity_back_gain: GAINS = (0.3, 0.17, 0.17)  # the throat (dim, not black)
    cavity_luma: tuple[float, float] = (40.0, 75.0)  # just inside the lips, luma kept in this range ...
    cavity_back_luma: tuple[float, float] = (18.0, 40.0)  # ... and at the throat (odd lips, odd photos)
    grey_darken: float = 0.3  # a grey photo's cavity is darker by this much (without hue, only
    # darkness says "inside a mouth")
    teeth: RGB = (214, 206, 192)  # tooth white under the reference light ...
    reference_light: float = 170.0  # ... the skin luminance that light gives
    light_range: tuple[float, float] = (0.45, 1.0)  # how far the photo's light may scale it (never
    # brighter: inside a mouth teeth are never lit better than the reference)
    own_teeth_opening: float = 0.06  # a rest opening this wide (mouth widths) shows the portrait's teeth
    own_teeth_chroma: float = 0.3  # ... if its whitest pixels are this pale (else they are lips)
    reference_chroma: float = 40.0  # skin this colourful takes the paint's colours as they are; a grey
    # photo (chroma 0) gets grey paint
    # The eye whites carry the photo's cast (a painting's yellowed varnish, warm light) that the teeth would
    # carry too, so painted teeth take their hue: each channel scaled by the whites' share of their
    # brightest channel over the tooth white's, never brighter, down to white_cast_floor ...
    white_cast_floor: float = 0.5
    white_min_light: float = 0.9  # ... if the whites are at least this bright relative to the skin (a
    # darker sample is lashes or the lid's shadow, not the eye white)
    # -- cavity --
    throat_width: float = 0.42  # half-width of the darkest part (mouth widths) ...
    throat_depth: float = 0.6  # ... centred this far down the opening (0 upper lip, 1 lower lip) ...
    throat_height: float = 0.55  # ... and this tall (share of the opening)
    palate_shadow: float = 0.35  # darkening just below the upper teeth (the palate behind them) ...
    palate_shadow_len: float = 0.06  # ... fading over this far down (mouth widths)
    corner_shade: float = 0.35  # darkening into the corners (at 0.65 a fresh reviewer saw "black wedges"
    # in every laugh's corners) ...
    corner_power: float = 3.0  # ... that starts this late (higher: only near the corners)
    # -- upper teeth: fixed to the skull; their biting edge hangs below the upper lip's middle --
    upper_teeth: float = 0.13  # visible height of the front teeth at most (mouth widths) ...
    upper_teeth_share: float = 0.48  # ... and at most this share of the opening (a small opening)
    upper_teeth_span: float = 0.4  # the arch is hidden in the corners' shadow beyond (mouth widths)
    upper_tooth_widths: tuple[float, ...] = (0.15, 0.11, 0.085, 0.07, 0.06)  # seen from the front,
    # centre outward: incisors, canine, premolars (mouth widths)
    upper_tooth_lengths: tuple[float, ...] = (1.0, 0.95, 0.97, 0.9, 0.85)  # their visible lengths: close,
    # so that the biting edge is one smooth arc (more varied, it read as a stepped row of piano keys)
    smile_arc: float = 0.25  # the biting edge rises toward the sides by this share of the height
    # -- lower teeth: ride on the jaw, just above the lower lip --
    lower_teeth: float = 0.045
    lower_teeth_share: float = 0.12
    lower_teeth_span: float = 0.26
    lower_tooth_widths: tuple[float, ...] = (0.1, 0.1, 0.085, 0.07)
    lower_tooth_lengths: tuple[float, ...] = (1.0, 1.0, 0.9, 0.8)
    lower_teeth_light: float = 0.72  # in the upper teeth's and lip's shadow
    # -- both rows of teeth --
    tooth_round: float = 0.12  # each tooth's biting corners are rounded off by this share of its height
    tooth_gap_shade: float = 0.07  # darkening along a gap between teeth (0.12: "hard seams") ...
    tooth_gap_px: float = 0.7  # ... of about this width (pixels)
    tooth_curve: float = 0.1  # a tooth is darker toward its sides (its face curves away)
    teeth_side_shade: float = 0.45  # the arch darkens toward the corners (turning away, less light);
    # teeth darken toward the cavity's colour (light bounced inside a mouth), not toward grey
    tooth_edge_shade: float = 0.12  # the translucent biting edge is a little darker ...
    tooth_edge_len: float = 0.25  # ... over this share of the visible height
    teeth_edge_px: float = 0.6  # anti-aliasing of the teeth outline (pixels)
    lip_shadow: float = 0.4  # the lip's shadow on the teeth just below (above) it ...
    lip_shadow_len: float = 0.03  # ... fading over this far (mouth widths)
    # -- tongue: low in the cavity, behind the lower teeth --
    tongue_gain: GAINS = (0.8, 0.46, 0.46)  # of the lips' colour, at its lit top ...
    tongue_shade: float = 0.4  # ... darker by this much at its base
    tongue_width: float = 0.28  # half-width, mouth widths
    tongue_height: float = 0.36  # share of the opening
    tongue_opacity: float = 0.75
    # -- a moustache over the upper lip --
    hair_band: tuple[float, float] = (0.15, 0.25)  # above the upper lip's inner edge (mouth widths):
    # the skin below the nose, or a moustache
    hair_ratio: tuple[float, float] = (0.65, 0.4)  # that band as bright as the cheeks times this: no
    # hair (a shadow at most); this dark: a moustache fully over the lip
    hair_fringe: float = 0.05  # hair hangs in front of the opening this far in (mouth widths): the
    # moustache above the lip line, mirrored down, only darkening what is behind it ...
    hair_fringe_opacity: float = 0.9  # ... this much at the lip line
    # -- edges --
    edge_feather: float = 0.01  # the paint fades in over this far inside the inner lip line (face
    # widths); it never reaches outside it
    edge_feather_px: float = 1.5  # ... and at least this many pixels
    edge_smooth: int = 2  # corner-cutting passes that round the landmark polygon's kinks
    edge_supersample: int = 4  # the outline is drawn this much finer, then averaged (no stair steps)


@dataclass(frozen=True)
class MouthLook:
    teeth: np.ndarray  # RGB float32
    colour: float = 1.0  # how colourful the photo is: 0 = black and white, 1 = as the config's colours
    light: float = 1.0  # the photo's light on skin relative to the reference light
    lips: np.ndarray | None = None  # RGB float32 of the lower lip; None = the config's
    hair: float = 0.0  # how much a moustache covers the upper lip: 0 none .. 1 fully


def _fill(shape: tuple[int, int], polygon: np.ndarray, aa: bool = True) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 4).astype(np.int32)], 255,
                 lineType=cv2.LINE_AA if aa else cv2.LINE_8, shift=2)
    return mask


def mouth_opening(upper: np.ndarray, lower: np.ndarray) -> float:
    """Vertical gap between the middle thirds of the inner lips, in pixels (a smile lifting the corners
    does not open the mouth)."""
    mid_upper, mid_lower = len(upper) // 2, len(lower) // 2
    lower_y = np.mean(lower[mid_lower - 1 : mid_lower + 2, 1])
    return float(lower_y - np.mean(upper[mid_upper - 1 : mid_upper + 2, 1]))


def _frame(upper: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The mouth frame: origin between the corners, ``ex`` toward the subject's left corner, ``ey`` down
    the face, and the corner-to-corner width."""
    corner_a, corner_b = upper[0], upper[-1]
    width = max(float(np.linalg.norm(corner_b - corner_a)), 1.0)
    ex = (corner_b - corner_a) / width
    return (corner_a + corner_b) / 2, ex, np.array([-ex[1], ex[0]]), width


def _band(image: np.ndarray, line: np.ndarray, upper: np.ndarray, span: float,
          offsets: tuple[float, float]) -> np.ndarray:
    """Pixels (N, 3) of a band along a lip line (points corner to corner), ``offsets`` mouth widths down
    the face from it (negative: up), ``span`` mouth widths either side of the middle."""
    origin, ex, ey, width = _frame(upper)
    u = np.linspace(-span, span, 9)
    v = _curve(line, origin, ex, ey, width, u)
    pts = [origin + ex * (uu * width) + ey * (vv + o * width)
           for o in np.linspace(*offsets, 4) for uu, vv in zip(u, v, strict=True)]
    xy = np.round(np.array(pts)).astype(int)
    xy = np.clip(xy, 0, [image.shape[1] - 1, image.shape[0] - 1])
    return image[xy[:, 1], xy[:, 0]].astype(np.float32)


def mouth_look(image: np.ndarray, upper: np.ndarray, lower: np.ndarray, skin: np.ndarray,
               cfg: MouthConfig = MouthConfig(), eye_white: np.ndarray | None = None) -> MouthLook:
    """Sample the rest portrait once: its own teeth if its mouth is open enough to show them, else tooth
    white scaled to the light on its skin (``skin``: (N, 3) pixels of the face) in the hue of its eye
    whites (``eye_white``, RGB); its lower lip's colour; whether hair covers its upper lip."""
    width = max(float(np.linalg.norm(upper[-1] - upper[0])), 1.0)
    pixels = skin.astype(np.float32)
    chroma = float(np.median(pixels.max(1) - pixels.min(1)))
    colour = float(np.clip(chroma / cfg.reference_chroma, 0.0, 1.0))
    luma = float(np.median(pixels @ LUMA))
    light = float(np.clip(luma / cfg.reference_light, *cfg.light_range))
    full_lower = np.concatenate([upper[:1], lower, upper[-1:]])
    lips = np.median(_band(image, full_lower, upper, cfg.lip_band_span, cfg.lip_band), 0)
    hair_band = (-cfg.hair_band[1], -cfg.hair_band[0])
    above = np.median(_band(image, upper, upper, cfg.lip_band_span, hair_band), 0)
    ratio = float(above @ LUMA) / max(luma, 1.0)
    hi, lo = cfg.hair_ratio
    hair = float(np.clip((hi - ratio) / (hi - lo), 0.0, 1.0))
    teeth = np.array(cfg.teeth, np.float32) * light
    if eye_white is not None and float(eye_white @ LUMA) >= cfg.white_min_light * luma:
        hue = (eye_white / max(float(eye_white.max()), 1.0)) / (teeth / teeth.max())
        teeth = teeth * np.clip(hue, cfg.white_cast_floor, 1.0)
    if mouth_opening(upper, lower) > cfg.own_teeth_opening * width:
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(np.concatenate([upper, lower[::-1]])).astype(np.int32)], 1)
        inside = image[mask > 0].astype(np.float32)
        if len(inside) >= 8:  # the whitest quarter (highest darkest channel: not the red lips) ...
            white = inside[inside.min(1) >= np.percentile(inside.min(1), 75)].mean(0)
            if white.max() - white.min() <= cfg.own_teeth_chroma * white.max():  # ... if it is teeth
                teeth = white
    return MouthLook(teeth.astype(np.float32), colour, light, lips.astype(np.float32), hair)


def _scaled(rgb: np.ndarray, gains: GAINS, luma_range: tuple[float, float]) -> np.ndarray:
    """``rgb`` times per-channel ``gains``, its luma brought into ``luma_range``."""
    out = rgb * np.array(gains, np.float32)
    luma = max(float(out @ LUMA), 1.0)
    return out * (np.clip(luma, *luma_range) / luma)


def _teeth(u: np.ndarray, widths: tuple[float, ...], lengths: tuple[float, ...], span: float,
           width: float, cfg: MouthConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel of the mouth frame: each tooth's visible length (share of the row's height: rounded at
    its biting corners, shorter toward the sides, 0 beyond ``span``) and its shading (gaps, curvature,
    turning away toward the corners)."""
    au = np.abs(u)
    bounds = np.concatenate([[0.0], np.cumsum(widths)])
    t = np.interp(au, bounds, np.arange(len(bounds), dtype=np.float64)).astype(np.float32)
    k = np.minimum(t.astype(int), len(widths) - 1)
    frac = np.clip(t - k, 0.0, 1.0)
    side = 2 * frac - 1  # -1 .. 1 across one tooth
    length = np.array(lengths, np.float32)[k] * (1 - cfg.tooth_round * side**6)
    length = length * (1 - cfg.smile_arc * (au / span) ** 2) * np.clip((span - au) / 0.03, 0, 1)
    gap_px = np.minimum(frac, 1 - frac) * np.array(widths, np.float32)[k] * width
    shade = (1 - cfg.tooth_gap_shade * np.exp(-((gap_px / cfg.tooth_gap_px) ** 2) / 2)) * (
        1 - cfg.tooth_curve * side**2) * (1 - cfg.teeth_side_shade * np.clip(au / span, 0, 1) ** 2)
    return length, shade


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
    if look is None:
        look = MouthLook(np.array(cfg.teeth, np.float32))
    lips = np.array(cfg.lips, np.float32) if look.lips is None else look.lips
    ring = np.concatenate([upper, lower[::-1]])
    pad = 2
    x0, y0 = np.floor(ring.min(0)).astype(int) - pad
    x1, y1 = np.ceil(ring.max(0)).astype(int) + pad
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return image
    shape = (y1 - y0, x1 - x0)

    origin, ex, ey, width = _frame(upper)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    rel = np.stack([xx - origin[0], yy - origin[1]], -1)
    u = (rel @ ex) / width  # -0.5 .. 0.5 corner to corner
    v = rel @ ey  # pixels down the face
    full_lower = np.concatenate([upper[:1], lower, upper[-1:]])
    top = _curve(upper, origin, ex, ey, width, u)  # inner upper lip at each u (pixels down)
    bottom = _curve(full_lower, origin, ex, ey, width, u)
    mid = np.zeros(1, np.float32)
    top0 = float(_curve(upper, origin, ex, ey, width, mid)[0])
    bottom0 = float(_curve(full_lower, origin, ex, ey, width, mid)[0])
    gap = np.maximum(bottom - top, 1.0)
    depth = np.clip((v - top) / gap, 0.0, 1.0)  # 0 at the upper lip, 1 at the lower lip

    # cavity: the lips' colour darkened, darker toward the throat
    dim = 1 - cfg.grey_darken * (1 - look.colour)
    front = _scaled(lips, cfg.cavity_gain, cfg.cavity_luma) * dim
    back = _scaled(lips, cfg.cavity_back_gain, cfg.cavity_back_luma) * dim
    throat = np.hypot(u / cfg.throat_width, (depth - cfg.throat_depth) / cfg.throat_height)
    throat = (np.clip(1 - throat, 0, 1) ** 0.7)[..., None]
    paint = front * (1 - throat) + back * throat

    # tongue: a low, soft mound behind the lower teeth, lit at its top
    rise = np.clip((1 - depth) / max(cfg.tongue_height, 1e-3), 0, 1)
    tongue = np.sqrt(np.clip(1 - (u / cfg.tongue_width) ** 2 - rise**2, 0, 1))[..., None] * cfg.tongue_opacity
    tongue_rgb = _scaled(lips, cfg.tongue_gain, (0.0, 255.0)) * (1 - cfg.tongue_shade * (1 - rise))[..., None]
    paint = paint * (1 - tongue) + tongue_rgb * tongue

    aa = max(cfg.teeth_edge_px, 0.3)
    shadow_len = max(cfg.lip_shadow_len * width, 0.5)
    # lower teeth: their biting edge rides on the jaw, a little above the lower lip's middle
    low_h = min(cfg.lower_teeth * width, cfg.lower_teeth_share * opening)
    if low_h > 0.5:
        length, shade = _teeth(u, cfg.lower_tooth_widths, cfg.lower_tooth_lengths, cfg.lower_teeth_span,
                               width, cfg)
        edge = bottom0 - low_h * length
        m = (np.clip((v - edge) / aa + 0.5, 0, 1) * (length > 0))[..., None]
        lit = 1 - cfg.lip_shadow * np.exp(-np.maximum(bottom - v, 0) / shadow_len)
        lit = (cfg.lower_teeth_light * shade * lit)[..., None]
        paint = paint * (1 - m) + (front + (look.teeth - front) * lit) * m

    # the palate's shadow under the upper teeth
    up_h = min(cfg.upper_teeth * width, cfg.upper_teeth_share * opening)
    below = np.maximum(v - (top0 + up_h), 0)
    paint *= (1 - cfg.palate_shadow * np.exp(-below / max(cfg.palate_shadow_len * width, 0.5)))[..., None]

    # upper teeth: fixed to the skull, so their biting edge is measured from the upper lip's middle; the
    # lip covers their roots (a smile lifting it at the sides shows more of the side teeth)
    if up_h > 0.5:
        length, shade = _teeth(u, cfg.upper_tooth_widths, cfg.upper_tooth_lengths, cfg.upper_teeth_span,
                               width, cfg)
        edge = top0 + up_h * length
        m = (np.clip((edge - v) / aa + 0.5, 0, 1) * (length > 0))[..., None]
        lit = 1 - cfg.lip_shadow * np.exp(-np.maximum(v - top, 0) / shadow_len)
        tip = 1 - cfg.tooth_edge_shade * np.clip(1 - (edge - v) / max(cfg.tooth_edge_len * up_h, 0.5), 0, 1)
        lit = (shade * lit * tip)[..., None]
        paint = paint * (1 - m) + (front + (look.teeth - front) * lit) * m

    corners = np.clip(np.abs(2 * u), 0, 1) ** cfg.corner_power
    paint *= (1 - cfg.corner_shade * corners)[..., None]
    if look.colour < 1.0:  # a grey photo gets a grey mouth
        grey = paint @ LUMA
        paint = grey[..., None] + look.colour * (paint - grey[..., None])

    # how far inside the (smoothed) inner lip line each pixel lies, drawn finer and averaged
    ss = max(int(cfg.edge_supersample), 1)
    outline = _smooth(ring, cfg.edge_smooth) - np.array([x0, y0], np.float64)
    fine = _fill((shape[0] * ss, shape[1] * ss), (outline + 0.5) * ss - 0.5, aa=False)
    inside = cv2.distanceTransform((fine > 0).astype(np.uint8), cv2.DIST_L2, 3) / ss
    inside = cv2.resize(inside, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)

    roi = image[y0:y1, x0:x1].astype(np.float32)
    if look.hair > 0:  # a moustache hangs in front of the opening: its hair only darkens what is behind
        below_lip = np.maximum(v - top, 0)[..., None]
        src = np.stack([xx, yy], -1) - 2 * below_lip * ey.astype(np.float32)  # mirrored about the lip line
        mx, my = (np.ascontiguousarray(src[..., i], np.float32) for i in (0, 1))
        hair = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        fringe = look.hair * cfg.hair_fringe_opacity * np.exp(-inside / max(cfg.hair_fringe * width, 0.5))
        paint = paint + (np.minimum(paint, hair.astype(np.float32)) - paint) * fringe[..., None]

    # alpha: 0 on the inner lip line and outside it, fading in over the feather inside
    feather = max(cfg.edge_feather * face_width, cfg.edge_feather_px)
    alpha = strength * np.clip(inside / feather, 0, 1)[..., None]
    out = image.copy()
    out[y0:y1, x0:x1] = np.clip(roi * (1 - alpha) + paint * alpha, 0, 255).astype(np.uint8)
    return out


def _smooth(ring: np.ndarray, passes: int) -> np.ndarray:
    """A closed polygon with its corners cut ``passes`` times (Chaikin): it keeps to the landmarks'
    line, rounding its kinks inward."""
    for _ in range(passes):
        nxt = np.roll(ring, -1, axis=0)
        ring = np.stack([0.75 * ring + 0.25 * nxt, 0.25 * ring + 0.75 * nxt], 1).reshape(-1, 2)
    return ring


def _curve(points: np.ndarray, origin: np.ndarray, ex: np.ndarray, ey: np.ndarray, width: float,
           u: np.ndarray) -> np.ndarray:
    """A lip line (points corner to corner) as its distance down the face at each u of the mouth frame."""
    rel = points - origin
    pu, pv = (rel @ ex) / width, rel @ ey
    order = np.argsort(pu)
    return np.interp(u, pu[order], pv[order]).astype(np.float32)

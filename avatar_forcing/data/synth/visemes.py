"""Mouth motion from phoneme events: phoneme -> viseme -> blendshape targets, blended with coarticulation.

Coarticulation follows the dominance idea (Cohen & Massaro): every phoneme pulls the mouth towards
its viseme's shape with a weight that is 1 while the phoneme sounds and decays exponentially outside
it. Strong articulations (lip closures, lip-teeth contact) dominate their neighbours, so a /m/ still
closes the lips between two open vowels, while weak ones (/h/, /t/) take their shape from context.
"""

from __future__ import annotations

import numpy as np

from avatar_forcing.data.synth.config import TalkingConfig
from avatar_forcing.motion.vector import idx

# Blendshape targets of each viseme (weights before the speaker's articulation gain). A name
# without Left/Right applies to both sides.
VISEMES: dict[str, dict[str, float]] = {
    "rest": {},
    "PP": {"mouthClose": 0.45, "mouthPress": 0.35, "mouthRollLower": 0.15, "jawOpen": 0.04},
    "FF": {"mouthRollLower": 0.45, "mouthUpperUp": 0.2, "jawOpen": 0.08, "mouthShrugUpper": 0.15},
    "TH": {"jawOpen": 0.14, "mouthStretch": 0.12, "mouthLowerDown": 0.15},
    "DD": {"jawOpen": 0.16, "mouthStretch": 0.12, "mouthLowerDown": 0.1},
    "KK": {"jawOpen": 0.22, "mouthStretch": 0.08},
    "CH": {"mouthFunnel": 0.45, "mouthPucker": 0.2, "jawOpen": 0.1, "mouthShrugUpper": 0.15},
    "SS": {"jawOpen": 0.06, "mouthStretch": 0.3, "mouthSmile": 0.1},
    "RR": {"mouthPucker": 0.35, "mouthFunnel": 0.25, "jawOpen": 0.12},
    "W": {"mouthPucker": 0.65, "mouthFunnel": 0.3, "jawOpen": 0.05},
    "J": {"mouthStretch": 0.2, "jawOpen": 0.12, "mouthSmile": 0.08},
    "AA": {"jawOpen": 0.55, "mouthLowerDown": 0.3, "mouthUpperUp": 0.08},
    "E": {"jawOpen": 0.36, "mouthStretch": 0.3, "mouthSmile": 0.12, "mouthLowerDown": 0.15},
    "I": {"jawOpen": 0.2, "mouthStretch": 0.45, "mouthSmile": 0.22},
    "O": {"jawOpen": 0.42, "mouthFunnel": 0.5, "mouthPucker": 0.25},
    "U": {"jawOpen": 0.15, "mouthPucker": 0.6, "mouthFunnel": 0.35},
    "schwa": {"jawOpen": 0.3, "mouthLowerDown": 0.1},
}
STRONG_VISEMES = frozenset({"PP", "FF", "W"})  # those get `closure_dominance`

# eSpeak NG English phoneme mnemonics -> viseme; diphthongs -> (first, second) half.
PHONEME_VISEMES: dict[str, str | tuple[str, str]] = {
    "p": "PP",
    "b": "PP",
    "m": "PP",
    "f": "FF",
    "v": "FF",
    "T": "TH",
    "D": "TH",
    "t": "DD",
    "d": "DD",
    "n": "DD",
    "l": "DD",
    "t#": "DD",
    "d#": "DD",
    "n-": "DD",
    "l/": "DD",
    "L": "DD",
    "k": "KK",
    "g": "KK",
    "N": "KK",
    "h": "KK",
    "x": "KK",
    "?": "KK",
    "S": "CH",
    "Z": "CH",
    "tS": "CH",
    "dZ": "CH",
    "s": "SS",
    "z": "SS",
    "r": "RR",
    "r-": "RR",
    "3": "RR",
    "3:": "RR",
    "R": "RR",
    "w": "W",
    "W": "W",
    "j": "J",
    "C": "J",
    "a": "AA",
    "A:": "AA",
    "A": "AA",
    "aa": "AA",
    "V": "AA",
    "A@": "AA",
    "0": "O",
    "E": "E",
    "e": "E",
    "e@": ("E", "schwa"),
    "eI": ("E", "I"),
    "I": "I",
    "i:": "I",
    "i": "I",
    "I2": "I",
    "I#": "I",
    "i@": ("I", "schwa"),
    "i@3": ("I", "schwa"),
    "O:": "O",
    "O": "O",
    "O@": ("O", "schwa"),
    "OI": ("O", "I"),
    "oU": ("O", "U"),
    "o@": ("O", "schwa"),
    "U": "U",
    "u:": "U",
    "U@": ("U", "schwa"),
    "u": "U",
    "aI": ("AA", "I"),
    "aU": ("AA", "U"),
    "aI@": ("AA", "schwa"),
    "aU@": ("AA", "schwa"),
    "@": "schwa",
    "@2": "schwa",
    "@5": "schwa",
    "@L": ("schwa", "DD"),
    "a#": "schwa",
    "3:r": "RR",
}
_SILENCE = frozenset({"_", "_:", "_!", "_^", "", "||", "|"})
_MARKS = "'\",%=:;!^|"  # eSpeak stress/length marks around a mnemonic

_SIDED = ("mouthStretch", "mouthSmile", "mouthLowerDown", "mouthUpperUp", "mouthPress")
MOUTH_CHANNELS: tuple[str, ...] = (
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthShrugUpper",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "mouthPressLeft",
    "mouthPressRight",
)
MOUTH_COLUMNS = np.array([idx(n) for n in MOUTH_CHANNELS])
_VISEME_NAMES = tuple(VISEMES)
_TARGETS = np.zeros((len(_VISEME_NAMES), len(MOUTH_CHANNELS)), np.float32)
for _v, _name in enumerate(_VISEME_NAMES):
    for _key, _val in VISEMES[_name].items():
        for _ch in (_key + "Left", _key + "Right") if _key in _SIDED else (_key,):
            _TARGETS[_v, MOUTH_CHANNELS.index(_ch)] = _val


def viseme_of(symbol: str) -> str | tuple[str, str]:
    """Viseme (or diphthong pair) of an eSpeak phoneme mnemonic; unknown symbols read as schwa."""
    if symbol in PHONEME_VISEMES:
        return PHONEME_VISEMES[symbol]
    core = symbol.strip(_MARKS)
    if core in _SILENCE or not core:
        return "rest"
    if core in PHONEME_VISEMES:
        return PHONEME_VISEMES[core]
    for n in (3, 2, 1):  # longest known prefix, e.g. "aI3" -> "aI"
        if core[:n] in PHONEME_VISEMES:
            return PHONEME_VISEMES[core[:n]]
    return "schwa"


def viseme_segments(phonemes: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """(start, end, symbol) phonemes -> (start, end, viseme) segments, diphthongs split 40/60."""
    out = []
    for start, end, symbol in phonemes:
        v = viseme_of(symbol)
        if isinstance(v, tuple):
            mid = start + 0.4 * (end - start)
            out += [(start, mid, v[0]), (mid, end, v[1])]
        else:
            out.append((start, end, v))
    return out


def mouth_track(
    segments: list[tuple[float, float, str]], frames: int, fps: float, cfg: TalkingConfig, gain: float = 1.0
) -> np.ndarray:
    """Coarticulated mouth blendshapes (frames, len(MOUTH_CHANNELS)) from viseme segments.

    A constant weak "rest" pull closes the mouth wherever no phoneme is near.
    """
    out = np.zeros((frames, len(MOUTH_CHANNELS)), np.float32)
    if not segments or frames == 0:
        return out
    starts = np.array([s[0] for s in segments])
    ends = np.array([s[1] for s in segments])
    vis = np.array([_VISEME_NAMES.index(s[2]) for s in segments])
    alpha = np.where(
        np.isin(vis, [_VISEME_NAMES.index(v) for v in STRONG_VISEMES]), cfg.closure_dominance, 1.0
    )
    t = (np.arange(frames) + 0.5) / fps
    # only frames near speech need the (frames x phonemes) weight matrix
    active = (t > starts.min() - 0.3) & (t < ends.max() + 0.3)
    ta = t[active, None]
    outside = np.maximum(np.maximum(starts - ta, ta - ends), 0.0)
    w = alpha * np.exp(-outside / cfg.coarticulation_tau)
    out[active] = (w @ _TARGETS[vis]) / (w.sum(1, keepdims=True) + cfg.rest_weight)
    return np.clip(out * gain, 0.0, 1.0)

"""Which frames of a training window follow the end of one of the user's phrases, found from the user's audio
features alone (no labels): where a listener nods (docs/DATA.md, the listening rules), and where the
preference of `DPOConfig.phrase_end_pose` also scores the head.

A frame is voiced when the mean of its log-mel values is above `vad_level` (features: -1 is silence, speech
sits at about -0.7 to 0; audio/features.py). A phrase ends where at least `min_phrase` voiced frames (pauses
shorter than `min_pause` bridged) are followed by `min_pause` unvoiced ones; the `response` frames from there
on are marked. An end whose pause runs past the window is not known yet and is not marked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from avatar_forcing.audio.features import FEATURE_DIM


@dataclass(frozen=True)
class PhraseEndConfig:
    vad_level: float = -0.6  # in feature units: above about -80 dB of mean mel power
    min_pause: int = 8       # frames (0.3 s, as `eval reactions` counts a phrase end)
    min_phrase: int = 8      # frames: shorter bursts (clicks, breaths) are no phrase
    response: int = 38       # frames marked from the end on (1.5 s: the window in which a nod answers)


def voiced_frames(user_audio: torch.Tensor, cfg: PhraseEndConfig = PhraseEndConfig()) -> np.ndarray:
    """(B, N, F) audio features -> (B, N) bool: the user's voice is on."""
    loudness = user_audio[..., :FEATURE_DIM].float().mean(-1)
    return (loudness > cfg.vad_level).cpu().numpy()


def after_phrase_ends(user_audio: torch.Tensor, cfg: PhraseEndConfig = PhraseEndConfig()) -> torch.Tensor:
    """(B, N, F) audio features -> (B, N) float mask: 1 on the `response` frames after each phrase end."""
    voiced = voiced_frames(user_audio, cfg)
    mask = np.zeros(voiced.shape, np.float32)
    for row, out in zip(voiced, mask, strict=True):
        for end in phrase_ends(row, cfg):
            out[end: end + cfg.response] = 1.0
    return torch.from_numpy(mask).to(user_audio.device)


def phrase_ends(voiced: np.ndarray, cfg: PhraseEndConfig = PhraseEndConfig()) -> list[int]:
    """Frame indices where a phrase of a (N,) voiced row ends (its first silent frame)."""
    ends, run_start, n = [], None, len(voiced)
    t = 0
    while t < n:
        if voiced[t]:
            run_start = t if run_start is None else run_start
            t += 1
            continue
        pause_end = t
        while pause_end < n and not voiced[pause_end]:
            pause_end += 1
        if run_start is not None and pause_end - t >= cfg.min_pause:
            if t - run_start >= cfg.min_phrase:
                ends.append(t)
            run_start = None
        elif pause_end == n:  # the pause runs past the window: its end is not known yet
            break
        t = pause_end  # a short pause is bridged: the phrase goes on
    return ends

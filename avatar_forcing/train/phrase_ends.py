"""Which frames of a training window follow the end of one of the user's phrases, found from the user's audio
features alone (no labels): where a listener nods (docs/DATA.md, the listening rules), and where the
preference of `DPOConfig.phrase_end_pose` also scores the head.

A frame is voiced as audio/voice_activity.py decides. A phrase ends where at least `min_phrase` voiced
frames (pauses shorter than `min_pause` bridged) are followed by `min_pause` unvoiced ones; the `response`
frames from there on are marked. An end whose pause runs past the window is not known yet and is not marked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from avatar_forcing.audio import voice_activity


@dataclass(frozen=True)
class PhraseEndConfig:
    vad_level: float = voice_activity.VOICE_LEVEL
    min_pause: int = 8       # frames (0.3 s, as `eval reactions` counts a phrase end)
    min_phrase: int = 8      # frames: shorter bursts (clicks, breaths) are no phrase
    response: int = 38       # frames marked from the end on (1.5 s: the window in which a nod answers)


def voiced_frames(user_audio: torch.Tensor, cfg: PhraseEndConfig = PhraseEndConfig()) -> np.ndarray:
    """(B, N, F) audio features -> (B, N) bool: the user's voice is on."""
    return voice_activity.voiced(user_audio.float().cpu().numpy(), cfg.vad_level)


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

"""The listener's reaction rules (documented in docs/DATA.md), each reaction labelled as an event.

Rules, applied only while the listener is not taking a turn of their own:
  1. nod        : 200-600 ms after the speaker ends a phrase, with probability ``nod_prob`` (always
                  when the listener backchannels); sometimes a double nod.
  2. smile_mirror: when the speaker smiles, the listener smiles too after a 300-700 ms lag (with
                  ``smile_late_prob``, late: 0.7-1.5 s), at a fraction of the speaker's smile, until
                  shortly after the speaker stops.
  3. laugh_response: when the speaker laughs, a broad smile (with cheek and eye squint) after a lag.
  4. mimicry    : the listener's head follows a delayed, low-passed, scaled copy of the speaker's.
  5. gaze_shift : short glances away (eyeLook*), a Poisson process while listening.
  6. idle       : slow micro-motion of the head and brows, always on (not an event).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avatar_forcing.data.synth.config import ListeningConfig
from avatar_forcing.data.synth.signals import delay, envelope, lowpass, nod, smooth_noise

# eyeLook* channels for a glance in each direction (subject's own left/right)
GAZE_DIRECTIONS: dict[str, dict[str, float]] = {
    "left": {"eyeLookOutLeft": 1.0, "eyeLookInRight": 1.0},
    "right": {"eyeLookInLeft": 1.0, "eyeLookOutRight": 1.0},
    "up": {"eyeLookUpLeft": 1.0, "eyeLookUpRight": 1.0},
    "down": {"eyeLookDownLeft": 1.0, "eyeLookDownRight": 1.0},
    "down-left": {
        "eyeLookDownLeft": 0.7,
        "eyeLookDownRight": 0.7,
        "eyeLookOutLeft": 0.7,
        "eyeLookInRight": 0.7,
    },
    "up-right": {"eyeLookUpLeft": 0.7, "eyeLookUpRight": 0.7, "eyeLookInLeft": 0.7, "eyeLookOutRight": 0.7},
}
GAZE_HEAD_YAW = 0.08  # radians of head turn that follow a full sideways glance


@dataclass
class Cues:
    """What one participant does that the other reacts to (times in seconds)."""

    phrase_ends: list[float] = field(default_factory=list)
    smiles: list[tuple[float, float, float]] = field(default_factory=list)  # onset, end, amplitude
    laughs: list[tuple[float, float]] = field(default_factory=list)  # start, end
    backchannels: list[tuple[float, float]] = field(default_factory=list)  # (phrase end, start) of own


@dataclass
class Reactions:
    head: np.ndarray  # (T, 3) pitch/yaw/roll offsets
    smile: np.ndarray  # (T,) smile weight asked by the reactions
    broad: np.ndarray  # (T,) extra cheek/eye squint of a broad (laughing) smile
    gaze: dict[str, np.ndarray]  # eyeLook* channel -> (T,)
    events: list[dict]


def event(kind: str, time: float, cause_time: float, cause: str, **extra) -> dict:
    return {
        "type": kind,
        "time": round(float(time), 3),
        "cause_time": round(float(cause_time), 3),
        "cause": cause,
        **extra,
    }


def glance(
    t: np.ndarray,
    onset: float,
    hold: float,
    direction: str,
    amplitude: float,
    gaze: dict[str, np.ndarray],
    head: np.ndarray,
) -> None:
    """Add a quick glance (80 ms saccade, hold, return) to ``gaze``, and its small head turn to ``head``."""
    env = envelope(t, onset, onset + hold, 0.08, 0.12) * amplitude
    for ch, w in GAZE_DIRECTIONS[direction].items():
        gaze[ch] = np.maximum(gaze[ch], w * env)
    side = {"left": 1.0, "down-left": 0.7, "right": -1.0, "up-right": -0.7}.get(direction, 0.0)
    head[:, 1] += GAZE_HEAD_YAW * side * env


def react(
    t: np.ndarray,
    fps: float,
    partner: Cues,
    own: Cues,
    listening: np.ndarray,
    partner_head: np.ndarray,
    rng: np.random.Generator,
    late_rng: np.random.Generator,
    cfg: ListeningConfig,
    gain: float,
) -> Reactions:
    """Apply the reaction rules to a listener. ``listening`` (T,) in [0, 1]; ``partner_head`` (T, 3).
    ``late_rng`` decides which smiles are answered late: its own stream, so the rest stays as it was."""
    frames = len(t)
    head = np.zeros((frames, 3))
    smile = np.zeros(frames)
    broad = np.zeros(frames)
    gaze = {ch: np.zeros(frames) for d in GAZE_DIRECTIONS.values() for ch in d}
    events: list[dict] = []

    def is_listening(x: float) -> bool:
        return listening[min(max(int(x * fps), 0), frames - 1)] > 0.5

    # 1. nods after phrase ends (forced with a backchannel of our own)
    backchannel_at = {round(pe, 3): start for pe, start in own.backchannels}
    for pe in partner.phrase_ends:
        forced = round(pe, 3) in backchannel_at
        onset = backchannel_at.get(round(pe, 3), pe + rng.uniform(*cfg.nod_delay))
        if not is_listening(onset) or not (forced or rng.random() < cfg.nod_prob):
            continue
        cycles = 2 if rng.random() < cfg.double_nod_prob else 1
        amp = gain * rng.uniform(*cfg.nod_amplitude)
        head[:, 0] += amp * nod(t, onset, rng.uniform(*cfg.nod_duration), cycles)
        events.append(event("nod", onset, pe, "phrase_end", cycles=cycles, amplitude=round(amp, 3)))

    # 2. mirrored smiles
    for onset, end, amp in partner.smiles:
        lag = rng.uniform(*cfg.smile_lag)
        if not is_listening(onset + lag) or rng.random() >= cfg.smile_mirror_prob:
            continue
        if late_rng.random() < cfg.smile_late_prob:
            late = late_rng.uniform(*cfg.smile_late_lag)
            lag = late if is_listening(onset + late) else lag
        level = min(1.0, gain * amp * rng.uniform(*cfg.smile_mirror_gain))
        hold_end = max(end, onset + rng.uniform(*cfg.smile_hold)) + lag
        smile = np.maximum(smile, level * envelope(t, onset + lag, hold_end, 0.3, 0.6))
        events.append(event("smile_mirror", onset + lag, onset, "smile", amplitude=round(level, 3)))

    # 3. broad smile in answer to laughter
    for start, end in partner.laughs:
        lag = rng.uniform(*cfg.laugh_response_lag)
        if not is_listening(start + lag):
            continue
        level = min(1.0, gain * rng.uniform(*cfg.laugh_response_smile))
        env = envelope(t, start + lag, end + lag + rng.uniform(*cfg.laugh_response_hold), 0.3, 0.8)
        smile = np.maximum(smile, level * env)
        broad = np.maximum(broad, level * env)
        events.append(event("laugh_response", start + lag, start, "laugh", amplitude=round(level, 3)))

    # 4. slow head mimicry (continuous, not an event)
    mimic = delay(lowpass(partner_head, fps, cfg.mimicry_seconds), fps, cfg.mimicry_delay)
    head += rng.uniform(*cfg.mimicry_gain) * mimic * listening[:, None]

    # 5. glances away while listening
    rate = rng.uniform(*cfg.gaze_shift_rate_per_minute) / 60.0
    now = rng.exponential(1 / rate)
    while now < t[-1]:
        hold = rng.uniform(*cfg.gaze_hold)
        if is_listening(now) and is_listening(now + hold):
            direction = str(rng.choice(list(GAZE_DIRECTIONS)))
            glance(t, now, hold, direction, rng.uniform(*cfg.gaze_amplitude), gaze, head)
            events.append(event("gaze_shift", now, now, "idle", direction=direction))
        now += hold + rng.exponential(1 / rate)

    # 6. idle micro-motion
    head += cfg.idle_amplitude * smooth_noise(rng, frames, fps, cfg.idle_seconds, 3)
    return Reactions(
        head.astype(np.float32),
        smile.astype(np.float32),
        broad.astype(np.float32),
        {k: v.astype(np.float32) for k, v in gaze.items()},
        events,
    )

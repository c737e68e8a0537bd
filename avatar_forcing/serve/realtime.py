"""The real-time budget of one session: measure the real-time factor, step down or up the ladder.

The generation thread reports, after each block, how long it worked on it (DFoT + render, wall time:
on a shared machine contention shows up here) and whether a frame reached the screen late since the
last block. :class:`RealtimeController` turns that into a step of ``RealtimeConfig.steps``; the
worker applies it (NFE, webcam tracking rate, output frame stride) before the next block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from avatar_forcing.serve.config import DegradeStep, RealtimeConfig


@dataclass
class RealtimeState:
    step: int = 0
    rtf: float | None = None  # smoothed real-time factor (1.0 = exactly as fast as real time)
    changes: int = 0  # how often the step changed
    worst_step: int = 0
    since_change: int = 0  # blocks since the last change
    calm: int = 0  # consecutive blocks below recover_rtf
    late: int = 0  # consecutive blocks with a slipped frame


class RealtimeController:
    def __init__(self, cfg: RealtimeConfig):
        if not cfg.steps:
            raise ValueError("the degradation ladder needs at least one step")
        self.cfg = cfg
        self.state = RealtimeState(step=min(cfg.start_step, len(cfg.steps) - 1))
        self.state.worst_step = self.state.step
        self.state.since_change = cfg.hold_blocks  # the first block may already change it

    @property
    def step(self) -> DegradeStep:
        return self.cfg.steps[self.state.step]

    def observe(self, busy_s: float, block_s: float, late: bool) -> bool:
        """One finished block: ``busy_s`` of work for ``block_s`` of media; ``late``: a frame slipped.
        Returns whether the step changed."""
        cfg, st = self.cfg, self.state
        rtf = busy_s / max(block_s, 1e-6)
        st.rtf = rtf if st.rtf is None else cfg.smoothing * rtf + (1 - cfg.smoothing) * st.rtf
        st.since_change += 1
        st.calm = st.calm + 1 if st.rtf < cfg.recover_rtf else 0
        st.late = st.late + 1 if late else 0
        if st.since_change <= cfg.hold_blocks:  # the last change has not shown its effect yet
            return False
        if (st.late >= cfg.late_blocks or st.rtf > cfg.degrade_rtf) and st.step < len(cfg.steps) - 1:
            return self._move(+1)
        if st.calm >= cfg.recover_blocks and st.step > 0:
            return self._move(-1)
        return False

    def _move(self, delta: int) -> bool:
        st = self.state
        st.step += delta
        st.worst_step = max(st.worst_step, st.step)
        st.changes += 1
        st.since_change = 0
        st.calm = st.late = 0
        st.rtf = None  # the new step's cost is measured afresh
        return True


def frame_shown(index: int, stride: float) -> bool:
    """Whether timeline frame ``index`` is drawn at one frame in ``stride`` (1.5: two in three, evenly)."""
    return math.floor(index / stride) != math.floor((index - 1) / stride)

"""An automatic preference proxy: model A against model B, clip by clip, on reactiveness and richness.

This is NOT a human study. It stands in for the paper's user study (Avatar Forcing preferred 80.3%
overall against INFP*) with a documented composite of the evaluation metrics, computed from the motion
and the ground truth only (never from either model's own scores or likelihoods):

* reactiveness: rPCC-Exp and rPCC-Pose (per-dimension variant; lower is better), the F1 of nods against
  the labelled nods (recall and precision: an avatar that nods all the time does not win; higher is
  better), and the smile-mirroring correlation (closer to the ground truth's);
* richness: SID-Exp, SID-Pose, Var-Exp and Var-Pose, each closer to the ground truth's.

On each clip every criterion is a duel: 1 to the better model, 0.5 for a tie or when it cannot be
computed for either. Duels are averaged within each group, groups are weighted (half and half by
default), and the clip goes to A when its score is above 0.5, to B below, and is a tie at 0.5. The win
rate counts a tie as half a win.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

PAPER_HUMAN_PREFERENCE = 0.803  # Avatar Forcing vs INFP*, overall (human study, paper)

Direction = Literal["lower", "higher", "closer"]


@dataclass(frozen=True)
class Criterion:
    key: str  # a per-clip metric of evaluate.clip_metrics
    direction: Direction  # "closer": closer to the ground truth's value on the same clip
    group: str


@dataclass(frozen=True)
class PreferenceConfig:
    criteria: tuple[Criterion, ...] = (
        Criterion("rpcc_per_dim_exp", "lower", "reactiveness"),
        Criterion("rpcc_per_dim_pose", "lower", "reactiveness"),
        Criterion("nod_f1", "higher", "reactiveness"),
        Criterion("smile_r", "closer", "reactiveness"),
        Criterion("sid_exp", "closer", "richness"),
        Criterion("sid_pose", "closer", "richness"),
        Criterion("var_exp", "closer", "richness"),
        Criterion("var_pose", "closer", "richness"),
    )
    group_weights: dict[str, float] = field(default_factory=lambda: {"reactiveness": 0.5, "richness": 0.5})
    tie_tolerance: float = 1e-9  # relative: differences this small are a tie


def _loss(value: float, gt: float, direction: Direction) -> float:
    """Smaller is better, whatever the direction."""
    if direction == "lower":
        return value
    if direction == "higher":
        return -value
    return abs(value - gt)


def duel(a: float | None, b: float | None, gt: float | None, direction: Direction, tol: float) -> float:
    """1 if A is better on this criterion, 0 if B is, 0.5 for a tie or a missing value."""
    if direction == "closer" and (gt is None or not math.isfinite(gt)):
        return 0.5
    vals = [a, b]
    if any(v is None or not math.isfinite(v) for v in vals):
        return 0.5
    la, lb = _loss(a, gt or 0.0, direction), _loss(b, gt or 0.0, direction)
    if abs(la - lb) <= tol * max(1.0, abs(la), abs(lb)):
        return 0.5
    return 1.0 if la < lb else 0.0


def clip_score(a: dict, b: dict, gt: dict, cfg: PreferenceConfig = PreferenceConfig()) -> dict[str, float]:
    """A's score in [0, 1] on one clip, overall and per group."""
    groups: dict[str, list[float]] = {}
    for c in cfg.criteria:
        groups.setdefault(c.group, []).append(duel(a.get(c.key), b.get(c.key), gt.get(c.key), c.direction,
                                                   cfg.tie_tolerance))
    out = {g: sum(v) / len(v) for g, v in groups.items()}
    weights = {g: cfg.group_weights.get(g, 0.0) for g in out}
    total = sum(weights.values())
    out["overall"] = sum(out[g] * w for g, w in weights.items()) / total if total else 0.5
    return out


@dataclass
class PreferenceResult:
    a: str
    b: str
    clips: int
    wins: int
    ties: int
    losses: int
    win_rate: float  # (wins + ties / 2) / clips
    group_win_rates: dict[str, float]  # the same, per group
    paper_human_preference: float = PAPER_HUMAN_PREFERENCE
    label: str = "automatic preference PROXY (not a human study)"


def _rate(scores: list[float]) -> float:
    return sum(1.0 if s > 0.5 else 0.5 if s == 0.5 else 0.0 for s in scores) / len(scores)


def preference(a_clips: list[dict], b_clips: list[dict], gt_clips: list[dict], a: str = "A", b: str = "B",
               cfg: PreferenceConfig = PreferenceConfig()) -> PreferenceResult:
    if not (len(a_clips) == len(b_clips) == len(gt_clips)) or not a_clips:
        raise ValueError("preference needs the same, non-zero number of clips for A, B and the ground truth")
    scores = [clip_score(x, y, g, cfg) for x, y, g in zip(a_clips, b_clips, gt_clips, strict=True)]
    overall = [s["overall"] for s in scores]
    groups = {g: _rate([s[g] for s in scores]) for g in scores[0] if g != "overall"}
    return PreferenceResult(a, b, len(scores), sum(s > 0.5 for s in overall), sum(s == 0.5 for s in overall),
                            sum(s < 0.5 for s in overall), _rate(overall), groups)


def compare(report, a: str, b: str, cfg: PreferenceConfig = PreferenceConfig()) -> dict:
    """The proxy for two rows of an `EvalReport` (evaluate.py), as a JSON-able dict."""
    from dataclasses import asdict

    from avatar_forcing.eval.evaluate import GT_LABEL

    gt = report.row(GT_LABEL).per_clip
    result = preference(report.row(a).per_clip, report.row(b).per_clip, gt, a, b, cfg)
    return asdict(result)

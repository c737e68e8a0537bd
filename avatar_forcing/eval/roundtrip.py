"""The renderer's honest measure: render known motion onto a real photo, re-track it with MediaPipe (an
independent judge trained on real faces) and compare what was asked with what is read back, both relative
to the portrait's rest. The tracker is a judge here, never a target the renderer is inverted against: a 2-D
warp cannot push lips forward, so pucker and funnel read low by nature (docs/ARCHITECTURE.md).

    avatar-forcing eval roundtrip [--portrait IMG] [--frames 24] -o out/roundtrip
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avatar_forcing.errors import InputError
from avatar_forcing.motion.renderer import PortraitRenderer
from avatar_forcing.motion.tracker import FaceTracker
from avatar_forcing.motion.vector import MOTION_DIM, POSE_NAMES, idx

# controls swept together -> (low, high) asked values relative to the portrait's rest, within the range
# real speech and reactions reach (docs/DATA.md, real faces). Left/right pairs move together, as faces
# mostly do; each side is scored on its own. Smiles sweep below rest too: a smiling photo can smile less.
SWEEPS: dict[tuple[str, ...], tuple[float, float]] = {
    ("jawOpen",): (0.0, 0.5),
    ("eyeBlinkLeft", "eyeBlinkRight"): (0.0, 1.0),
    ("mouthSmileLeft", "mouthSmileRight"): (-0.5, 0.8),
    ("browInnerUp",): (0.0, 0.6),
    ("mouthPucker",): (0.0, 0.7),
    ("mouthFunnel",): (0.0, 0.5),
    ("eyeWideLeft", "eyeWideRight"): (0.0, 0.5),
    ("browDownLeft", "browDownRight"): (0.0, 0.5),
    ("mouthFrownLeft", "mouthFrownRight"): (0.0, 0.5),
    ("mouthStretchLeft", "mouthStretchRight"): (0.0, 0.5),
    ("mouthUpperUpLeft", "mouthUpperUpRight"): (0.0, 0.5),
}
POSE_SWEEP_DEG = {"pitch": 10.0, "yaw": 15.0, "roll": 10.0}
TARGET_CORR = ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight", "browInnerUp")


@dataclass(frozen=True)
class RoundtripConfig:
    frames_per_control: int = 24


def sweep_track(cfg: RoundtripConfig) -> tuple[np.ndarray, dict[str, slice]]:
    """Relative motion with one control or pose axis swept at a time from rest (triangle for
    blendshapes, sine for pose)."""
    n = cfg.frames_per_control
    ramp = np.concatenate([np.linspace(0, 1, n // 2), np.linspace(1, 0, n - n // 2)])
    segments, rows = {}, []
    for names, (low, high) in SWEEPS.items():
        seg = np.zeros((n, MOTION_DIM), np.float32)
        for name in names:
            seg[:, idx(name)] = low + (high - low) * ramp
            segments[name] = slice(len(rows) * n, (len(rows) + 1) * n)
        rows.append(seg)
    wave = np.sin(np.linspace(0, 2 * np.pi, 2 * n, endpoint=False))
    for name, deg in POSE_SWEEP_DEG.items():
        seg = np.zeros((2 * n, MOTION_DIM), np.float32)
        seg[:, idx(name)] = np.radians(deg) * wave
        start = sum(len(r) for r in rows)
        segments[name] = slice(start, start + 2 * n)
        rows.append(seg)
    return np.concatenate(rows).astype(np.float32), segments


def roundtrip(portrait=None, cfg: RoundtripConfig = RoundtripConfig()) -> dict[str, dict[str, float]]:
    renderer = PortraitRenderer(portrait)
    asked, segments = sweep_track(cfg)
    read = np.full_like(asked, np.nan)
    with FaceTracker(mode="video") as tracker:
        for t, m in enumerate(tqdm(asked, desc="render + re-track")):
            obs = tracker.track_frame(renderer.render(m), timestamp_ms=40 * t)
            if obs is not None:
                read[t] = obs.motion - renderer.rest_motion  # relative, as asked
    results = {}
    for name, seg in segments.items():
        a, r = asked[seg, idx(name)], read[seg, idx(name)]
        ok = np.isfinite(r)
        scale = 180 / np.pi if name in POSE_NAMES else 1.0
        corr = float(np.corrcoef(a[ok], r[ok])[0, 1]) if ok.sum() > 2 else float("nan")
        results[name] = {
            "corr": corr,
            "mae": float(np.mean(np.abs(a[ok] - r[ok])) * scale),
            "unit": "deg" if name in POSE_NAMES else "",
            "tracked": float(ok.mean()),
        }
    results["_curves"] = {
        "asked": asked.tolist(),
        "read": np.nan_to_num(read, nan=-1).tolist(),
        "segments": {k: [v.start, v.stop] for k, v in segments.items()},
    }
    return results


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = results["_curves"]
    asked, read = np.array(curves["asked"]), np.array(curves["read"])
    names = list(TARGET_CORR) + list(POSE_SWEEP_DEG)
    fig, axes = plt.subplots(3, 3, figsize=(12, 8))
    for ax, name in zip(axes.ravel(), names, strict=False):
        s = slice(*curves["segments"][name])
        scale = 180 / np.pi if name in POSE_NAMES else 1.0
        ax.plot(asked[s, idx(name)] * scale, label="asked")
        ax.plot(np.where(read[s, idx(name)] == -1, np.nan, read[s, idx(name)]) * scale, label="read back")
        ax.set_title(f"{name}  r={results[name]['corr']:.2f}")
    axes[0, 0].legend()
    fig.suptitle("Round trip: motion asked of the renderer vs re-tracked by MediaPipe")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def roundtrip_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--portrait", help="portrait image (default: the bundled astronaut)")
    parser.add_argument("--frames", type=int, default=RoundtripConfig.frames_per_control,
                        help="frames per swept control (pose axes get twice as many)")
    parser.add_argument("-o", "--out", default="out/roundtrip", help="output directory")


def roundtrip_run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.frames < 4:
        raise InputError(f"--frames must be at least 4, got {args.frames}")
    results = roundtrip(args.portrait, RoundtripConfig(args.frames))
    table = Table(title="Renderer round trip (asked vs re-tracked)")
    for col in ("control", "corr", "mean abs error", "tracked"):
        table.add_column(col, justify="right" if col != "control" else "left")
    for name, r in results.items():
        if not name.startswith("_"):
            table.add_row(name, f"{r['corr']:.3f}", f"{r['mae']:.3f} {r['unit']}", f"{r['tracked']:.0%}")
    Console().print(table)
    (out / "roundtrip.json").write_text(
        json.dumps({k: v for k, v in results.items() if not k.startswith("_")}, indent=1)
    )
    plot(results, out / "roundtrip.png")
    print(f"wrote {out / 'roundtrip.json'} and {out / 'roundtrip.png'}")
    return 0

"""The renderer's honest measure: render known motion onto a real photo, re-track it with MediaPipe (an
independent judge trained on real faces) and compare what was asked with what is read back.

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
from avatar_forcing.motion.vector import POSE_NAMES, idx

# controls swept together -> (low, high) asked values, absolute, within the range a warp can show
# (jawOpen reads at most ~0.3, a closed eye ~0.6). Left/right pairs move together, as faces mostly do;
# each side is scored on its own. Controls in RELATIVE sweep rest + low .. rest + high (clipped to
# [0, 1]): the astronaut already smiles (0.9 at rest), so smiles sweep -1..+1 around it.
SWEEPS: dict[tuple[str, ...], tuple[float, float]] = {
    ("jawOpen",): (0.0, 0.3),
    ("eyeBlinkLeft", "eyeBlinkRight"): (0.0, 0.55),
    ("mouthSmileLeft", "mouthSmileRight"): (-1.0, 1.0),
    ("browInnerUp",): (0.0, 0.5),
    ("mouthPucker",): (0.0, 0.8),
    ("mouthFunnel",): (0.0, 0.5),
    ("eyeWideLeft", "eyeWideRight"): (0.0, 0.5),
    ("browDownLeft", "browDownRight"): (0.0, 0.5),
    ("mouthFrownLeft", "mouthFrownRight"): (0.0, 0.4),
    ("mouthStretchLeft", "mouthStretchRight"): (0.0, 0.4),
}
RELATIVE = ("mouthSmileLeft", "mouthSmileRight")
POSE_SWEEP_DEG = {"pitch": 15.0, "yaw": 20.0, "roll": 15.0}
TARGET_CORR = ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight", "browInnerUp")


@dataclass(frozen=True)
class RoundtripConfig:
    frames_per_control: int = 24
    size: int = 512


def sweep_track(rest: np.ndarray, cfg: RoundtripConfig) -> tuple[np.ndarray, dict[str, slice]]:
    """Rest motion with one control or pose axis swept at a time (triangle up and down, sine for pose)."""
    n = cfg.frames_per_control
    ramp = np.concatenate([np.linspace(0, 1, n // 2), np.linspace(1, 0, n - n // 2)])
    segments, rows = {}, []
    for names, (low, high) in SWEEPS.items():
        seg = np.repeat(rest[None], n, 0)
        for name in names:
            base = rest[idx(name)] if name in RELATIVE else 0.0
            seg[:, idx(name)] = np.clip(base + low + (high - low) * ramp, 0.0, 1.0)
            segments[name] = slice(len(rows) * n, (len(rows) + 1) * n)
        rows.append(seg)
    wave = np.sin(np.linspace(0, 2 * np.pi, 2 * n, endpoint=False))
    for name, deg in POSE_SWEEP_DEG.items():
        seg = np.repeat(rest[None], 2 * n, 0)
        seg[:, idx(name)] = rest[idx(name)] + np.radians(deg) * wave
        start = sum(len(r) for r in rows)
        segments[name] = slice(start, start + 2 * n)
        rows.append(seg)
    return np.concatenate(rows).astype(np.float32), segments


def roundtrip(portrait=None, cfg: RoundtripConfig = RoundtripConfig()) -> dict[str, dict[str, float]]:
    renderer = PortraitRenderer(portrait, cfg.size)
    asked, segments = sweep_track(renderer.reference_motion, cfg)
    read = np.full_like(asked, np.nan)
    with FaceTracker(mode="video") as tracker:
        for t, m in enumerate(tqdm(asked, desc="render + re-track")):
            obs = tracker.track_frame(renderer.render(m), timestamp_ms=40 * t)
            if obs is not None:
                read[t] = obs.motion
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
    parser.add_argument("--size", type=int, default=RoundtripConfig.size)
    parser.add_argument("-o", "--out", default="out/roundtrip", help="output directory")


def roundtrip_run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.frames < 4:
        raise InputError(f"--frames must be at least 4, got {args.frames}")
    results = roundtrip(args.portrait, RoundtripConfig(args.frames, args.size))
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

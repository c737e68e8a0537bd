"""`avatar-forcing bench render`: renderer frames per second on one core, and the tracker's cost per frame.

The warp alone (rig + pose + backward warp) and the full frame (plus eyelids and mouth interior) are timed
side by side on the same motion, at 256², 512² and 1024².
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from avatar_forcing.motion.vector import MOTION_DIM, idx


def _motion_sequence(frames: int) -> np.ndarray:
    """Talking-like relative motion: the jaw opens and closes, the head turns, a blink now and then."""
    t = np.arange(frames) / 25.0
    m = np.zeros((frames, MOTION_DIM), np.float32)
    m[:, idx("jawOpen")] = 0.15 * (1 + np.sin(2 * np.pi * 3 * t))
    m[:, idx("eyeBlinkLeft")] = m[:, idx("eyeBlinkRight")] = (np.sin(2 * np.pi * 0.5 * t) > 0.95) * 0.5
    m[:, idx("yaw")] += np.radians(8) * np.sin(2 * np.pi * 0.3 * t)
    return m


def bench_render_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=50, help="frames per measurement")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--json", type=Path, default=Path("out/bench/render.json"), help="results file")


def bench_render_run(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console
    from rich.table import Table

    from avatar_forcing.motion.renderer import PortraitRenderer, default_portrait
    from avatar_forcing.motion.tracker import FaceTracker

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    portrait = default_portrait()
    results: dict[str, dict[str, float]] = {}
    for size in args.sizes:  # the photo at size x size, animated in place
        r = PortraitRenderer(cv2.resize(portrait, (size, size), interpolation=cv2.INTER_CUBIC))
        motion = _motion_sequence(args.frames)
        warp_s, full_s = [], []
        for m in motion:  # interleaved, so machine noise hits both alike
            t0 = time.perf_counter()
            disp = r.warper.unfold(r.warper.full_displacement(r.control_displacement(m)[0]))
            r.warper.warp(r.patch, disp)
            t1 = time.perf_counter()
            r.render(m)
            t2 = time.perf_counter()
            warp_s.append(t1 - t0)
            full_s.append(t2 - t1)
        results[f"{size}"] = {
            "warp_fps": 1 / float(np.median(warp_s)),
            "full_fps": 1 / float(np.median(full_s)),
        }
    frames = PortraitRenderer(portrait).render_many(_motion_sequence(30))  # the astronaut is 512^2
    with FaceTracker(mode="video") as tracker:
        costs = []
        for i, f in enumerate(frames):
            t0 = time.perf_counter()
            tracker.track_frame(f, timestamp_ms=40 * i)
            costs.append(time.perf_counter() - t0)
    results["tracker_ms_512"] = {"median": 1000 * float(np.median(costs[5:]))}

    table = Table(title="Renderer (one core) and tracker")
    table.add_column("size")
    table.add_column("warp fps", justify="right")
    table.add_column("full frame fps (eyelids + mouth)", justify="right")
    for size in args.sizes:
        r = results[f"{size}"]
        table.add_row(f"{size}²", f"{r['warp_fps']:.0f}", f"{r['full_fps']:.0f}")
    Console().print(table)
    print(f"tracker: {results['tracker_ms_512']['median']:.1f} ms per 512² frame (video mode)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.json}")
    return 0

"""Calibrate the renderer to the tracker on the astronaut (writes avatar_forcing/assets/calibration.json).

Each control is swept alone (one side at a time) over rig amounts from below to beyond its rest, every
frame is rendered uncalibrated and re-tracked by MediaPipe, and the read-back deltas from rest are kept:
the control's own curve is inverted (``calibration.invert_sweep``) and the leak into its mirror control
(and jawOpen's into browInnerUp) is the cross-talk the renderer cancels. Head rotations are swept per axis.

    .venv/bin/python scripts/calibrate_renderer.py
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from avatar_forcing.motion.calibration import DEFAULT_PATH, ROTATIONS, Calibration, invert_sweep, leak
from avatar_forcing.motion.renderer import PortraitRenderer, RenderConfig
from avatar_forcing.motion.tracker import FaceTracker
from avatar_forcing.motion.vector import idx

PAIRED = ("eyeBlink", "eyeWide", "eyeSquint", "mouthSmile", "mouthFrown", "mouthStretch", "browDown",
          "browOuterUp", "cheekSquint")
SINGLE = ("jawOpen", "browInnerUp", "mouthFunnel", "mouthPucker", "mouthClose")
EXTRA_LEAKS = {"jawOpen": ("browInnerUp",)}  # MediaPipe reads a dropped jaw as raised brows too
AMOUNTS = np.linspace(-1.0, 1.5, 11)  # rig amounts (deltas from rest); includes 0
ANGLES = np.radians(np.linspace(-25.0, 25.0, 11))


def mirror(name: str) -> str:
    """The other side's control (``eyeBlinkLeft`` -> ``eyeBlinkRight``), or the name itself."""
    if name.endswith("Left"):
        return name[:-4] + "Right"
    return name[:-5] + "Left" if name.endswith("Right") else name


def main() -> None:
    renderer = PortraitRenderer(None, 512, RenderConfig(calibrated=False))
    rest = renderer.reference_motion
    controls = list(SINGLE) + [p + s for p in PAIRED for s in ("Left", "Right")]
    curves, leaks = {}, {}
    with FaceTracker(mode="image") as tracker:

        def sweep(column: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Rendered at rest + each value in one column; returns (values kept, read-back deltas)."""
            kept, reads = [], []
            for v in values:
                m = rest.copy()
                m[column] = rest[column] + v
                obs = tracker.track_frame(renderer.render(m))
                if obs is not None:
                    kept.append(v)
                    reads.append(obs.motion - rest)
            return np.array(kept), np.array(reads)

        for name in tqdm(controls, desc="controls"):
            amounts, reads = sweep(idx(name), AMOUNTS)
            curve = invert_sweep(amounts, reads[:, idx(name)])
            if curve is None:
                continue  # the tracker barely reads it: neither a curve nor a leak to speak of
            curves[name] = curve
            targets = {mirror(name)} - {name} | set(EXTRA_LEAKS.get(name, ()))
            found = {t: leak(reads[:, idx(name)], reads[:, idx(t)]) for t in targets}
            if any(found.values()):
                leaks[name] = {t: c for t, c in found.items() if c}
        for name in tqdm(ROTATIONS, desc="pose"):
            angles, reads = sweep(idx(name), ANGLES)
            curves[name] = invert_sweep(angles, reads[:, idx(name)])
    Calibration(curves, leaks).save(DEFAULT_PATH)
    print(f"wrote {DEFAULT_PATH}: {len(curves)} curves; uncalibrated: {sorted(set(controls) - set(curves))}")
    print(f"cross-talk: {leaks}")


if __name__ == "__main__":
    main()

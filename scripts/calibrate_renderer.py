"""Calibrate the renderer to the tracker on the astronaut (writes avatar_forcing/assets/calibration.json).

For every calibrated control, sweep the rig amount (left/right pairs together, as faces mostly move them:
MediaPipe couples the two sides strongly, e.g. a one-sided smile leaks about half into the other side),
render, re-track with MediaPipe and record the read-back delta from rest; the renderer then inverts
these curves. Head rotations get a gain from a linear fit.

    .venv/bin/python scripts/calibrate_renderer.py
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from avatar_forcing.motion.calibration import DEFAULT_PATH, ROTATIONS, Calibration, invert_sweep
from avatar_forcing.motion.renderer import PortraitRenderer, RenderConfig
from avatar_forcing.motion.tracker import FaceTracker
from avatar_forcing.motion.vector import idx

CONTROLS = (
    "jawOpen",
    "eyeBlinkLeft",
    "eyeBlinkRight",
    "mouthSmileLeft",
    "mouthSmileRight",
    "browInnerUp",
    "mouthFunnel",
    "mouthPucker",
    "mouthClose",
    "eyeWideLeft",
    "eyeWideRight",
    "eyeSquintLeft",
    "eyeSquintRight",
    "browDownLeft",
    "browDownRight",
    "browOuterUpLeft",
    "browOuterUpRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "cheekSquintLeft",
    "cheekSquintRight",
)
AMOUNTS = np.linspace(-1.0, 2.0, 13)  # rig amounts (deltas from rest) swept per control
ANGLES = np.radians(np.linspace(-20, 20, 9))


def mirror(name: str) -> str:
    """The other side's control (``eyeBlinkLeft`` -> ``eyeBlinkRight``), or the name itself."""
    if name.endswith("Left"):
        return name[:-4] + "Right"
    return name[:-5] + "Left" if name.endswith("Right") else name


def main() -> None:
    renderer = PortraitRenderer(None, 512, RenderConfig(calibrated=False))
    rest = renderer.reference_motion
    cal = Calibration()
    with FaceTracker(mode="image") as tracker:

        def read(motion: np.ndarray) -> np.ndarray | None:
            obs = tracker.track_frame(renderer.render(motion))
            return None if obs is None else obs.motion

        for name in tqdm(CONTROLS, desc="controls"):
            i = idx(name)
            together = [idx(n) for n in {name, mirror(name)}]
            amounts, reads = [], []
            for a in AMOUNTS:
                m = rest.copy()
                m[together] = rest[together] + a
                got = read(m)
                if got is not None:
                    amounts.append(a)
                    reads.append(got[i] - rest[i])
            cal.curves[name] = invert_sweep(np.array(amounts), np.array(reads))
        for name in tqdm(ROTATIONS, desc="pose"):
            i = idx(name)
            asked, got = [], []
            for angle in ANGLES:
                m = rest.copy()
                m[i] = rest[i] + angle
                obs = read(m)
                if obs is not None:
                    asked.append(angle)
                    got.append(obs[i] - rest[i])
            slope = np.polyfit(asked, got, 1)[0]
            cal.pose_gain[name] = float(1.0 / slope)
    cal.save(DEFAULT_PATH)
    print(f"wrote {DEFAULT_PATH}; pose gains {cal.pose_gain}")


if __name__ == "__main__":
    main()

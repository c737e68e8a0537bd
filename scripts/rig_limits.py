"""Where each rig control, and the usual combinations, stop looking like a face (docs/ARCHITECTURE.md).

Renders every control at increasing amounts (relative to each portrait's rest) on several portraits,
re-tracks each frame with MediaPipe and reports per control and amount: fold-over area of the warp (a tear),
whether the tracker still finds a face, and the re-tracked mouth width and eye opening against the
portrait's. Writes a picture per portrait (rows = controls, columns = amounts) to look at.

    .venv/bin/python scripts/rig_limits.py [--portraits ../shared/real/portraits] [--out out/rig_limits]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from avatar_forcing.media.image import load_image
from avatar_forcing.motion.renderer import PortraitRenderer, default_portrait
from avatar_forcing.motion.rig import MOUTH_CORNERS
from avatar_forcing.motion.tracker import FaceTracker
from avatar_forcing.motion.vector import MOTION_DIM, idx

# (label, {channel: value at amount 1}); paired controls move both sides
CONTROLS: tuple[tuple[str, dict[str, float]], ...] = (
    ("jawOpen", {"jawOpen": 1.0}),
    ("pucker", {"mouthPucker": 1.0}),
    ("funnel", {"mouthFunnel": 1.0}),
    ("smile", {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0}),
    ("less smile", {"mouthSmileLeft": -0.6, "mouthSmileRight": -0.6}),
    ("stretch", {"mouthStretchLeft": 1.0, "mouthStretchRight": 1.0}),
    ("blink", {"eyeBlinkLeft": 0.56, "eyeBlinkRight": 0.56}),
    ("squint", {"eyeSquintLeft": 1.0, "eyeSquintRight": 1.0}),
    ("brows up", {"browInnerUp": 1.0, "browOuterUpLeft": 1.0, "browOuterUpRight": 1.0}),
    ("jaw + pucker", {"jawOpen": 0.6, "mouthPucker": 1.0}),
    ("laugh", {"jawOpen": 0.6, "mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "eyeSquintLeft": 0.6,
               "eyeSquintRight": 0.6}),
    ("yaw + jaw", {"yaw": 0.35, "jawOpen": 0.5}),
    ("pitch + roll", {"pitch": 0.25, "roll": 0.25}),
)
AMOUNTS = (0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class LimitsConfig:
    cell: int = 160  # pixels of each picture cell
    view: float = 1.1  # face widths shown around the face centre


def portraits(folder: Path) -> dict[str, np.ndarray]:
    found = {"astronaut": default_portrait()}
    if folder.is_dir():
        found |= {p.stem: load_image(p) for p in sorted(folder.glob("*.jpg"))}
    else:
        print(f"{folder} not found: the built-in portrait only")
    return found


def motion_for(values: dict[str, float], amount: float) -> np.ndarray:
    m = np.zeros(MOTION_DIM, np.float32)
    for name, v in values.items():
        m[idx(name)] = v * amount
    return m


def crop(frame: np.ndarray, r: PortraitRenderer, cfg: LimitsConfig) -> np.ndarray:
    c, half = r.landmarks_full[:, :2].mean(0), cfg.view * r.face_width
    x0, y0 = np.maximum((c - half).astype(int), 0)
    x1, y1 = (c + half).astype(int)
    view = np.ascontiguousarray(frame[y0:y1, x0:x1])
    return cv2.resize(view, (cfg.cell, cfg.cell), interpolation=cv2.INTER_AREA)


def mouth_width(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[MOUTH_CORNERS["L"][0], :2] - lm[MOUTH_CORNERS["R"][0], :2])
                 / np.linalg.norm(lm[454, :2] - lm[234, :2]))


def measure(name: str, photo: np.ndarray, out: Path, cfg: LimitsConfig) -> dict:
    r = PortraitRenderer(photo)
    rest_width = mouth_width(r.landmarks_full)
    rows, report = [], {}
    with FaceTracker(mode="image") as tracker:
        for label, values in CONTROLS:
            cells, entries = [], []
            for amount in AMOUNTS:
                m = motion_for(values, amount)
                control, _ = r.control_displacement(m)
                folded = r.warper.folded_area(r.warper.unfold(r.warper.full_displacement(control)))
                frame = r.render(m)
                obs = tracker.track_frame(frame)
                width = None if obs is None else mouth_width(obs.landmarks) / rest_width
                entries.append({"amount": amount, "folded_px": round(folded, 1), "tracked": obs is not None,
                                "mouth_width": None if width is None else round(width, 3)})
                cell = crop(frame, r, cfg)
                cv2.putText(cell, f"{label} {amount:g}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                            (255, 255, 0), 1)
                cells.append(cell)
            report[label] = entries
            rows.append(np.concatenate(cells, 1))
    cv2.imwrite(str(out / f"{name}.png"), np.concatenate(rows, 0)[..., ::-1])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--portraits", type=Path, default=Path("../shared/real/portraits"))
    parser.add_argument("--out", type=Path, default=Path("out/rig_limits"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = LimitsConfig()
    report = {name: measure(name, photo, args.out, cfg)
              for name, photo in tqdm(portraits(args.portraits).items(), desc="portraits")}
    (args.out / "rig_limits.json").write_text(json.dumps(report, indent=1))
    print(f"{'control':14s}" + "".join(f"{a:>22g}" for a in AMOUNTS))
    for label, _ in CONTROLS:
        cols = []
        for k in range(len(AMOUNTS)):
            e = [report[p][label][k] for p in report]
            widths = [x["mouth_width"] for x in e if x["mouth_width"] is not None]
            cols.append(f"fold {max(x['folded_px'] for x in e):5.0f} lost {sum(not x['tracked'] for x in e)}"
                        f" w {min(widths) if widths else float('nan'):.2f}")
        print(f"{label:14s}" + "".join(f"{c:>22s}" for c in cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

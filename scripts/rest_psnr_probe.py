"""How close does the resting avatar stay to its portrait, over seeds? (docs/EVALUATION.md, rounds 12, 15)

`eval portraits` renders one seed's rest, and every portrait gets that same motion, so one unlucky sample
moves every row. This renders the REST phase (no input at all, `eval.portraits.rest_phase`) on a few real
portraits for several seeds, as served and with each --vary'd session option (e.g. the head as generated:
settle_after_s=none), and prints the PSNR of each rest's per-pixel median against the portrait. --plot
draws, for the first portrait, each variant's worst median beside the photo and every seed's head pose.

    .venv/bin/python scripts/rest_psnr_probe.py avatar_forcing/assets/default_model --portraits s7 s2 s10 \
        --vary "head as generated:settle_after_s=none" --plot rest.png
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, replace

import numpy as np

from avatar_forcing.eval.portraits import (
    PortraitsConfig,
    face_view,
    pixel_median,
    portrait_in_output_pixels,
    psnr,
    rest_phase,
)
from avatar_forcing.motion.vector import FPS, POSE_SLICE
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession

ANGLES = ("pitch", "yaw", "roll")
ANGLE_SIGNS = {"pitch": ", head down +", "yaw": "", "roll": ""}
DIFF_GAIN = 4  # |median - photo| is drawn this many times brighter


def variant(text: str) -> tuple[str, dict[str, object]]:
    """'[LABEL:]FIELD=VALUE' -> (label, {field: value}), the value typed like the SessionOptions default."""
    label, _, change = text.rpartition(":")
    return label or change, option_change(change)


def option_change(text: str) -> dict[str, object]:
    """'FIELD=VALUE' -> {field: value}, typed like the SessionOptions default."""
    name, _, value = text.partition("=")
    defaults = {f.name: f.default for f in fields(SessionOptions)}
    if name not in defaults or not value:
        raise argparse.ArgumentTypeError(f"expected SESSION_OPTION=VALUE, got {text!r}")
    default = defaults[name]
    if value.lower() == "none":
        return {name: None}
    if default is None or isinstance(default, float):
        return {name: float(value)}
    if isinstance(default, bool):
        return {name: value.lower() in ("1", "true", "yes")}
    return {name: type(default)(value)}


@dataclass
class Rest:
    psnr: float
    median: np.ndarray  # the face's neighbourhood, rest median
    photo: np.ndarray   # the same neighbourhood of the portrait
    angles: np.ndarray  # (T, 3) degrees, the head pose the renderer was asked for


def rest_of(checkpoint: str, portrait: str, options: SessionOptions, cfg: PortraitsConfig) -> Rest:
    session = AvatarSession(checkpoint, portrait, options)
    try:
        rest = rest_phase(session, cfg)
        median = pixel_median(rest.kept, cfg)
        photo = portrait_in_output_pixels(session, median.shape)
        view = face_view(session, cfg)
        return Rest(psnr(median, photo, cfg), median[view], photo[view],
                    np.degrees(rest.asked[:, POSE_SLICE][:, :3]))
    finally:
        session.close()


def plot(portrait: str, rests: dict[str, list[Rest]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(rests)
    fig, axes = plt.subplots(rows, 3 + len(ANGLES), figsize=(15, 2.9 * rows),
                             gridspec_kw={"width_ratios": [1, 1, 1] + [1.4] * len(ANGLES)}, squeeze=False)
    limit = max(1.0, max(np.abs(r.angles).max() for runs in rests.values() for r in runs)) * 1.05
    for row, (label, runs) in zip(axes, rests.items(), strict=True):
        worst = min(runs, key=lambda r: r.psnr)
        diff = np.clip(DIFF_GAIN * np.abs(worst.median.astype(int) - worst.photo.astype(int)), 0, 255)
        for ax, image, title in ((row[0], worst.photo, "photo"),
                                 (row[1], worst.median, f"worst seed's rest median, {worst.psnr:.1f} dB"),
                                 (row[2], diff.astype(np.uint8), f"|median - photo| x{DIFF_GAIN}")):
            ax.imshow(image)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
        row[0].text(-0.08, 0.5, f"{label}\nPSNR mean {np.mean([r.psnr for r in runs]):.1f} dB",
                    transform=row[0].transAxes, ha="right", va="center", fontsize=9)
        for k, (ax, name) in enumerate(zip(row[3:], ANGLES, strict=True)):
            for r in runs:
                worst_one = r is worst
                ax.plot(np.arange(len(r.angles)) / FPS, r.angles[:, k], lw=1.6 if worst_one else 0.8,
                        color="k" if worst_one else None, zorder=3 if worst_one else 2)
            ax.axhline(0, color="0.6", lw=0.6)
            ax.set_ylim(-limit, limit)
            ax.set_title(f"{name}, deg{ANGLE_SIGNS[name]} ({len(runs)} seeds; the worst in black)",
                         fontsize=8)
            ax.set_xlabel("seconds of rest (no input)", fontsize=8)
    fig.suptitle(f"Portrait {portrait}: the avatar at rest (no input at all, from the first frame): the rest "
                 "rendered, and the head angles the model asked for", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--folder", default="../shared/real/portraits")
    parser.add_argument("--portraits", nargs="+", default=["s7", "s2", "s10"], help="image stems (.jpg)")
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--rest-seconds", type=float, default=6.0)
    parser.add_argument("--vary", nargs="*", type=variant, default=[], metavar="[LABEL:]OPTION=VALUE",
                        help="session options to compare with the served ones, one row each")
    parser.add_argument("--plot", metavar="PNG", help="the first portrait's rests, per variant")
    args = parser.parse_args()
    cfg = PortraitsConfig(rest_seconds=args.rest_seconds)
    variants = {"served": {}, **dict(args.vary)}
    for i, name in enumerate(args.portraits):
        rests: dict[str, list[Rest]] = {}
        for label, change in variants.items():
            rests[label] = [rest_of(args.checkpoint, f"{args.folder}/{name}.jpg",
                                    replace(SessionOptions(seed=seed), **change), cfg)
                            for seed in range(args.seeds)]
            values = [r.psnr for r in rests[label]]
            print(f"{name} {label}: rest PSNR seeds 0-{args.seeds - 1} "
                  + " ".join(f"{v:.1f}" for v in values)
                  + f" | mean {np.mean(values):.1f} min {np.min(values):.1f}", flush=True)
        if args.plot and i == 0:
            plot(name, rests, args.plot)


if __name__ == "__main__":
    main()

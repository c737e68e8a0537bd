"""How still must the resting head be for the rest PSNR criterion? (issue 15, docs/EVALUATION.md round 13)

`eval portraits` asks for the median resting frame within 30 dB PSNR of the portrait. This renders each
portrait once with the head turned by a constant small angle (pitch, yaw or roll; everything else at rest,
so zero renders the photo exactly) and prints the PSNR against the portrait per angle, and the smallest
angle at which it falls below the criterion. A sharp, face-filling portrait (s7) leaves far less room than
a small face in a large photo.

    .venv/bin/python scripts/rest_offset_probe.py --portraits s7 s2 s10 --plot rest_offsets.png
"""

from __future__ import annotations

import argparse

import numpy as np

from avatar_forcing.eval.portraits import PortraitsConfig, portrait_in_output_pixels, psnr
from avatar_forcing.motion.vector import MOTION_DIM, idx
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession

ANGLES_DEG = np.round(np.arange(0.0, 1.01, 0.1), 2)
CHANNELS = ("pitch", "yaw", "roll")
CRITERION_DB = 30.0  # issue 15: rest PSNR >= 30 dB
BUILTIN = "builtin"  # the package's own portrait


def psnr_by_angle(portrait: str | None, cfg: PortraitsConfig) -> dict[str, list[float]]:
    session = AvatarSession(None, portrait, SessionOptions())
    try:
        rest = np.zeros((1, MOTION_DIM), np.float32)
        reference = portrait_in_output_pixels(session, session.render(rest)[0].shape)
        rows = {}
        for channel in CHANNELS:
            rows[channel] = []
            for angle in ANGLES_DEG:
                motion = rest.copy()
                motion[0, idx(channel)] = np.radians(angle)
                rows[channel].append(psnr(session.render(motion)[0], reference, cfg))
        return rows
    finally:
        session.close()


def first_below(values: list[float]) -> str:
    below = [a for a, v in zip(ANGLES_DEG, values, strict=True) if v < CRITERION_DB]
    return f"{below[0]:.1f} deg" if below else f"> {ANGLES_DEG[-1]:.1f} deg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", default="../shared/real/portraits")
    parser.add_argument("--portraits", nargs="+", default=["s7", "s2", "s10"],
                        help=f"image stems (.jpg) in --folder, or {BUILTIN!r}")
    parser.add_argument("--plot", metavar="PNG")
    args = parser.parse_args()
    cfg = PortraitsConfig()
    results = {}
    print("PSNR (dB) of the portrait rendered with the head turned by a constant angle, against the photo")
    print("angle (deg): " + " ".join(f"{a:5.1f}" for a in ANGLES_DEG))
    for name in args.portraits:
        portrait = None if name == BUILTIN else f"{args.folder}/{name}.jpg"
        results[name] = psnr_by_angle(portrait, cfg)
        for channel, values in results[name].items():
            print(f"{name} {channel:5s}: " + " ".join(f"{min(v, 99.9):5.1f}" for v in values)
                  + f" | below {CRITERION_DB:g} dB from {first_below(values)}", flush=True)
    if args.plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}")


def crossing(values: list[float]) -> float | None:
    """The angle (deg) where a curve falls through the criterion, interpolated; None: it never does."""
    for k in range(1, len(ANGLES_DEG)):
        if values[k] < CRITERION_DB <= values[k - 1]:
            a0, a1, v0, v1 = ANGLES_DEG[k - 1], ANGLES_DEG[k], min(values[k - 1], 99.0), values[k]
            return float(a0 + (a1 - a0) * (v0 - CRITERION_DB) / (v0 - v1))
    return None


def plot(results: dict[str, dict[str, list[float]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # most sensitive portrait drawn first; the legend lists them top curve first
    order = sorted(results, key=lambda n: np.mean([rows[-1] for rows in results[n].values()]))
    markers = dict(zip(order, "osD^v<>", strict=False))
    fig, axes = plt.subplots(1, len(CHANNELS), figsize=(4.4 * len(CHANNELS), 3.9), sharey=True)
    for axis, channel in zip(axes, CHANNELS, strict=True):
        axis.axhspan(0, CRITERION_DB, color="tab:red", alpha=0.07)
        axis.axhline(CRITERION_DB, color="tab:red", linestyle="--", linewidth=1)
        axis.text(ANGLES_DEG[1], 23, f"below {CRITERION_DB:g} dB: fails the criterion",
                  ha="left", va="bottom", fontsize=7.5, color="tab:red")
        for name in order:
            values = results[name][channel]
            line, = axis.plot(ANGLES_DEG[1:], values[1:], marker=markers[name], markersize=4, label=name)
            angle = crossing(values)
            if angle is not None:
                axis.plot([angle], [CRITERION_DB], "x", color=line.get_color(), markersize=9, mew=2)
                left = angle > 0.8 * ANGLES_DEG[-1]  # keep the label inside the axes
                axis.annotate(f"{angle:.2f}°", (angle, CRITERION_DB), textcoords="offset points",
                              xytext=(-4 if left else 4, 6), ha="right" if left else "left", fontsize=7.5,
                              color=line.get_color())
        axis.set_xlabel(f"head {channel} off the photo's, degrees (constant)")
        axis.set_title(f"{channel}", fontsize=10)
        axis.set_ylim(22, 64)
    axes[0].set_ylabel("PSNR of the rendered frame vs the photo, dB")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].legend(handles[::-1], labels[::-1], title="portrait", fontsize=8, loc="upper right")
    fig.suptitle("One rendered frame against its portrait, the head turned by a constant angle "
                 "(0° renders the photo exactly; × = where a portrait falls below the criterion)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()

"""How close does the resting avatar stay to its portrait, over several seeds? (docs/EVALUATION.md, round 12)

`eval portraits` renders one seed's rest, and every portrait gets that same motion, so one unlucky sample
moves every row. This renders the REST phase (no input at all, `eval.portraits.rest_phase`) on a few real
portraits for several seeds, as served and with each --vary'd session option (e.g. the sampler before
round 12: clean_context=false), and prints the PSNR of each rest's per-pixel median against the portrait.

    .venv/bin/python scripts/rest_psnr_probe.py avatar_forcing/assets/default_model --portraits s7 s2 s10 \
        --vary clean_context=false pose_guidance=0
"""

from __future__ import annotations

import argparse
from dataclasses import fields, replace

import numpy as np

from avatar_forcing.eval.portraits import (
    PortraitsConfig,
    pixel_median,
    portrait_in_output_pixels,
    psnr,
    rest_phase,
)
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession


def option_change(text: str) -> dict[str, object]:
    """'FIELD=VALUE' -> {field: value}, typed like the SessionOptions default."""
    name, _, value = text.partition("=")
    defaults = {f.name: f.default for f in fields(SessionOptions)}
    if name not in defaults or not value:
        raise argparse.ArgumentTypeError(f"expected SESSION_OPTION=VALUE, got {text!r}")
    default = defaults[name]
    if default is None:  # an optional number (e.g. settle_after_s)
        return {name: None if value.lower() == "none" else float(value)}
    if isinstance(default, bool):
        return {name: value.lower() in ("1", "true", "yes")}
    return {name: type(default)(value)}


def rest_psnr(checkpoint: str, portrait: str, options: SessionOptions, cfg: PortraitsConfig) -> float:
    session = AvatarSession(checkpoint, portrait, options)
    try:
        median = pixel_median(rest_phase(session, cfg).kept, cfg)
        return psnr(median, portrait_in_output_pixels(session, median.shape), cfg)
    finally:
        session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--folder", default="../shared/real/portraits")
    parser.add_argument("--portraits", nargs="+", default=["s7", "s2", "s10"], help="image stems (.jpg)")
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--rest-seconds", type=float, default=6.0)
    parser.add_argument("--vary", nargs="*", type=option_change, default=[], metavar="OPTION=VALUE",
                        help="session options to compare with the served ones, one row each")
    args = parser.parse_args()
    cfg = PortraitsConfig(rest_seconds=args.rest_seconds)
    variants = {"served": {}, **{" ".join(f"{k}={v}" for k, v in c.items()): c for c in args.vary}}
    for name in args.portraits:
        for label, change in variants.items():
            values = [rest_psnr(args.checkpoint, f"{args.folder}/{name}.jpg",
                                replace(SessionOptions(seed=seed), **change), cfg)
                      for seed in range(args.seeds)]
            print(f"{name} {label}: rest PSNR seeds 0-{args.seeds - 1} "
                  + " ".join(f"{v:.1f}" for v in values)
                  + f" | mean {np.mean(values):.1f} min {np.min(values):.1f}", flush=True)


if __name__ == "__main__":
    main()

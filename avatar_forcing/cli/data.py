"""`avatar-forcing data synth|prepare|show`: make, prepare and inspect conversation corpora."""

from __future__ import annotations

import argparse
import dataclasses
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="WHAT", required=True)

    p = sub.add_parser("synth", help="generate the synthetic dyadic conversation corpus")
    p.add_argument("--hours", type=float, default=1.0, help="hours of train conversations (held-out extra)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", required=True, help="output directory (must not hold a corpus yet)")
    p.add_argument("--workers", type=int, default=1, help="processes")
    p.add_argument("--preset", default="default",
                   help="synth config preset: default, late_answers, lulls, tiny")
    p.add_argument(
        "--audio",
        choices=("all", "heldout", "none"),
        default=None,
        help="store raw 16 kHz audio for these splits (default: heldout)",
    )

    p = sub.add_parser("prepare", help="track real conversation videos into shards")
    p.add_argument("input", help="folder of conversation folders (layout in docs/DATA.md)")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--heldout-percent", type=float, default=None, help="share of conversations held out")
    p.add_argument(
        "--separator",
        default=None,
        help="'module:function' that splits mixed audio into two speakers (see docs/DATA.md)",
    )
    p.add_argument("--no-audio", action="store_true", help="do not store raw audio in the shards")

    p = sub.add_parser("check-prepare", help="render a synthetic conversation, prepare it, correlate")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256, help="rendered frame size")
    p.add_argument("-o", "--out", default="out/prepare_check")

    p = sub.add_parser("show", help="plot one conversation of a corpus")
    p.add_argument("dir", help="corpus directory")
    p.add_argument("--conversation", default=None, help="conversation id (default: the first held-out one)")
    p.add_argument("--start", type=float, default=0.0, help="seconds")
    p.add_argument("--seconds", type=float, default=30.0, help="seconds to show (0 = all)")
    p.add_argument("-o", "--out", default="out/conversation.png")


def run(args: argparse.Namespace) -> int:
    if args.data_command == "synth":
        from avatar_forcing.data.synth import PRESETS, generate_corpus
        from avatar_forcing.errors import ConfigError

        if args.preset not in PRESETS:
            raise ConfigError(f"unknown synth preset {args.preset!r}; choose from {sorted(PRESETS)}")
        cfg = PRESETS[args.preset]
        if args.audio:
            cfg = dataclasses.replace(cfg, store_audio=args.audio)
        report = generate_corpus(args.out, args.hours, args.seed, cfg, workers=args.workers)
        print(json.dumps(report, indent=1))
        print(
            f"{report['seconds'] / 3600:.2f} h of conversation in {report['wall_s']:.0f} s wall, "
            f"{report['cpu_s']:.0f} CPU s: {report['hours_per_cpu_minute']:.2f} h per CPU minute"
        )
        return 0
    if args.data_command == "prepare":
        from avatar_forcing.data.prepare import PrepareConfig, prepare

        cfg = PrepareConfig(store_audio=not args.no_audio)
        if args.heldout_percent is not None:
            cfg = dataclasses.replace(cfg, heldout_percent=args.heldout_percent)
        report = prepare(args.input, args.out, cfg, workers=args.workers, separator=args.separator)
        print(json.dumps(report, indent=1))
        return 1 if report["failed"] and not report["prepared"] and not report["skipped"] else 0
    if args.data_command == "check-prepare":
        from avatar_forcing.data.render_check import render_check

        print(json.dumps(render_check(args.out, args.seconds, args.seed, args.size), indent=1))
        return 0
    if args.data_command == "show":
        from avatar_forcing.data.show import ShowConfig, show

        cfg = ShowConfig(seconds=args.seconds or None, start=args.start)
        print(show(args.dir, args.out, args.conversation, cfg))
        return 0
    return 2

"""`avatar-forcing`: one command, with subcommands.

Each subcommand lives in its own module under ``avatar_forcing.cli`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported lazily, so a heavy
dependency of one command (aiortc, transformers) never slows down another.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from avatar_forcing.errors import AvatarForcingError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("avatar_forcing.cli.demo", "generate the built-in demo conversation video (out/demo.mp4)"),
    "generate": ("avatar_forcing.cli.generate", "generate an avatar video offline from audio (and a user)"),
    "serve": ("avatar_forcing.cli.serve", "run the real-time WebRTC server and web page"),
    "track": ("avatar_forcing.cli.track", "track a face video into a motion file"),
    "render": ("avatar_forcing.cli.render", "render a motion file onto a portrait"),
    "data": ("avatar_forcing.cli.data", "make, prepare and inspect training data"),
    "train": ("avatar_forcing.cli.train", "train a model (diffusion forcing, or `train dpo`)"),
    "eval": ("avatar_forcing.cli.evaluate", "evaluate models and the renderer"),
    "bench": ("avatar_forcing.cli.bench", "benchmarks"),
    "convert-official": ("avatar_forcing.cli.convert", "convert the authors' released .pth checkpoints"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatar-forcing", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = build_parser()
    if not argv or argv[0] not in COMMANDS:
        top.parse_args(argv)  # prints usage / error and exits
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"avatar-forcing {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except AvatarForcingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

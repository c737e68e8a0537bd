"""`avatar-forcing render --portrait IMG --motion motion.npz [--audio WAV] -o out.mp4`."""

from __future__ import annotations

import argparse
from pathlib import Path

from avatar_forcing.motion.vector import FPS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--portrait", type=Path, help="portrait photo (default: the bundled astronaut)")
    parser.add_argument("--motion", type=Path, required=True, help="motion track (.npz from `track`)")
    parser.add_argument("--audio", type=Path, help="audio to mux in (any format FFmpeg reads)")
    parser.add_argument("--max-side", type=int, help="scale the portrait down to this longer side "
                        "(default: the photo's own size and framing)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output video (.mp4)")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from avatar_forcing.audio.io import load_audio
    from avatar_forcing.errors import InputError
    from avatar_forcing.media.video import VideoWriter
    from avatar_forcing.motion.renderer import PortraitRenderer, RenderConfig
    from avatar_forcing.motion.vector import load_motion

    if args.max_side is not None and args.max_side < 64:
        raise InputError(f"--max-side must be >= 64, got {args.max_side}")
    track = load_motion(args.motion)
    if abs(track.fps - FPS) > 1e-3:
        raise InputError(f"{args.motion} is at {track.fps:g} fps; the renderer expects {FPS}")
    audio = load_audio(args.audio) if args.audio else None
    renderer = PortraitRenderer(args.portrait, RenderConfig(max_side=args.max_side))
    with VideoWriter(args.output, FPS, (renderer.width, renderer.height), audio=audio) as writer:
        for motion in tqdm(track.values, desc="render"):
            writer.write(renderer.render(motion))
    print(f"wrote {args.output} ({len(track)} frames)")
    return 0

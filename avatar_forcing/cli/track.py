"""`avatar-forcing track VIDEO -o motion.npz`: track a face video into a 25 fps motion file, relative to
the person's resting face over the clip (motion/neutral.py; the rest is stored beside it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from avatar_forcing.errors import InputError
from avatar_forcing.motion.vector import FPS, save_motion


def face_choice(text: str) -> str | int:
    if text == "largest":
        return text
    try:
        index = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("--face must be 'largest' or a face index (0 = leftmost)") from None
    if index < 0:
        raise argparse.ArgumentTypeError("--face index must be >= 0")
    return index


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, help="input video (any format FFmpeg reads)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output motion file (.npz)")
    parser.add_argument("--face", type=face_choice, default="largest",
                        help="which face: 'largest' (default) or an index counted from the left")
    parser.add_argument("--fps", type=float, default=FPS, help="output frame rate")


def run(args: argparse.Namespace) -> int:
    from avatar_forcing.motion.tracker import track_video

    if args.output.suffix != ".npz":
        raise InputError(f"the output must be a .npz file, got {args.output}")
    track = track_video(args.video, fps=args.fps, select=args.face, progress=True).relative_to_rest()
    save_motion(args.output, track)
    observed = int(track.mask.sum())
    print(f"{len(track)} frames at {track.fps:g} fps, face observed in {observed} "
          f"({observed / len(track):.1%}); wrote {args.output}")
    return 0

"""`avatar-forcing demo`: the built-in model plays the sample conversation -> out/demo.mp4."""

from __future__ import annotations

import argparse

from avatar_forcing.demo import DemoConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--portrait", help="your own photo for the avatar (default: the built-in astronaut)")
    parser.add_argument("-o", "--output", default="out/demo.mp4", help="output video (default: out/demo.mp4)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="only the first S seconds of the conversation (default: all, about 19 s)")
    parser.add_argument("--size", type=int, default=DemoConfig.size, help="size of each panel in pixels")
    parser.add_argument("--nfe", type=int, default=DemoConfig.nfe, help="Euler steps per block")
    parser.add_argument("--checkpoint", help="model directory (default: the built-in default model)")
    parser.add_argument("--seed", type=int, default=DemoConfig.seed)
    parser.add_argument("--frames", metavar="PNG", help="also save a few frames of the video as one picture")
    parser.add_argument("--plot", metavar="PNG", help="also plot the avatar's head pitch, jaw and smile")


def run(args: argparse.Namespace) -> int:
    from avatar_forcing.demo import run_demo

    cfg = DemoConfig(size=args.size, nfe=args.nfe, seconds=args.seconds, seed=args.seed)
    result = run_demo(args.output, args.portrait, cfg, checkpoint=args.checkpoint, frames_png=args.frames)
    print(f"wrote {result.path} ({result.seconds:.1f} s of video, {result.frames} frames)")
    print(f"generation took {result.generate_s:.1f} s ({result.model_s:.1f} s in the model): "
          f"real-time factor {result.real_time_factor:.2f} (below 1 = faster than real time)")
    if args.frames:
        print(f"wrote {args.frames}")
    if args.plot:
        from avatar_forcing.demo import load_demo_inputs, plot_motion

        print(f"wrote {plot_motion(result.motion, load_demo_inputs(args.seconds), args.plot)}")
    return 0

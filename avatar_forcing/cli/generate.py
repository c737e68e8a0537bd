"""`avatar-forcing generate`: an avatar video from a portrait and audio, offline, on the streaming engine."""

from __future__ import annotations

import argparse

from avatar_forcing.stream.options import SessionOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--portrait", help="portrait photo (default: the built-in astronaut)")
    parser.add_argument("--avatar-audio", required=True, help="what the avatar says (any audio/video file)")
    parser.add_argument("--user-audio", help="what the user says (default: the user video's audio, if any)")
    user = parser.add_mutually_exclusive_group()
    user.add_argument("--user-video", help="the user's face video (tracked)")
    user.add_argument("--user-motion", help="the user's motion (.npz from `avatar-forcing track`)")
    parser.add_argument("--checkpoint", help="model directory (default: the installed default model); a "
                        "converted official checkpoint (`convert-official`) brings its LIA motion backend")
    parser.add_argument("-o", "--output", required=True, help="output .mp4")
    parser.add_argument("--side-by-side", action="store_true",
                        help="the user on the left (their video, or their motion on a mirrored portrait)")
    parser.add_argument("--user-portrait", help="portrait for the user's side with --user-motion")
    parser.add_argument("--export-motion", metavar="PREFIX",
                        help="also write the avatar's ARKit blendshape + pose curves as PREFIX.json/.csv")
    parser.add_argument("--size", type=int, default=SessionOptions.output_size,
                        help="scale the output down to this longer side (default: the portrait's own size)")
    parser.add_argument("--nfe", type=int, default=SessionOptions.nfe)
    parser.add_argument("--cfg-audio", type=float, default=SessionOptions.cfg_audio)
    parser.add_argument("--cfg-user", type=float, default=SessionOptions.cfg_user)
    parser.add_argument("--pose-guidance", type=float, default=SessionOptions.pose_guidance,
                        help="the head pose's share of the guidance (1: all of it, as the face)")
    parser.add_argument("--history-noise", type=float, default=SessionOptions.history_noise,
                        help="flow time of the generated past in the cache (0: the authors' clean past)")
    parser.add_argument("--seed", type=int, default=SessionOptions.seed)
    parser.add_argument("--device", default=SessionOptions.device,
                        help="'auto' (the GPU if there is one), 'cpu', 'cuda', 'cuda:N'")
    parser.add_argument("--dtype", default=SessionOptions.dtype, choices=("auto", "float32", "bfloat16"),
                        help="'auto': bfloat16 on a GPU, float32 on the CPU")
    parser.add_argument("--wav2vec", help="local wav2vec2-base-960h folder (overrides the one recorded by "
                        "convert-official)")
    parser.add_argument("--random-init", action="store_true",
                        help="use an UNTRAINED model (testing the pipeline only: the motion is noise)")


def run(args: argparse.Namespace) -> int:
    from avatar_forcing.stream.generate import generate

    user_portrait = None
    if args.user_portrait:
        from avatar_forcing.media.image import load_image

        user_portrait = load_image(args.user_portrait)
    options = SessionOptions(output_size=args.size, nfe=args.nfe, cfg_audio=args.cfg_audio,
                             cfg_user=args.cfg_user, pose_guidance=args.pose_guidance,
                             history_noise=args.history_noise, seed=args.seed,
                             random_init=args.random_init, device=args.device, dtype=args.dtype,
                             wav2vec=args.wav2vec)
    result = generate(args.portrait, args.avatar_audio, args.output, user_audio=args.user_audio,
                      user_video=args.user_video, user_motion=args.user_motion, checkpoint=args.checkpoint,
                      options=options, side_by_side=args.side_by_side, user_portrait=user_portrait,
                      export_prefix=args.export_motion)
    print(f"wrote {result.path} ({result.frames} frames, {result.seconds:.2f} s)")
    for path in result.exported:
        print(f"wrote {path}")
    return 0

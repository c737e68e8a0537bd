"""Does the model's one-block conditional rest in silence? (issue 16, docs/EVALUATION.md round 11)

`quiet_probe.py` counts the nods of a whole generated stream, where a model's own past feeds its next
block. This probe takes that loop out: held-out conversations are streamed with every block *given* as
the ground truth, and each block inside a silence (nobody has spoken for --quiet-s) is also sampled once,
from the true past, as in training. Printed: the share of those blocks whose head pitch moves more than
3 and 6 degrees from the last true frame, for the samples and for the ground truth, over all of them and
by how long the silence has lasted when the block begins (with --quiet-s 0.8: the blocks whose 2 s of
context still hold the last voice, and those whose whole context is silent).

    .venv/bin/python scripts/one_block_probe.py runs/v13/dpo/latest --history-noise 0.2 --cfg 2 3
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from quiet_probe import silent_frames, voiced

from avatar_forcing.eval.evaluate import Clip, EvalConfig, EvalModel, heldout_clips, load_eval_model
from avatar_forcing.motion.vector import FPS, idx
from avatar_forcing.stream.inputs import SAMPLE_RATE
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession

PITCH = idx("pitch")
THRESHOLDS_DEG = (3.0, 6.0)
SILENCE_BINS_S = (0.8, 1.2, 2.0, 4.0, np.inf)  # how long nobody has spoken when a block begins
GENERATOR_STATE = ("block_index", "next_frame", "context_latents", "past_conds", "self_kv", "self_frames",
                   "cross_kv", "cross_frames")


def excursions(model: EvalModel, clip: Clip, options: SessionOptions, quiet_s: float
               ) -> tuple[list[float], list[float], list[float]]:
    """(sampled, true, silent_s): the largest |pitch - last true pitch| in degrees per block inside a
    silence, and how long the silence had lasted at the block's start."""
    silent = silent_frames(voiced(clip.avatar_audio) | voiced(clip.user_audio))
    quiet = silent > round(quiet_s * FPS)
    session = AvatarSession(options=options, model=model.model, stats=model.stats,
                            reference_motion=clip.reference, audio_features=model.audio_features)
    generator, step = session.generator, session.generator.step
    sampled, true, silent_s = [], [], []

    def teacher_forced(*conds, **kwargs):
        # every block enters the cache as the ground truth; a block in a silence is first sampled from
        # that true past, and the generator is put back as it was (state and noise) before it is given
        start, n = generator.next_frame, generator.frames_needed
        if start + n > clip.frames:
            return step(*conds, **kwargs)
        if start > 0 and quiet[start:start + n].all():
            saved = {name: getattr(generator, name) for name in GENERATOR_STATE}
            noise = generator.generator.get_state()
            block = model.stats.denormalize(step(*conds, **kwargs)[0].cpu().numpy())
            for name, value in saved.items():
                setattr(generator, name, value)
            generator.generator.set_state(noise)
            last = clip.gt[start - 1, PITCH]
            sampled.append(float(np.degrees(np.abs(block[:, PITCH] - last).max())))
            true.append(float(np.degrees(np.abs(clip.gt[start:start + n, PITCH] - last).max())))
            silent_s.append(silent[start] / FPS)
        given = model.stats.normalize(clip.gt[start:start + n].astype(np.float32))
        return step(*conds, **kwargs, given=torch.as_tensor(given)[None])

    generator.step = teacher_forced
    try:
        session.push_avatar_audio(clip.avatar_audio.astype(np.float32), SAMPLE_RATE)
        session.push_user_audio(clip.user_audio.astype(np.float32), SAMPLE_RATE)
        session.push_user_motion(clip.user_motion.astype(np.float32))
        session.finish()
        while session.step() is not None:
            pass
    finally:
        session.close()
    return sampled, true, silent_s


def shares(values: np.ndarray) -> str:
    return ", ".join(f"> {d:g} deg in {np.mean(values > d):.2f}" for d in THRESHOLDS_DEG)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--data", default="runs/data_v12", help="corpus with a held-out split")
    parser.add_argument("--clips", type=int, default=12, help="held-out conversations (whole)")
    parser.add_argument("--quiet-s", type=float, default=2.0)
    parser.add_argument("--nfe", type=int, default=SessionOptions.nfe, help="Euler steps per block")
    parser.add_argument("--history-noise", type=float, default=SessionOptions.history_noise)
    parser.add_argument("--cfg", type=float, nargs=2, metavar=("W_A", "W_U"),
                        default=(SessionOptions.cfg_audio, SessionOptions.cfg_user))
    parser.add_argument("--guidance-form", choices=("paper", "joint"), default=SessionOptions.guidance_form,
                        help="which velocities the guidance combines (SessionOptions.guidance_form)")
    parser.add_argument("--overlap", type=int, default=SessionOptions.overlap,
                        help="frames sampled past each block and dropped (SessionOptions.overlap)")
    args = parser.parse_args()
    model = load_eval_model(args.checkpoint)
    sampled, true, silent_s = [], [], []
    for i, clip in enumerate(heldout_clips(args.data, EvalConfig(clips=args.clips, seconds=None))):
        options = SessionOptions(render=False, seed=i, history_noise=args.history_noise, nfe=args.nfe,
                                 cfg_audio=args.cfg[0], cfg_user=args.cfg[1], overlap=args.overlap,
                                 guidance_form=args.guidance_form)
        for total, part in zip((sampled, true, silent_s), excursions(model, clip, options, args.quiet_s),
                               strict=True):
            total += part
    sampled, true, silent_s = np.array(sampled), np.array(true), np.array(silent_s)
    for label, values in (("sampled", sampled), ("ground truth", true)):
        print(f"{args.checkpoint} (history noise {args.history_noise:g}, w {args.cfg[0]:g}/{args.cfg[1]:g}, "
              f"{args.nfe} steps, overlap {args.overlap}, {args.guidance_form} guidance) "
              f"{label}: {len(values)} blocks in silences, pitch moves {shares(values)}")
    for lo, hi in zip(SILENCE_BINS_S[:-1], SILENCE_BINS_S[1:], strict=True):
        where = (silent_s >= lo) & (silent_s < hi)
        if where.any():
            print(f"  silent for {lo:g}-{hi:g} s: {where.sum()} blocks, sampled {shares(sampled[where])}; "
                  f"ground truth {shares(true[where])}")


if __name__ == "__main__":
    main()

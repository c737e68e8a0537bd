"""Controlled reaction probe (issue 16): does the avatar smile back at a smiling user, and how soon?

Through the live session path (no tracker, no renderer): the user's motion, relative to the user's rest, is
neutral for 4 s, smiles `amp` (with a little cheek squint) from 4 s to 9 s, then rests again; the user's
microphone is silent (or, with --talking, carries the demo user's synthetic speech throughout: a user who
smiles while talking) and the avatar has no speech. Prints, per user smile level and over seeds, the
avatar's generated smile per phase and its answer: the seconds until its smile first reaches half the
user's (people answer a smile 0.3-0.7 s after it, docs/DATA.md), and how many seeds answer within
`ANSWER_WITHIN_S`. With --corpus, first the same for the listeners of a corpus' training conversations, by
`eval reactions`' rule (eval/metrics.py: ``smile_answers``, ``AnswerConfig``).

    .venv/bin/python scripts/smile_probe.py avatar_forcing/assets/default_model x=runs/x/dpo/latest
        [--talking] [--corpus runs/data] [--plot smile_answers.png] [--plot-runs runs.png --runs-amp 0.5]

A checkpoint given as LABEL=DIR is called LABEL in the output.
"""

from __future__ import annotations

import argparse

import numpy as np

from avatar_forcing.audio.io import load_audio
from avatar_forcing.data.shards import Corpus
from avatar_forcing.demo import DEMO_DIR
from avatar_forcing.eval.metrics import AnswerConfig, smile_answers
from avatar_forcing.motion.smile_onsets import SMILE_CHANNELS as SMILE
from avatar_forcing.motion.smile_onsets import smile as smile_weight
from avatar_forcing.motion.vector import FPS, MOTION_DIM, idx
from avatar_forcing.stream.inputs import FRAME_SAMPLES, SAMPLE_RATE
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession

CHEEK = [idx("cheekSquintLeft"), idx("cheekSquintRight")]
CHEEK_PER_SMILE = 0.4
PHASES_S = (0.0, 4.0, 9.0, 14.0)  # rest, smile, rest
ANSWERED_AT = AnswerConfig.answered_at      # of the user's smile level
ANSWER_WITHIN_S = AnswerConfig.within_s


def user_voice(frames: int, talking: bool) -> np.ndarray:
    """The user's microphone: silence, or the demo user's speech looped to the probe's length."""
    samples = frames * FRAME_SAMPLES
    if not talking:
        return np.zeros(samples, np.float32)
    speech = load_audio(DEMO_DIR / "user.wav", SAMPLE_RATE)
    return np.resize(speech, samples).astype(np.float32)


def generated_smile(checkpoint: str, amp: float, options: SessionOptions, talking: bool) -> np.ndarray:
    a, b, end = (int(t * FPS) for t in PHASES_S[1:])
    user = np.zeros((end, MOTION_DIM), np.float32)
    user[a:b, SMILE] = amp
    user[a:b, CHEEK] = amp * CHEEK_PER_SMILE
    session = AvatarSession(checkpoint, None, options)
    session.push_user_motion(user, 0.0)
    session.push_user_audio(user_voice(end, talking), SAMPLE_RATE)
    session.finish()
    blocks = []
    while (block := session.step()) is not None:
        blocks.append(block.motion)
    session.close()
    return smile_weight(np.concatenate(blocks)[:end])


def answer_s(smile: np.ndarray, amp: float) -> float:
    """Seconds from the user's smile onset until the avatar's smile reaches ANSWERED_AT of it (inf: never;
    NaN: the user did not smile)."""
    if amp <= 0:
        return float("nan")
    a, b = (int(t * FPS) for t in PHASES_S[1:3])
    hits = np.flatnonzero(smile[a:b] >= ANSWERED_AT * amp)
    return hits[0] / FPS if len(hits) else float("inf")


def corpus_answers(data: str, conversations: int) -> np.ndarray:
    """Answer times (s; inf: none) of the listeners of a corpus' first training conversations."""
    corpus, times = Corpus(data), []
    for ref in corpus.conversations("train")[:conversations]:
        people = corpus.load(ref, audio=False).participants
        for me, user in ((0, 1), (1, 0)):
            theirs, mine = (smile_weight(people[i].motion) for i in (user, me))
            times.append(smile_answers(theirs, mine))
    return np.concatenate(times)


def plot(path: str, curves: dict[str, list[tuple[float, float, float]]], corpus_rate: float | None) -> None:
    """Per checkpoint: the avatar's mean smile during the user's (left) and the share of seeds answering in
    time (right), against the user's smile level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, points in curves.items():
        amps, smiles, rates = zip(*points, strict=True)
        left.plot(amps, smiles, marker="o", label=name)
        right.plot(amps, rates, marker="o", label=name)
    left.plot([0, 1], [0, 1], color="grey", linestyle=":", label="as much as the user")
    if corpus_rate is not None:
        right.axhline(corpus_rate, color="black", linestyle="--", label="the corpus' listeners")
    left.set(xlabel="user's smile", ylabel="avatar's mean smile while the user smiles")
    right.set(xlabel="user's smile", ylabel=f"seeds answering within {ANSWER_WITHIN_S} s", ylim=(-0.05, 1.05))
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def plot_runs(path: str, runs: dict[str, list[np.ndarray]], amp: float) -> None:
    """One panel per checkpoint: every seed's smile around the user's smile of level ``amp``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = (int(t * FPS) for t in PHASES_S[1:3])
    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3.4), sharey=True, squeeze=False)
    for ax, (name, seeds) in zip(axes[0], runs.items(), strict=True):
        t = np.arange(len(seeds[0])) / FPS - PHASES_S[1]
        user = np.where((np.arange(len(t)) >= a) & (np.arange(len(t)) < b), amp, 0.0)
        ax.plot(t, user, color="black", linestyle="--", label="user")
        label = f"avatar, one line per seed ({len(seeds)})"
        for seed, smile in enumerate(seeds):
            ax.plot(t, smile, alpha=0.75, label=label if seed == 0 else None)
        ax.axvspan(0, ANSWER_WITHIN_S, color="green", alpha=0.08, label=f"in time ({ANSWER_WITHIN_S} s)")
        ax.set(title=name, xlabel="seconds after the user's smile begins",
               xlim=(-1, PHASES_S[2] - PHASES_S[1] + 1))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("smile")
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--amps", default="0.2,0.35,0.5,0.9")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--cfg-user", type=float, default=SessionOptions.cfg_user)
    parser.add_argument("--history-noise", type=float, default=SessionOptions.history_noise)
    parser.add_argument("--talking", action="store_true", help="the user talks while smiling")
    parser.add_argument("--corpus", help="also measure the listeners of this corpus")
    parser.add_argument("--corpus-conversations", type=int, default=120)
    parser.add_argument("--plot", metavar="PNG", help="also draw the answers against the user's smile")
    parser.add_argument("--plot-runs", metavar="PNG",
                        help="also draw every seed's smile for the level --runs-amp, per checkpoint")
    parser.add_argument("--runs-amp", type=float, default=0.5)
    args = parser.parse_args()
    corpus_rate, curves, seeds_of = None, {}, {}
    if args.corpus:
        times = corpus_answers(args.corpus, args.corpus_conversations)
        corpus_rate = float(np.mean(times <= ANSWER_WITHIN_S))
        print(f"{args.corpus}: {len(times)} user smiles, answered within {ANSWER_WITHIN_S} s: "
              f"{np.mean(times <= ANSWER_WITHIN_S):.2f}, median answer {np.median(times):.2f} s")
    a, b = (int(t * FPS) for t in PHASES_S[1:3])
    for spec in args.checkpoints:
        name, _, checkpoint = spec.rpartition("=")  # LABEL=DIR names the checkpoint in the output
        name = name or checkpoint
        for amp in (float(x) for x in args.amps.split(",")):
            options = [SessionOptions(render=False, seed=seed, cfg_user=args.cfg_user,
                                      history_noise=args.history_noise) for seed in range(args.seeds)]
            runs = [generated_smile(checkpoint, amp, o, args.talking) for o in options]
            answers = np.array([answer_s(r, amp) for r in runs])
            if amp == args.runs_amp:
                seeds_of[name] = runs
            smile = np.mean(runs, 0)
            line = (f"{name} user smile {amp}: avatar smile before {smile[:a].mean():.3f}, during "
                    f"{smile[a:b].mean():.3f} (max {smile[a:b].max():.3f}), after {smile[b:].mean():.3f}")
            if amp > 0:
                in_time = int((answers <= ANSWER_WITHIN_S).sum())
                line += (f"; answered within {ANSWER_WITHIN_S} s in {in_time}/{len(runs)} seeds, "
                         f"median answer {np.median(answers):.2f} s")
                curves.setdefault(name, []).append((amp, float(smile[a:b].mean()), in_time / len(runs)))
            print(line)
    if args.plot:
        plot(args.plot, curves, corpus_rate)
    if args.plot_runs and seeds_of:
        plot_runs(args.plot_runs, seeds_of, args.runs_amp)


if __name__ == "__main__":
    main()

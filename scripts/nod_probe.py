"""Does a checkpoint nod after a real voice's phrase ends? (issue 16)

The real videos hold only nine phrase ends in all, too few to judge nods. This probe makes many from the
same real voices: each video's voiced audio is cut into phrases of --phrase seconds, separated by pauses of
--pause seconds filled with that recording's own background (its quietest frames, not digital silence), and
played as the user's microphone to a silent avatar with no user video (motion only, no renderer). An
eSpeak voice cut the same way is the control (the voice the model was trained on). Prints, per voice, the
nods of the generated pitch (`metrics.detect_nods`), their precision and recall against the phrase ends
and the same for nods at random times (`eval reactions`' chance level), pooled over --seeds.

    .venv/bin/python scripts/nod_probe.py avatar_forcing/assets/default_model runs/x/dpo/latest
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avatar_forcing.audio.io import load_audio
from avatar_forcing.audio.tts import synthesize
from avatar_forcing.eval.reactions import ReactionsConfig, nod_scores, voiced_segments
from avatar_forcing.motion.vector import FPS, idx
from avatar_forcing.stream.inputs import SAMPLE_RATE
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession

CONTROL_TEXTS = (
    "So I went down to the market this morning, and they had the most wonderful apples, the red ones from "
    "the north, and I bought a whole bag of them for the kids, and then we made a pie in the afternoon.",
    "The train was late again, of course, so I walked along the river instead and watched the boats, and "
    "by the time I got to the office everybody had already left for the meeting downstairs.",
    "My brother thinks we should paint the kitchen yellow, but honestly I would rather keep it white and "
    "put some plants on the window, because the light in the morning is really beautiful there.",
)
BACKGROUND_QUANTILE = 0.1  # a recording's background: its quietest tenth of 40 ms frames


def background(pcm: np.ndarray, seconds: float) -> np.ndarray:
    """`seconds` of the recording's own background noise: its quietest frames, looped."""
    n = SAMPLE_RATE // FPS
    frames = pcm[: len(pcm) // n * n].reshape(-1, n)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(1))
    quiet = frames[rms <= np.quantile(rms, BACKGROUND_QUANTILE)].reshape(-1)
    return np.resize(quiet, round(seconds * SAMPLE_RATE)).astype(np.float32)


def phrased(pcm: np.ndarray, phrase_s: float, pause_s: float, cfg: ReactionsConfig
            ) -> tuple[np.ndarray, np.ndarray]:
    """The voiced audio of `pcm` cut into phrases with pauses of its own background between them ->
    (audio, phrase end times in s)."""
    voiced = np.concatenate([pcm[round(a * SAMPLE_RATE): round(b * SAMPLE_RATE)]
                             for a, b in voiced_segments(pcm, cfg)] or [pcm[:0]])
    step = round(phrase_s * SAMPLE_RATE)
    pause = background(pcm, pause_s)
    parts, ends, t = [], [], 0.0
    for start in range(0, len(voiced) - step + 1, step):
        parts += [voiced[start: start + step], pause]
        t += phrase_s
        ends.append(t)
        t += pause_s
    if not parts:
        return pcm[:0], np.zeros(0)
    return np.concatenate(parts), np.array(ends)


def pitch_of(checkpoint: str, user_pcm: np.ndarray, seed: int) -> np.ndarray:
    session = AvatarSession(checkpoint, None, SessionOptions(render=False, seed=seed))
    session.push_user_audio(user_pcm, SAMPLE_RATE)
    session.push_avatar_audio(np.zeros_like(user_pcm), SAMPLE_RATE)
    session.finish()
    motion = np.concatenate([block.motion for block in iter(session.step, None)])
    session.close()
    return motion[:, idx("pitch")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--videos", default="../shared/real/videos")
    parser.add_argument("--names", default="d6,d10,d11,d14,d20", help="video stems with speech")
    parser.add_argument("--phrase", type=float, default=2.0, help="seconds of speech per phrase")
    parser.add_argument("--pause", type=float, default=1.6, help="seconds of background after each phrase")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    cfg = ReactionsConfig()
    voices: dict[str, np.ndarray] = {}
    folder = Path(args.videos)
    if folder.is_dir():
        voices = {n: load_audio(folder / f"{n}.mp4", SAMPLE_RATE) for n in args.names.split(",")}
    else:
        print(f"no video folder at {folder}: only the eSpeak control")
    control = np.concatenate([synthesize(text).pcm for text in CONTROL_TEXTS])
    noise = np.random.default_rng(0).normal(0.0, 1e-3, len(control)).astype(np.float32)
    voices["espeak"] = control + noise  # a quiet microphone floor, so the pauses are not digital zero
    clips = {name: phrased(pcm, args.phrase, args.pause, cfg) for name, pcm in voices.items()}
    for checkpoint in args.checkpoints:
        print(checkpoint)
        pooled = {"real": [], "espeak": []}
        for name, (pcm, ends) in clips.items():
            scores = [nod_scores(pitch_of(checkpoint, pcm, seed), ends, cfg) for seed in range(args.seeds)]
            pooled["espeak" if name == "espeak" else "real"] += scores
            print(f"  {name:7s} {len(ends)} phrase ends: " + summary(scores), flush=True)
        for group, scores in pooled.items():
            print(f"  {group} voices: " + summary(scores), flush=True)


def summary(scores: list[dict[str, float]]) -> str:
    """Pooled over runs: nods per phrase end, and precision / recall against chance."""
    events = sum(s["phrase_ends"] for s in scores)
    nods = sum(s["nods"] for s in scores)
    hits = sum(s["nod_precision"] * s["nods"] for s in scores if s["nods"])
    answered = sum(s["nod_recall"] * s["phrase_ends"] for s in scores)
    chance_p = sum(s["nod_precision_chance"] * s["nods"] for s in scores) / max(nods, 1)
    chance_r = sum(s["nod_recall_chance"] * s["phrase_ends"] for s in scores) / max(events, 1)
    return (f"{nods / max(events, 1):.2f} nods per end, precision {hits / max(nods, 1):.2f} "
            f"(chance {chance_p:.2f}), recall {answered / max(events, 1):.2f} (chance {chance_r:.2f})")


if __name__ == "__main__":
    main()

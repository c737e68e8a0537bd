"""Does a checkpoint nod after a real voice's phrase ends? (issue 16)

The real videos hold only nine phrase ends in all, too few to judge nods. This probe makes many from the
same real voices: each video's own phrases (voiced stretches between its natural pauses, so each ends as a
phrase ends, not mid-word) are set apart by pauses of --pause seconds filled with that recording's own
background (its quietest frames, not digital silence), and played as the user's microphone to a silent
avatar with no user video (motion only, no renderer). eSpeak clauses, spoken one by one and set apart the
same way, are the control (the voice the model was trained on). Prints, per voice, the
nods of the generated pitch (`metrics.detect_nods`), their precision and recall against the phrase ends
and the same for nods at random times (`eval reactions`' chance level), pooled over --seeds, and the mean
head dip after a phrase end (the largest downward pitch within the 1.5 s response window, relative to the
pitch at the end) beside the same dip after every frame: a nod too small for the detector still shows.

In the corpus a listener nods at a phrase break inside the speaker's turn, not at a turn end, where it
starts talking itself: the default 1.6 s pause is as long as a turn end; `--pause 0.6` is a phrase break
(docs/EVALUATION.md, round 8).

    .venv/bin/python scripts/nod_probe.py avatar_forcing/assets/default_model runs/x/dpo/latest
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avatar_forcing.audio.io import load_audio
from avatar_forcing.audio.tts import synthesize
from avatar_forcing.eval.metrics import head_dips
from avatar_forcing.eval.reactions import ReactionsConfig, nod_scores, voiced_segments
from avatar_forcing.motion.vector import FPS, idx
from avatar_forcing.stream.inputs import SAMPLE_RATE
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession

MIN_PHRASE_S = 0.6  # shorter voiced stretches (a word, a breath) are left out
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


def spaced(phrases: list[np.ndarray], pause: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Phrases with `pause` after each -> (audio, phrase end times in s)."""
    if not phrases:
        return pause[:0], np.zeros(0)
    lengths = np.array([len(p) + len(pause) for p in phrases])
    ends = (np.cumsum(lengths) - len(pause)) / SAMPLE_RATE
    return np.concatenate([x for p in phrases for x in (p, pause)]), ends


def own_phrases(pcm: np.ndarray, min_phrase_s: float, cfg: ReactionsConfig) -> list[np.ndarray]:
    """A recording's phrases: its voiced stretches (pauses shorter than cfg.min_pause_s bridged)."""
    return [pcm[round(a * SAMPLE_RATE): round(b * SAMPLE_RATE)]
            for a, b in voiced_segments(pcm, cfg) if b - a >= min_phrase_s]


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
    clips = {name: spaced(own_phrases(pcm, MIN_PHRASE_S, cfg), background(pcm, args.pause))
             for name, pcm in voices.items()}
    clauses = [synthesize(c.strip()).pcm for text in CONTROL_TEXTS for c in text.split(",")]
    floor = np.random.default_rng(0).normal(0.0, 1e-3, round(args.pause * SAMPLE_RATE)).astype(np.float32)
    clips["espeak"] = spaced(clauses, floor)  # a quiet microphone floor: the pauses are not digital zero
    for checkpoint in args.checkpoints:
        print(checkpoint)
        pooled = {"real": ([], [], []), "espeak": ([], [], [])}
        for name, (pcm, ends) in clips.items():
            pitches = [pitch_of(checkpoint, pcm, seed) for seed in range(args.seeds)]
            scores = [nod_scores(pitch, ends, cfg) for pitch in pitches]
            after = np.concatenate([head_dips(pitch, np.round(ends * FPS), cfg.nod) for pitch in pitches])
            anywhere = np.concatenate([head_dips(pitch, np.arange(len(pitch)), cfg.nod) for pitch in pitches])
            group = pooled["espeak" if name == "espeak" else "real"]
            group[0].extend(scores), group[1].append(after), group[2].append(anywhere)
            print(f"  {name:7s} {len(ends)} phrase ends: " + summary(scores, after, anywhere), flush=True)
        for group, (scores, after, anywhere) in pooled.items():
            print(f"  {group} voices: " + summary(scores, np.concatenate(after), np.concatenate(anywhere)),
                  flush=True)


def summary(scores: list[dict[str, float]], after: np.ndarray, anywhere: np.ndarray) -> str:
    """Pooled over runs: nods per phrase end, precision / recall against chance, head dip after an end
    against after any frame (degrees)."""
    judged = [s for s in scores if s["phrase_ends"] > 0]  # a clip whose ends all fall too late has none
    events = sum(s["phrase_ends"] for s in judged)
    nods = sum(s["nods"] for s in judged)
    hits = sum(s["nod_precision"] * s["nods"] for s in judged if s["nods"])
    answered = sum(s["nod_recall"] * s["phrase_ends"] for s in judged)
    chance_p = sum(s["nod_precision_chance"] * s["nods"] for s in judged) / max(nods, 1)
    chance_r = sum(s["nod_recall_chance"] * s["phrase_ends"] for s in judged) / max(events, 1)
    return (f"{nods / max(events, 1):.2f} nods per end, precision {hits / max(nods, 1):.2f} "
            f"(chance {chance_p:.2f}), recall {answered / max(events, 1):.2f} (chance {chance_r:.2f}), "
            f"dip {np.degrees(np.mean(after)) if len(after) else np.nan:.2f} deg "
            f"(any frame {np.degrees(np.mean(anywhere)):.2f})")


if __name__ == "__main__":
    main()

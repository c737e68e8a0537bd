"""Make the demo conversation shipped in avatar_forcing/assets/demo/ (deterministic).

The avatar greets the user, listens while the user speaks and laughs, then answers. Speech comes from
eSpeak NG; the user's motion (talking, laughing, and listening to the avatar) comes from the synthetic
conversation generator (avatar_forcing/data/synth), with a hand-written script instead of a drawn one.

    python scripts/make_demo_inputs.py [--out avatar_forcing/assets/demo]

Writes avatar.wav and user.wav (16 kHz mono), user_motion.npz (25 fps, 58-d) and script.json (turns
with times and text, for captions). Run it in a fresh process: eSpeak NG output depends on what the
process spoke before, so the files are only reproducible from a process that has spoken nothing else.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from avatar_forcing.audio.io import save_wav
from avatar_forcing.data.synth.conversation import generate
from avatar_forcing.data.synth.speech import Utterance, Voice, speak
from avatar_forcing.motion.vector import MotionTrack, save_motion

AVATAR, USER = 0, 1
ROLES = ("avatar", "user")


@dataclass
class DemoScript:
    """Who says what, and when. Times are seconds; each line starts `gap` after the previous one ends."""

    voices: tuple[Voice, Voice] = (Voice("en-us+f3", 160, 55), Voice("en-gb+f1", 165, 45))
    lines: list[tuple[int, str, str, float]] = field(default_factory=lambda: [
        # (speaker, kind, text, gap before it)
        (AVATAR, "sentence", "Hello! I am your avatar.", 0.4),
        (AVATAR, "sentence", "I listen to you, and I react while you speak.", 0.35),
        (USER, "sentence", "Really? That sounds like fun.", 0.6),
        (USER, "sentence", "Let me tell you a joke about a robot who wanted to be an astronaut.", 0.4),
        (USER, "laugh", "ha ha ha ha", 0.15),
        (AVATAR, "sentence", "That was funny! I smiled when you laughed.", 0.6),
        (AVATAR, "sentence", "Thanks for talking with me.", 0.3),
    ])
    seed: int = 0        # seeds the generator's draws of styles, blinks and reactions
    index: int = 0


def build(demo: DemoScript) -> tuple[list[Voice], list[Utterance]]:
    voices = list(demo.voices)
    utterances, now, turn, last_speaker = [], 0.0, -1, None
    for speaker, kind, text, gap in demo.lines:
        if speaker != last_speaker:
            turn, last_speaker = turn + 1, speaker
        speech = speak(text, voices[speaker])
        utterances.append(Utterance(speaker, now + gap, kind, text, speech, turn))
        now = utterances[-1].end
    return voices, utterances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("avatar_forcing/assets/demo"))
    args = parser.parse_args()
    demo = DemoScript()
    conv = generate(demo.seed, "train", demo.index, scripted=build(demo))
    args.out.mkdir(parents=True, exist_ok=True)
    for role, participant in zip(ROLES, conv.participants, strict=True):
        save_wav(args.out / f"{role}.wav", participant.audio)
    user = conv.participants[USER]
    save_motion(args.out / "user_motion.npz", MotionTrack(user.motion, fps=conv.fps, rest=user.rest))
    turns = [{**t, "speaker": ROLES[t["speaker"]]} for t in conv.meta["turns"]]
    events = {ROLES[p]: e for p, e in enumerate(conv.meta["events"])}
    seconds = conv.frames / conv.fps
    (args.out / "script.json").write_text(json.dumps(
        {"seconds": round(seconds, 3), "fps": conv.fps, "voices": [v.name for v in demo.voices],
         "turns": turns, "events": events}, indent=1))
    print(f"wrote {args.out}: {seconds:.1f} s, {len(turns)} utterances")


if __name__ == "__main__":
    main()

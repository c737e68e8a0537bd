"""The spoken side of a synthetic conversation: voices, the turn-taking script, and eSpeak NG speech.

The script alternates turns of 1-3 sentences between two speakers, with pauses between sentences and
turns, some overlapping turn starts, listener backchannels after the speaker's phrases (mostly silent: a
nod, as a live avatar makes it), and laughter ("ha ha ha" spoken, labelled as laughter) that the listener
sometimes joins.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from avatar_forcing.audio.io import SAMPLE_RATE
from avatar_forcing.audio.tts import Speech, synthesize
from avatar_forcing.data.synth import text_bank
from avatar_forcing.data.synth.config import DialogueConfig, VoiceConfig


@dataclass
class Voice:
    name: str  # eSpeak voice, e.g. "en-us+m3"
    rate: int  # words per minute
    pitch: int  # eSpeak 0..99


@dataclass
class Utterance:
    speaker: int
    start: float  # seconds from the start of the conversation
    kind: str  # "sentence" | "backchannel" | "laugh"
    text: str
    speech: Speech
    turn: int  # index of the turn it belongs to (backchannels: the turn they answer)
    cause_time: float | None = None  # backchannels: the phrase end they answer

    @property
    def end(self) -> float:
        return self.start + self.speech.duration


def _grid(rng: np.random.Generator, lo_hi: tuple[float, float], step: float) -> int:
    return int(step * round(rng.uniform(*lo_hi) / step))


def draw_voices(rng: np.random.Generator, split: str, cfg: VoiceConfig) -> list[Voice]:
    """Two different voices from the split's own variants (train and held-out variants are disjoint)."""
    variants = cfg.train_variants if split == "train" else cfg.heldout_variants
    picked = rng.choice(len(variants), 2, replace=False)
    return [
        Voice(
            f"{rng.choice(cfg.languages)}+{variants[i]}",
            _grid(rng, cfg.rate, cfg.rate_step),
            _grid(rng, cfg.pitch, cfg.pitch_step),
        )
        for i in picked
    ]


@lru_cache(maxsize=512)
def _short_speech(text: str, voice: str, rate: int, pitch: int) -> Speech:
    return synthesize(text, voice=voice, rate=rate, pitch=pitch)


def speak(text: str, voice: Voice, rate: int | None = None) -> Speech:
    """eSpeak NG speech; short utterances (backchannels, laughs) repeat often and are cached."""
    rate = voice.rate if rate is None else rate
    if len(text) <= 12:
        return _short_speech(text, voice.name, rate, voice.pitch)
    return synthesize(text, voice=voice.name, rate=rate, pitch=voice.pitch)


def silent_speech() -> Speech:
    """A silent acknowledgement: the listener nods without a sound (`voiced_backchannel_prob`)."""
    return Speech(np.zeros(0, np.float32), SAMPLE_RATE)


def script(
    rng: np.random.Generator,
    voices: list[Voice],
    split: str,
    duration: float,
    cfg: DialogueConfig,
    voice_cfg: VoiceConfig,
) -> list[Utterance]:
    """Lay out a conversation of about ``duration`` seconds; returns utterances sorted by start."""
    bank = text_bank.sentences(split)
    out: list[Utterance] = []
    speaker = int(rng.integers(2))
    now = rng.uniform(*cfg.start_silence)
    turn = 0
    while now < duration:
        listener = 1 - speaker
        n = int(rng.integers(cfg.sentences_per_turn[0], cfg.sentences_per_turn[1] + 1))
        for k in range(n):
            jitter = _grid(
                rng, (-voice_cfg.sentence_rate_jitter, voice_cfg.sentence_rate_jitter), voice_cfg.rate_step
            )
            text = str(bank[rng.integers(len(bank))])
            u = Utterance(
                speaker,
                now,
                "sentence",
                text,
                speak(text, voices[speaker], voices[speaker].rate + jitter),
                turn,
            )
            out.append(u)
            now = u.end
            if k < n - 1:
                if rng.random() < cfg.backchannel_prob:
                    bc = str(rng.choice(cfg.backchannels))
                    voiced = rng.random() < cfg.voiced_backchannel_prob
                    out.append(
                        Utterance(
                            listener,
                            now + rng.uniform(*cfg.backchannel_delay),
                            "backchannel",
                            bc if voiced else "",
                            speak(bc, voices[listener]) if voiced else silent_speech(),
                            turn,
                            cause_time=now,
                        )
                    )
                now += rng.uniform(*cfg.sentence_gap)
        if rng.random() < cfg.laugh_prob:
            laugh = str(rng.choice(cfg.laugh_texts))
            u = Utterance(
                speaker, now + rng.uniform(0.05, 0.3), "laugh", laugh, speak(laugh, voices[speaker]), turn
            )
            out.append(u)
            if rng.random() < cfg.laugh_response_prob:
                along = str(rng.choice(cfg.laugh_texts))
                out.append(
                    Utterance(
                        listener,
                        u.start + rng.uniform(0.3, 0.7),
                        "laugh",
                        along,
                        speak(along, voices[listener]),
                        turn,
                        cause_time=u.start,
                    )
                )
            now = max(v.end for v in out[-2:])
        if rng.random() < cfg.overlap_prob:
            now -= rng.uniform(*cfg.overlap)
        elif rng.random() < cfg.lull_prob:
            now += rng.uniform(*cfg.lull)
        else:
            now += rng.uniform(*cfg.turn_gap)
        speaker, turn = listener, turn + 1
    return sorted(out, key=lambda u: u.start)

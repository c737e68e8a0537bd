"""Assemble one synthetic conversation: script + speech -> two audio tracks, two motion tracks, labels.

Each participant's motion (relative to their resting face, which is stored beside it) = mouth (own phonemes) +
talking head (own prosody) + smiles/laughter + blinks + listening reactions to the other (rules in
listening.py) + idle motion.
Everything is drawn from one generator seeded by (seed, split, index), so a conversation is a pure
function of those three numbers.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from avatar_forcing.audio.features import log_mel
from avatar_forcing.data.shards import Conversation, Participant
from avatar_forcing.data.synth.config import DialogueConfig, SpeakerStyleConfig, SynthConfig
from avatar_forcing.data.synth.listening import Cues, event, glance, react
from avatar_forcing.data.synth.signals import envelope, frame_times, smooth_noise
from avatar_forcing.data.synth.speech import Utterance, Voice, draw_voices, script
from avatar_forcing.data.synth.talking import (
    blinks,
    laugh_motion,
    prosody,
    smile_curve,
    talking_brows,
    talking_head,
)
from avatar_forcing.data.synth.visemes import MOUTH_COLUMNS, mouth_track, viseme_segments
from avatar_forcing.motion.neutral import clip_relative, rest_of_track
from avatar_forcing.motion.vector import MOTION_DIM, NUM_BLENDSHAPES, clip_to_range, idx

SPLIT_CODES = {"train": 0, "heldout": 1}
SMILE_SQUINT = {
    "cheekSquintLeft": 0.45,
    "cheekSquintRight": 0.45,
    "eyeSquintLeft": 0.25,
    "eyeSquintRight": 0.25,
}
POSE_TRANSLATION = (0.25, 0.25)  # head translation (face widths) per radian of yaw (tx) and pitch (ty)
LOG_SCALE_DRIFT = 0.01  # slow leaning towards / away from the camera
SPEAKING_AVERSION_PROB = 0.4  # speakers often glance away as they start a turn
TAIL_SECONDS = 0.6  # silence after the last utterance
QUIET_SMILE_STREAM = 1  # quiet smiles have their own generator: the rest of a conversation stays as it was
LATE_ANSWER_STREAM = 2  # so do the late answers to a smile
OPEN_SMILE_STREAM = 3  # and how far each person's smiles and laughs part the lips


def open_smile(rng: np.random.Generator, smile: np.ndarray, laugh: np.ndarray,
               cfg: SynthConfig) -> np.ndarray:
    """(T, MOTION_DIM) in real units: how far one person's smiles lift the upper lip and their answers to a
    laugh open the jaw. ``smile`` (T,) is their smile; ``laugh`` (T,) their answers to the partner's laughs
    (Reactions.broad). Each person draws both once: some smile with closed lips (docs/DATA.md, `open
    smile`)."""
    out = np.zeros((len(smile), MOTION_DIM), np.float32)
    lift = rng.uniform(*cfg.style.smile_upper_up)
    for side in ("Left", "Right"):
        out[:, idx("mouthUpperUp" + side)] = lift * smile
    out[:, idx("jawOpen")] = rng.uniform(*cfg.listening.laugh_response_open) * laugh
    return out


def conversation_id(seed: int, split: str, index: int) -> str:
    return f"synth-s{seed}-{split}-{index:06d}"


def _rest_face(rng: np.random.Generator, cfg: SpeakerStyleConfig, side: int) -> np.ndarray:
    rest = np.zeros(MOTION_DIM, np.float32)
    for name, hi in cfg.rest_blendshapes.items():
        rest[idx(name)] = rng.uniform(0, hi)
    for left in [n for n in cfg.rest_blendshapes if n.endswith("Left")]:  # small asymmetries
        rest[idx(left)] = max(
            0.0, rest[idx(left[:-4] + "Right")] + rng.uniform(-cfg.asymmetry, cfg.asymmetry)
        )
    rest[NUM_BLENDSHAPES:] = rng.uniform(-1, 1, 6) * np.asarray(cfg.rest_pose)
    rest[idx("yaw")] += cfg.rest_facing_yaw * (1 if side == 0 else -1)  # facing each other
    return rest


def _activity(t: np.ndarray, utterances: list[Utterance]) -> np.ndarray:
    """0..1, smoothly 1 during the given utterances."""
    a = np.zeros_like(t)
    for u in utterances:
        a = np.maximum(a, envelope(t, u.start - 0.1, u.end, 0.15, 0.3))
    return a


def silences(utterances: list[Utterance], min_seconds: float) -> list[tuple[float, float]]:
    """(start, end) of the stretches of at least min_seconds in which nobody speaks, the first utterance's
    lead-in included."""
    out, quiet_from = [], 0.0
    for u in sorted(utterances, key=lambda u: u.start):
        if u.start - quiet_from >= min_seconds:
            out.append((quiet_from, u.start))
        quiet_from = max(quiet_from, u.end)
    return out


def quiet_smiles(rng: np.random.Generator, utterances: list[Utterance], cfg: DialogueConfig,
                 amplitude: tuple[float, float]) -> list[list[tuple[float, float, float]]]:
    """Per participant, (onset, end, amplitude before the person's expressiveness) of the smiles made in
    silence (DialogueConfig.quiet_smile_*)."""
    out: list[list[tuple[float, float, float]]] = [[], []]
    for start, end in silences(utterances, cfg.quiet_smile_min_silence):
        if rng.random() < cfg.quiet_smile_prob:
            onset = start + rng.uniform(*cfg.quiet_smile_delay)
            hold = rng.uniform(*cfg.quiet_smile_hold)
            out[int(rng.integers(2))].append((onset, min(onset + hold, end), rng.uniform(*amplitude)))
    return out


def generate(
    seed: int,
    split: str,
    index: int,
    cfg: SynthConfig = SynthConfig(),
    keep_audio: bool = True,
    scripted: tuple[list[Voice], list[Utterance]] | None = None,
) -> Conversation:
    """``scripted``: (voices, utterances) written by hand (the demo conversation) instead of drawn."""
    rng = np.random.default_rng([seed, SPLIT_CODES[split], index])
    duration = rng.uniform(*cfg.dialogue.duration)
    if scripted is None:
        voices = draw_voices(rng, split, cfg.voices)
        utterances = script(rng, voices, split, duration, cfg.dialogue, cfg.voices)
    else:
        voices, utterances = scripted

    spf = cfg.sample_rate // cfg.fps  # samples per motion frame
    frames = int(np.ceil((max(u.end for u in utterances) + TAIL_SECONDS) * cfg.fps))
    t = frame_times(frames, cfg.fps)
    audio = np.zeros((2, frames * spf), np.float32)
    for u in utterances:
        s = int(round(u.start * cfg.sample_rate))
        pcm = u.speech.pcm[: audio.shape[1] - s]
        audio[u.speaker, s : s + len(pcm)] += pcm
    np.clip(audio, -1, 1, out=audio)

    styles = [
        {
            "expressiveness": float(rng.uniform(*cfg.style.expressiveness)),
            "mouth_gain": float(rng.uniform(*cfg.talking.mouth_gain)),
            "blink_rate": float(rng.uniform(*cfg.blinks.rate_per_minute)),
        }
        for _ in range(2)
    ]
    rests = [_rest_face(rng, cfg.style, i) for i in range(2)]

    # --- each participant's own behaviour (talking) and the cues the other reacts to ---
    cues = [Cues(), Cues()]
    quiet = quiet_smiles(np.random.default_rng([seed, SPLIT_CODES[split], index, QUIET_SMILE_STREAM]),
                         utterances, cfg.dialogue, cfg.talking.speaking_smile)
    own_head, speaking, smiles, laugh_jaw, brows, own_events = [], [], [], [], [], [[], []]
    for p in range(2):
        mine = [u for u in utterances if u.speaker == p]
        sentences = [u for u in mine if u.kind == "sentence"]
        gain = styles[p]["expressiveness"]
        act = _activity(t, sentences)
        loud, octaves, voiced = prosody(audio[p], frames, spf, cfg.sample_rate, cfg.talking)
        head = talking_head(loud, octaves, voiced, act, cfg.fps, rng, cfg.talking, gain)
        brows.append(talking_brows(loud, octaves, voiced, act, cfg.fps, cfg.talking, gain))
        smile = np.zeros(frames)
        jaw = np.zeros(frames)
        for u in sentences:
            cues[p].phrase_ends.append(round(u.end, 3))
            if rng.random() < cfg.talking.speaking_smile_prob:
                onset = u.start + rng.uniform(0, 0.5) * u.speech.duration
                end = u.end + rng.uniform(0.3, 1.0)
                amp = min(1.0, gain * rng.uniform(*cfg.talking.speaking_smile))
                smile = np.maximum(smile, smile_curve(t, onset, end, amp))
                cues[p].smiles.append((round(onset, 3), round(end, 3), round(amp, 3)))
        for onset, end, amplitude in quiet[p]:
            amp = min(1.0, gain * amplitude)
            smile = np.maximum(smile, smile_curve(t, onset, end, amp))
            cues[p].smiles.append((round(onset, 3), round(end, 3), round(amp, 3)))
        for u in mine:
            if u.kind == "laugh":
                pulses = [u.start + ph.start for ph in u.speech.phonemes if ph.symbol.strip("'") == "h"]
                env, j, pitch = laugh_motion(t, u.start, u.end, pulses, cfg.talking, gain)
                smile = np.maximum(smile, env * rng.uniform(*cfg.talking.laugh_smile))
                jaw = np.maximum(jaw, j)
                head[:, 0] += pitch
                if u.cause_time is None:  # a laugh of one's own (not joining in) is a cue
                    cues[p].laughs.append((round(u.start, 3), round(u.end, 3)))
            elif u.kind == "backchannel":
                cues[p].backchannels.append((round(u.cause_time, 3), round(u.start, 3)))
                own_events[p].append(event("backchannel", u.start, u.cause_time, "phrase_end", text=u.text))
        own_head.append(head)
        speaking.append(act)
        smiles.append(smile)
        laugh_jaw.append(jaw)

    # --- listening reactions, then the full motion vectors ---
    participants, events = [], []
    for p in range(2):
        q = 1 - p
        gain = styles[p]["expressiveness"]
        listening = 1.0 - speaking[p]  # anyone not taking a turn listens (and reacts)
        late_rng = np.random.default_rng([seed, SPLIT_CODES[split], index, LATE_ANSWER_STREAM, p])
        r = react(t, cfg.fps, cues[q], cues[p], listening, own_head[q], rng, late_rng, cfg.listening, gain)
        head = own_head[p] + r.head
        gaze = r.gaze
        for u in [u for u in utterances if u.speaker == p and u.kind == "sentence"]:
            first_of_turn = not any(
                v.turn == u.turn and v.start < u.start and v.speaker == p and v.kind == "sentence"
                for v in utterances
            )
            if first_of_turn and rng.random() < SPEAKING_AVERSION_PROB:
                direction = str(rng.choice(["up", "up-right", "down-left", "left"]))
                glance(t, u.start - 0.1, rng.uniform(0.5, 1.2), direction, rng.uniform(0.3, 0.6), gaze, head)
                r.events.append(
                    event("gaze_shift", u.start - 0.1, u.start - 0.1, "own_turn_start", direction=direction)
                )

        m = np.zeros((frames, MOTION_DIM), np.float32)  # relative to the speaker's rest (motion/neutral.py)
        segs = viseme_segments(
            [
                (u.start + ph.start, u.start + ph.end, ph.symbol)
                for u in utterances
                if u.speaker == p
                for ph in u.speech.phonemes
            ]
        )
        m[:, MOUTH_COLUMNS] += mouth_track(segs, frames, cfg.fps, cfg.talking, styles[p]["mouth_gain"])
        m[:, idx("jawOpen")] += laugh_jaw[p]
        smile = np.maximum(smiles[p], r.smile)
        for side in ("Left", "Right"):
            m[:, idx("mouthSmile" + side)] += smile
        for name, w in SMILE_SQUINT.items():
            m[:, idx(name)] += w * np.maximum(smile, r.broad)
        blink, _ = blinks(frames, cfg.fps, rng, cfg.blinks, styles[p]["blink_rate"])
        m[:, idx("eyeBlinkLeft")] += blink
        m[:, idx("eyeBlinkRight")] += blink
        for ch, v in gaze.items():
            m[:, idx(ch)] += v
        brow = smooth_noise(rng, frames, cfg.fps, cfg.listening.idle_seconds, 1)[:, 0]
        m[:, idx("browInnerUp")] += cfg.listening.idle_brow * np.abs(brow) * gain + brows[p]
        for side in ("Left", "Right"):
            m[:, idx("browOuterUp" + side)] += cfg.talking.brow_outer_follow * brows[p]
            m[:, idx("eyeWide" + side)] += cfg.talking.brow_eye_wide * brows[p]
        m[:, idx("pitch") : idx("roll") + 1] += head
        m[:, idx("tx")] += POSE_TRANSLATION[0] * head[:, 1]
        m[:, idx("ty")] += POSE_TRANSLATION[1] * head[:, 0]
        m[:, idx("log_scale")] += LOG_SCALE_DRIFT * smooth_noise(rng, frames, cfg.fps, 3.0, 1)[:, 0]
        for name, g in cfg.units.gains.items():  # into the units of real people (RealUnitsConfig)
            m[:, idx(name)] *= g
        m += open_smile(np.random.default_rng([seed, SPLIT_CODES[split], index, OPEN_SMILE_STREAM, p]),
                        smile, r.broad, cfg)
        # The one definition of rest (motion/neutral.py), as for a tracked person: e.g. a speaker whose
        # head tilts with their pitch accents rests where it usually is, not at the drawn offset.
        settled = rest_of_track(m)
        m -= settled
        participants.append(
            Participant(
                motion=clip_relative(m),
                features=log_mel(audio[p]).astype(np.float16),
                mask=np.ones(frames, bool),
                rest=clip_to_range((rests[p] + settled)[None])[0],
                audio=audio[p] if keep_audio else None,
            )
        )
        events.append(sorted(own_events[p] + r.events, key=lambda e: e["time"]))

    meta = {
        "source": "synth",
        "seed": seed,
        "index": index,
        "speakers": [
            {**asdict(voices[p]), **{k: round(v, 3) for k, v in styles[p].items()}} for p in range(2)
        ],
        "turns": [
            {
                "speaker": u.speaker,
                "start": round(u.start, 3),
                "end": round(u.end, 3),
                "kind": u.kind,
                "text": u.text,
                "turn": u.turn,
            }
            for u in utterances
        ],
        "events": events,
        "cues": [asdict(c) for c in cues],
    }
    return Conversation(conversation_id(seed, split, index), split, participants, meta, cfg.fps)

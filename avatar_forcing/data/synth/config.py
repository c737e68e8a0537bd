"""Every number of the synthetic conversation corpus, in one place.

Times are in seconds, head angles in radians, blendshape weights in [0, 1]. A range ``(lo, hi)`` means
a value is drawn uniformly from it for each conversation, speaker or event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Range = tuple[float, float]


@dataclass
class VoiceConfig:
    """eSpeak NG voices; the two splits use disjoint voice variants, so voices never cross splits."""

    languages: tuple[str, ...] = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland")
    train_variants: tuple[str, ...] = (
        "m1",
        "m2",
        "m3",
        "m4",
        "f1",
        "f2",
        "f3",
        "klatt",
        "klatt3",
        "Andy",
        "adam",
        "linda",
        "john",
        "steph",
    )
    heldout_variants: tuple[str, ...] = ("m5", "m7", "f4", "f5", "Annie", "david", "paul", "belinda")
    rate: Range = (145.0, 195.0)  # words per minute
    rate_step: float = 5.0  # rates/pitches on a grid so that repeated utterances can be cached
    pitch: Range = (30.0, 70.0)  # eSpeak pitch 0..99
    pitch_step: float = 5.0
    sentence_rate_jitter: float = 10.0  # per-sentence rate variation (words per minute), on the grid


@dataclass
class DialogueConfig:
    """Turn-taking: who says what, when."""

    duration: Range = (45.0, 90.0)  # conversation length
    sentences_per_turn: tuple[int, int] = (1, 3)
    sentence_gap: Range = (0.15, 0.5)  # pause between sentences of one turn
    turn_gap: Range = (0.25, 1.2)  # pause between turns
    overlap_prob: float = 0.15  # the next turn starts before the current one ends
    overlap: Range = (0.1, 0.5)
    backchannel_prob: float = 0.45  # after each phrase end of the speaker (not the last of a turn)
    backchannel_delay: Range = (0.2, 0.7)
    backchannels: tuple[str, ...] = ("mm-hmm", "yeah", "right", "uh-huh", "okay", "I see", "mhm", "sure")
    # A live avatar never says "uh-huh" (its voice is the agent's speech), so a voiced backchannel in the
    # corpus is a cue the session never has: the v11 model nodded on its own "uh-huh" and hardly on the
    # user's phrase end (docs/EVALUATION.md, round 6). Most acknowledgements are silent: a nod, no sound.
    voiced_backchannel_prob: float = 0.1
    laugh_prob: float = 0.2  # a turn ends with laughter
    laugh_texts: tuple[str, ...] = ("ha ha ha", "ha ha", "ha ha ha ha", "heh heh")
    laugh_response_prob: float = 0.35  # the listener laughs along (audibly) as well as smiling
    start_silence: Range = (0.3, 1.0)
    lull_prob: float = 0.12  # after a turn nobody speaks for a while: the listener's face settles at rest
    lull: Range = (2.5, 6.0)
    # In a silence (a lull, the start) one of the two often smiles without a word: amused, remembering the
    # joke. A smile the other mirrors with no voice on either side; without it every smile of the corpus
    # came with the smiler's speech or laughter, and a real user who smiled in silence got no answer (d18
    # of ../shared/real/videos: smile 0.6-0.7 for 1.5 s, answered 0.00; issue 16). Measured, it did not
    # change the answer beyond the seed spread (docs/EVALUATION.md, "Real users, round 5").
    quiet_smile_prob: float = 0.7  # per silence of at least quiet_smile_min_silence
    quiet_smile_min_silence: float = 2.0
    quiet_smile_delay: Range = (0.1, 0.8)  # from the start of the silence
    quiet_smile_hold: Range = (1.0, 2.5)


@dataclass
class TalkingConfig:
    """Motion of a speaking face."""

    coarticulation_tau: float = 0.045  # how far a phoneme's mouth shape bleeds into its neighbours
    closure_dominance: float = 4.0  # lip closures (p/b/m) and f/v win over their neighbours
    rest_weight: float = 0.1  # constant pull towards the closed mouth, wins away from speech
    mouth_gain: Range = (0.8, 1.25)  # per speaker articulation strength
    head_energy_gain: float = 0.06  # radians of nod per unit of (high-passed) loudness
    head_pitch_gain: float = 0.05  # radians of head raise per octave of f0 above the speaker's mean
    head_drift: float = 0.05  # radians of slow wandering yaw/roll while speaking
    head_drift_seconds: float = 1.5
    speaking_smile_prob: float = 0.35  # per sentence
    # per sentence; real talkers differ a lot: their smile p95 spans 0.0-0.84 over the people of
    # ../shared/real/videos (median 0.37, real_faces.json), and a broad smile while talking must be
    # in the corpus for a listener to answer it
    speaking_smile: Range = (0.15, 0.85)
    laugh_smile: Range = (0.75, 0.95)
    laugh_jaw: float = 0.1  # on top of the "ha" visemes, which already open the jaw
    laugh_bob: float = 0.06  # radians of head bob while laughing
    laugh_tilt_back: float = 0.08
    f0_range: Range = (70.0, 400.0)  # Hz searched by the pitch tracker
    brow_f0_gain: float = 0.8  # brow raise per octave of f0 above the speaker's median
    brow_emphasis_gain: float = 2.0  # and per unit of (high-passed) loudness
    brow_seconds: float = 0.12  # brows move smoothly
    brow_outer_follow: float = 0.9  # the outer brows rise with the inner ones ...
    brow_eye_wide: float = 0.5  # ... and the eyes open a little wider


@dataclass
class BlinkConfig:
    rate_per_minute: Range = (14.0, 21.0)  # per speaker
    duration: Range = (0.1, 0.15)
    min_interval: float = 0.8


@dataclass
class ListeningConfig:
    """The documented reaction rules of a listener (see docs/DATA.md)."""

    nod_prob: float = 0.9  # per phrase end of the speaker
    nod_delay: Range = (0.2, 0.6)
    nod_amplitude: Range = (0.1, 0.18)  # radians, head down
    nod_duration: Range = (0.45, 0.7)
    double_nod_prob: float = 0.3
    smile_mirror_prob: float = 0.9  # per speaker smile
    smile_lag: Range = (0.3, 0.7)
    # Some answers may come late (the listener was looking away, or thinking): without them a listener who
    # has not answered by 0.7 s never answers in the corpus, and a model that missed the moment waits
    # until the smile's start leaves its context, about 2 s. The "late_answers" preset draws a quarter of
    # them late; measured, it did not make the answers timelier (docs/EVALUATION.md, round 10), so the
    # default corpus (the shipped model's) has none.
    smile_late_prob: float = 0.0
    smile_late_lag: Range = (0.7, 1.5)
    smile_mirror_gain: Range = (0.8, 1.1)  # listener smile relative to the speaker's
    smile_hold: Range = (0.8, 2.0)
    laugh_response_lag: Range = (0.3, 0.7)
    laugh_response_smile: Range = (0.7, 0.95)
    laugh_response_hold: Range = (1.0, 2.5)
    # A listener answering a laugh opens the mouth, with or without a "ha ha" of their own (whose jaw adds
    # to it): jawOpen (real units) per unit of the answer, drawn once per person. The real people of
    # ../shared/real/videos whose smile passes 0.5 open the jaw by 0.19 (d0) and 0.67 (d18, whose laugh
    # makes no sound); 0.5 is where the rig stops the jaw (RigConfig.limits).
    laugh_response_open: Range = (0.15, 0.35)
    mimicry_delay: float = 0.6  # slow head mimicry: delayed, low-passed copy of the speaker's head
    mimicry_seconds: float = 0.8  # low-pass time constant
    mimicry_gain: Range = (0.5, 0.8)
    gaze_shift_rate_per_minute: Range = (6.0, 12.0)
    gaze_amplitude: Range = (0.3, 0.7)
    gaze_hold: Range = (0.4, 1.5)
    gaze_return_delay: Range = (0.2, 0.5)  # after the partner starts a turn, look back at them
    idle_amplitude: float = 0.015  # radians of head micro-motion
    idle_seconds: float = 1.0
    idle_brow: float = 0.05


@dataclass
class SpeakerStyleConfig:
    """How two speakers' resting faces and habits differ."""

    rest_pose: tuple[float, ...] = (0.06, 0.12, 0.04, 0.05, 0.05, 0.05)  # +/- per pose channel
    rest_facing_yaw: float = 0.08  # the two sit facing each other: opposite yaw offsets
    rest_blendshapes: dict[str, float] = field(
        default_factory=lambda: {
            "mouthSmileLeft": 0.15,
            "mouthSmileRight": 0.15,
            "browInnerUp": 0.1,
            "eyeSquintLeft": 0.12,
            "eyeSquintRight": 0.12,
            "mouthClose": 0.05,
            "browDownLeft": 0.08,
            "browDownRight": 0.08,
            "mouthPressLeft": 0.1,
            "mouthPressRight": 0.1,
            "eyeWideLeft": 0.05,
            "eyeWideRight": 0.05,
        }
    )
    asymmetry: float = 0.03  # left/right rest differences
    # How far a smile lifts the upper lip (mouthUpperUp per unit of mouthSmile, real units), drawn per
    # person: of the six real people whose smile passes 0.5 (../shared/real/videos), three lift it by
    # 0.24-0.43 at those smiles (d0, d10, d18: teeth show) and two not at all (d9, d14: closed lips).
    smile_upper_up: Range = (0.0, 0.6)
    expressiveness: Range = (0.75, 1.25)  # scales every reaction and gesture of this speaker


@dataclass
class RealUnitsConfig:
    """Per-channel gains that put the corpus in the units MediaPipe reads on real people: the pooled 95th
    percentile of relative motion on the real talking people of ../shared/real/videos
    (docs/benchmarks/real_faces.json, all nine videos, never one) over the corpus's own 95th percentile while
    speaking at gain 1. Fitted by ``scripts/fit_synth_units.py``; a channel missing here keeps gain 1.
    Channels the tracker never reads on real faces (cheekSquint) get 0."""

    gains: dict[str, float] = field(default_factory=lambda: dict(REAL_UNIT_GAINS))


# Written by scripts/fit_synth_units.py (see RealUnitsConfig).
REAL_UNIT_GAINS: dict[str, float] = {
    "jawOpen": 1.32, "mouthFunnel": 0.57, "mouthPucker": 1.98, "mouthClose": 0.1,
    "mouthStretchLeft": 0.24, "mouthStretchRight": 0.24, "mouthPressLeft": 0.31, "mouthPressRight": 0.31,
    "mouthRollLower": 0.18, "mouthUpperUpLeft": 2.9, "mouthUpperUpRight": 2.9,
    "mouthLowerDownLeft": 0.85, "mouthLowerDownRight": 0.85, "eyeSquintLeft": 1.81, "eyeSquintRight": 1.81,
    "eyeWideLeft": 0.68, "eyeWideRight": 0.68, "browInnerUp": 0.98, "browOuterUpLeft": 1.11,
    "browOuterUpRight": 1.11, "cheekSquintLeft": 0.0, "cheekSquintRight": 0.0,
    "pitch": 1.54, "yaw": 0.64, "roll": 1.08,
}


@dataclass
class SynthConfig:
    fps: int = 25
    sample_rate: int = 16000
    heldout_fraction: float = 0.1  # of conversations (held-out ones use held-out voices and sentences)
    conversations_per_shard: int = 16
    store_audio: str = "heldout"  # raw 16 kHz audio in the shards: "all", "heldout" or "none"
    voices: VoiceConfig = field(default_factory=VoiceConfig)
    dialogue: DialogueConfig = field(default_factory=DialogueConfig)
    talking: TalkingConfig = field(default_factory=TalkingConfig)
    blinks: BlinkConfig = field(default_factory=BlinkConfig)
    listening: ListeningConfig = field(default_factory=ListeningConfig)
    style: SpeakerStyleConfig = field(default_factory=SpeakerStyleConfig)
    units: RealUnitsConfig = field(default_factory=RealUnitsConfig)


PRESETS: dict[str, SynthConfig] = {
    "default": SynthConfig(),
    # a quarter of the mirrored smiles answered late (round 10's v16 corpus, runs/data_v16)
    "late_answers": SynthConfig(listening=ListeningConfig(smile_late_prob=0.25)),
    # three times as many lulls (after 35 % of turns): silences long enough to settle at rest (round 11)
    "lulls": SynthConfig(dialogue=DialogueConfig(lull_prob=0.35)),
    # short conversations for tests and quick looks
    "tiny": SynthConfig(dialogue=DialogueConfig(duration=(8.0, 12.0)), conversations_per_shard=2),
}

"""The synthetic conversation corpus: determinism, splits, and that labelled reactions are in the motion."""

import dataclasses

import numpy as np
import pytest

from avatar_forcing.data.synth import PRESETS, generate_fresh, plan_corpus, text_bank
from avatar_forcing.data.synth.conversation import generate
from avatar_forcing.data.synth.visemes import viseme_of
from avatar_forcing.motion.neutral import RELATIVE_HIGH, RELATIVE_LOW, rest_of_track
from avatar_forcing.motion.vector import idx

CFG = PRESETS["tiny"]


@pytest.fixture(scope="module")
def convs():
    return [generate(7, "train", i, PRESETS["default"]) for i in range(2)]


def test_deterministic_per_seed():
    # fresh processes: eSpeak's output depends on what the process spoke before (see generate_fresh)
    a, b = generate_fresh(3, "train", 1, CFG), generate_fresh(3, "train", 1, CFG)
    c = generate_fresh(4, "train", 1, CFG)
    for p in range(2):
        np.testing.assert_array_equal(a.participants[p].motion, b.participants[p].motion)
        np.testing.assert_array_equal(a.participants[p].audio, b.participants[p].audio)
    assert a.meta == b.meta
    assert a.frames != c.frames or not np.array_equal(a.participants[0].motion, c.participants[0].motion)


def test_splits_are_disjoint():
    train, held = set(text_bank.sentences("train")), set(text_bank.sentences("heldout"))
    assert train and held and not train & held
    v = PRESETS["default"].voices
    assert not set(v.train_variants) & set(v.heldout_variants)
    conv = generate(0, "heldout", 0, CFG)
    for s in conv.meta["speakers"]:
        assert s["name"].split("+")[1] in v.heldout_variants
    for u in conv.meta["turns"]:
        if u["kind"] == "sentence":
            assert u["text"] in held
    assert plan_corpus(0.01, 0, CFG)[-1][0] == "heldout"


def test_motion_is_in_range_and_labels_are_well_formed(convs):
    for conv in convs:
        conv.check()
        for p, part in enumerate(conv.participants):
            assert (part.motion >= RELATIVE_LOW).all() and (part.motion <= RELATIVE_HIGH).all()
            assert np.abs(rest_of_track(part.motion)).max() < 1e-5  # relative to its rest, as tracked
            for e in conv.meta["events"][p]:
                assert e["type"] in {"nod", "smile_mirror", "laugh_response", "gaze_shift", "backchannel"}
                assert e["cause_time"] <= e["time"] + 1e-6
                if e["type"] == "nod" and e["cause"] == "phrase_end":
                    assert 0.0 <= e["time"] - e["cause_time"] <= 0.75


def test_nods_move_the_listeners_head(convs):
    hits = total = 0
    for conv in convs:
        for p in range(2):
            pitch = conv.participants[p].motion[:, idx("pitch")]
            for e in conv.meta["events"][p]:
                if e["type"] != "nod":
                    continue
                t = int(e["time"] * conv.fps)
                total += 1
                hits += pitch[t : t + conv.fps].max() - pitch[max(t - 1, 0)] > 0.5 * e["amplitude"]
    assert total >= 10 and hits / total > 0.9


def test_mirrored_smiles_raise_the_smile(convs):
    hits = total = 0
    for conv in convs:
        for p in range(2):
            m = conv.participants[p].motion
            smile = 0.5 * (m[:, idx("mouthSmileLeft")] + m[:, idx("mouthSmileRight")])
            for e in conv.meta["events"][p]:
                if e["type"] in ("smile_mirror", "laugh_response"):
                    t = int(e["time"] * conv.fps)
                    total += 1
                    hits += smile[t + 8 : t + 25].mean() - smile[max(t - 2, 0)] > 0.4 * e["amplitude"]
    assert total >= 2 and hits / total > 0.8


def test_mouth_follows_own_speech(convs):
    for conv in convs:
        for part in conv.participants:
            energy = np.abs(part.audio).reshape(conv.frames, -1).mean(1)
            assert np.corrcoef(energy, part.motion[:, idx("jawOpen")])[0, 1] > 0.4


def test_visemes():
    assert viseme_of("m") == "PP" and viseme_of("'A@") == "AA" and viseme_of("aI") == ("AA", "I")
    assert viseme_of("_:") == "rest"


def test_silences_and_the_smiles_made_in_them():
    from types import SimpleNamespace

    from avatar_forcing.data.synth.conversation import quiet_smiles, silences

    said = [SimpleNamespace(start=s, end=e) for s, e in ((1.0, 2.0), (2.5, 3.0), (6.0, 7.0), (7.5, 12.0))]
    assert silences(said, 2.0) == [(3.0, 6.0)]
    assert silences(said, 0.5) == [(0.0, 1.0), (2.0, 2.5), (3.0, 6.0), (7.0, 7.5)]
    dialogue = dataclasses.replace(PRESETS["default"].dialogue, quiet_smile_prob=1.0)
    smiles = quiet_smiles(np.random.default_rng(0), said, dialogue, (0.3, 0.6))
    (onset, end, amplitude), = smiles[0] + smiles[1]  # one silence long enough, one smile in it
    assert 3.0 < onset < end <= 6.0 and 0.3 <= amplitude <= 0.6


def test_a_smile_in_silence_is_mirrored(convs):
    """Some mirrored smiles answer a smile made while nobody speaks, and the listener's smile is there."""
    answered = 0
    for conv in convs:
        spans = [(u["start"], u["end"]) for u in conv.meta["turns"]]
        for p in range(2):
            m = conv.participants[p].motion
            smile = 0.5 * (m[:, idx("mouthSmileLeft")] + m[:, idx("mouthSmileRight")])
            for e in conv.meta["events"][p]:
                quiet = not any(s - 0.2 <= e["cause_time"] <= end for s, end in spans)
                if e["type"] == "smile_mirror" and quiet:
                    t = int(e["time"] * conv.fps)
                    answered += smile[t + 8 : t + 25].mean() > 0.8 * e["amplitude"]
    assert answered >= 1


def test_silent_acknowledgements_nod_without_a_sound(convs):
    """Most backchannels are a nod only: the listener's own track is silent there, and a nod starts there."""
    silent = voiced = 0
    for conv in convs:
        sr_per_frame = len(conv.participants[0].audio) // conv.frames
        for p in range(2):
            part, own = conv.participants[p], conv.meta["events"][p]
            spoken = [(u["start"], u["end"]) for u in conv.meta["turns"] if u["speaker"] == p and u["text"]]
            nods = [e["time"] for e in own if e["type"] == "nod"]
            for e in own:
                if e["type"] != "backchannel":
                    continue
                assert any(abs(n - e["time"]) < 1e-3 for n in nods)  # the acknowledgement is a nod
                if e["text"]:
                    voiced += 1
                    continue
                silent += 1
                if any(s - 0.1 <= e["time"] <= end + 0.3 for s, end in spoken):
                    continue  # the listener's own speech nearby
                t = int(e["time"] * conv.fps) * sr_per_frame
                assert np.abs(part.audio[t : t + 5 * sr_per_frame]).max() == 0.0
    assert silent > 2 * voiced and silent >= 5


def test_late_answers_move_only_the_mirrored_smiles():
    """A late answer changes when a smile is mirrored and nothing else: its own random stream."""
    def with_late(prob: float):
        listening = dataclasses.replace(CFG.listening, smile_late_prob=prob)
        return generate_fresh(5, "train", 0, dataclasses.replace(CFG, listening=listening))

    prompt, late = with_late(0.0), with_late(1.0)
    smile_like = {idx(n) for n in ("mouthSmileLeft", "mouthSmileRight", "eyeSquintLeft", "eyeSquintRight",
                                   "mouthUpperUpLeft", "mouthUpperUpRight")}  # a smile lifts the lip
    others = [i for i in range(prompt.participants[0].motion.shape[1]) if i not in smile_like]
    lags = {}
    for conv, name in ((prompt, "prompt"), (late, "late")):
        lags[name] = [e["time"] - e["cause_time"] for p in range(2) for e in conv.meta["events"][p]
                      if e["type"] == "smile_mirror"]
    assert lags["prompt"] and len(lags["prompt"]) == len(lags["late"])
    lo, hi = CFG.listening.smile_lag
    assert all(lo - 1e-3 <= x <= hi + 1e-3 for x in lags["prompt"])
    late_lo, late_hi = CFG.listening.smile_late_lag
    assert any(late_lo - 1e-3 <= x <= late_hi + 1e-3 and x > hi for x in lags["late"])
    for a, b in zip(prompt.participants, late.participants, strict=True):
        np.testing.assert_array_equal(a.motion[:, others], b.motion[:, others])


def test_open_smiles_lift_the_upper_lip_with_the_smile_and_open_the_mouth_of_a_laugh_answer():
    """How far smiles part the lips comes from its own random stream: it moves the upper lip (both sides
    alike, more where the smile is broader) and the jaw of an answer to a laugh, and nothing else."""
    def with_open(lift: float, jaw: float):
        style = dataclasses.replace(CFG.style, smile_upper_up=(lift, lift))
        listening = dataclasses.replace(CFG.listening, laugh_response_open=(jaw, jaw))
        return generate_fresh(2, "train", 0, dataclasses.replace(CFG, style=style, listening=listening))

    closed, open_ = with_open(0.0, 0.0), with_open(0.5, 0.3)
    lips = [idx("mouthUpperUpLeft"), idx("mouthUpperUpRight")]
    jaw = idx("jawOpen")
    answers = [e for p in range(2) for e in open_.meta["events"][p] if e["type"] == "laugh_response"]
    assert answers  # this conversation has a laugh answered
    for p, (a, b) in enumerate(zip(closed.participants, open_.participants, strict=True)):
        others = [i for i in range(a.motion.shape[1]) if i not in lips + [jaw]]
        np.testing.assert_array_equal(a.motion[:, others], b.motion[:, others])
        lift = b.motion[:, lips] - a.motion[:, lips]
        np.testing.assert_allclose(lift[:, 0], lift[:, 1], atol=1e-6)
        smile = b.motion[:, idx("mouthSmileLeft")]
        broad = smile > np.percentile(smile, 95)
        assert lift[broad, 0].mean() > lift[~broad, 0].mean() + 0.1
        opened = b.motion[:, jaw] - a.motion[:, jaw]
        mine = [e for e in open_.meta["events"][p] if e["type"] == "laugh_response"]
        for e in mine:  # the mouth opens during the answer, by up to the drawn 0.3 per unit of it
            k = int(e["time"] * open_.fps)
            assert 0.05 < opened[k : k + open_.fps].max() <= 0.3 + 1e-6
        if not mine:
            assert np.abs(opened).max() < 1e-6

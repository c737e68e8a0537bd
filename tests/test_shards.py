"""Shard format: round trip, atomic writes, index statistics, version errors."""

import json

import numpy as np
import pytest

from avatar_forcing.data import shards
from avatar_forcing.data.shards import Conversation, Corpus, Participant
from avatar_forcing.errors import InputError


def fake_conversation(cid: str, frames: int = 30, split: str = "train", seed: int = 0, audio: bool = True):
    rng = np.random.default_rng(seed)
    parts = [
        Participant(
            rng.uniform(0, 1, (frames, 58)).astype(np.float32),
            rng.uniform(-1, 1, (frames, 320)).astype(np.float32),
            np.arange(frames) % 7 != 0,
            rng.uniform(0, 0.1, 58).astype(np.float32),
            rng.uniform(-0.5, 0.5, frames * 640).astype(np.float32) if audio else None,
        )
        for _ in range(2)
    ]
    return Conversation(
        cid, split, parts, {"events": [[{"type": "nod", "time": 0.5}], []], "speakers": [{}, {}]}
    )


def test_round_trip(tmp_path):
    convs = [fake_conversation("a", 30, seed=1), fake_conversation("b", 45, seed=2)]
    shards.write_shard(tmp_path, "train-00000", convs)
    shards.write_shard(tmp_path, "heldout-00000", [fake_conversation("c", 20, "heldout", 3, audio=False)])
    index = shards.write_index(tmp_path, {"note": "test"})
    assert index["splits"]["train"]["conversations"] == 2 and index["splits"]["heldout"]["conversations"] == 1
    corpus = Corpus(tmp_path)
    b = corpus.load("b")
    for p in range(2):
        np.testing.assert_array_equal(b.participants[p].motion, convs[1].participants[p].motion)
        np.testing.assert_array_equal(b.participants[p].mask, convs[1].participants[p].mask)
        np.testing.assert_allclose(b.participants[p].features, convs[1].participants[p].features, atol=1e-3)
        np.testing.assert_allclose(b.participants[p].audio, convs[1].participants[p].audio, atol=1e-4)
    assert b.meta["events"][0][0]["type"] == "nod"
    assert corpus.load("c").participants[0].audio is None
    # stats over the train split's observed frames only
    train = np.concatenate([p.motion[p.mask] for c in convs for p in c.participants])
    np.testing.assert_allclose(corpus.stats.mean, train.mean(0), atol=1e-5)
    np.testing.assert_allclose(corpus.stats.std, train.std(0), atol=1e-4)


def test_writes_are_atomic(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError):
        shards.write_shard(tmp_path, "train-00000", [fake_conversation("a")])
    assert list((tmp_path / shards.SHARD_DIR).iterdir()) == []  # neither shard nor temp file left


def test_other_format_version_is_a_clear_error(tmp_path):
    shards.write_shard(tmp_path, "train-00000", [fake_conversation("a")])
    shards.write_index(tmp_path)
    index = json.loads((tmp_path / shards.INDEX).read_text())
    index["format_version"] = shards.FORMAT_VERSION + 1
    (tmp_path / shards.INDEX).write_text(json.dumps(index))
    with pytest.raises(InputError, match="format version"):
        Corpus(tmp_path)
    with pytest.raises(InputError, match="not a conversation corpus"):
        Corpus(tmp_path / "nothing")


def test_inconsistent_conversation_is_rejected(tmp_path):
    conv = fake_conversation("a")
    conv.participants[1].features = conv.participants[1].features[:10]
    with pytest.raises(InputError, match="features"):
        shards.write_shard(tmp_path, "train-00000", [conv])

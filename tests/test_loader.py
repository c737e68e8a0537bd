"""Loader: sample shapes and alignment, rank/worker split without duplicates, exact resume."""

import numpy as np
import pytest
import torch

from avatar_forcing.data import shards
from avatar_forcing.data.loader import (
    HeldoutWindows,
    LoaderConfig,
    TrainLoader,
    TrainStream,
    heldout_conversations,
    make_sample,
)
from avatar_forcing.motion.smile_onsets import SMILE_CHANNELS as SMILE
from avatar_forcing.motion.vector import MotionStats
from tests.test_shards import fake_conversation

W = 10


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    convs = [fake_conversation(f"c{i}", 25 + 7 * i, seed=i) for i in range(8)]
    for k in range(4):
        shards.write_shard(root, f"train-{k:05d}", convs[2 * k : 2 * k + 2])
    shards.write_shard(root, "heldout-00000", [fake_conversation("h0", 33, "heldout", 99)])
    shards.write_index(root)
    return root, {c.id: c for c in convs}


def test_sample_alignment():
    conv = fake_conversation("x", 40, seed=5)
    s = make_sample(conv, 1, 12, W, MotionStats())
    me, you = conv.participants[1], conv.participants[0]
    np.testing.assert_array_equal(s["motion"], me.motion[12:22])
    np.testing.assert_array_equal(s["avatar_audio"], me.features[12:22])
    np.testing.assert_array_equal(s["user_audio"], you.features[12:22])
    np.testing.assert_array_equal(s["user_motion"], you.motion[12:22])
    assert not s["reference"].any()  # the rest: zero in relative motion
    np.testing.assert_array_equal(s["motion_mask"], me.mask[12:22])
    tail = make_sample(conv, 0, 35, W, MotionStats())  # past the end: zero-padded and masked
    assert tail["motion_mask"][5:].sum() == 0 and np.all(tail["motion"][5:] == 0)


def test_batches_have_the_documented_shapes(corpus):
    root, _ = corpus
    batch = next(iter(TrainLoader(root, LoaderConfig(window=W, batch_size=4))))
    shapes = {k: tuple(v.shape) for k, v in batch.items()}
    assert shapes == {
        "motion": (4, W, 58),
        "avatar_audio": (4, W, 320),
        "user_audio": (4, W, 320),
        "user_motion": (4, W, 58),
        "reference": (4, 58),
        "motion_mask": (4, W),
        "user_mask": (4, W),
        "at_start": (4,),
    }
    assert batch["motion"].dtype == torch.float32 and batch["motion_mask"].dtype == torch.bool


def test_ranks_and_workers_split_without_duplicates(corpus):
    root, convs = corpus
    cfg = LoaderConfig(window=W, pool=3)
    seen = []
    for rank in range(2):
        stream = TrainStream(root, cfg=cfg, rank=rank, world_size=2)
        for worker in range(2):
            plans = stream.plans(rank * 2 + worker, 4)
            n = sum(2 * max(1, round(c.frames / W)) for c in convs.values() if True)  # epoch upper bound
            ids = set()
            for _ in range(n):
                p = next(plans)
                if p.ref.id in {i for other in seen for i in other}:
                    break
                ids.add(p.ref.id)
            seen.append(ids)
    flat = [i for s in seen for i in s]
    assert len(flat) == len(set(flat)) == len(convs)  # each conversation on exactly one consumer per epoch


@pytest.mark.parametrize("workers", [0, 2])
def test_deterministic_and_exact_resume(corpus, workers):
    root, _ = corpus
    cfg = LoaderConfig(window=W, batch_size=3, seed=4)
    full = TrainLoader(root, cfg, num_workers=workers)
    ref = [b for _, b in zip(range(8), full, strict=False)]
    first = TrainLoader(root, cfg, num_workers=workers)
    for _ in zip(range(5), first, strict=False):
        pass
    resumed = TrainLoader(root, cfg, num_workers=workers)
    resumed.load_state_dict(first.state_dict())
    rest = [b for _, b in zip(range(3), resumed, strict=False)]
    for a, b in zip(ref[5:], rest, strict=True):
        for k in a:
            assert torch.equal(a[k], b[k]), k
    assert not torch.equal(ref[0]["motion"], ref[1]["motion"])


def test_heldout_views(corpus):
    root, _ = corpus
    ds = HeldoutWindows(root, window=W)
    assert len(ds) == 2 * 3  # 33 frames -> starts 0, 10, 20, both roles
    assert ds[0]["motion"].shape == (W, 58)
    convs = heldout_conversations(root)
    assert [c.id for c in convs] == ["h0"] and convs[0].meta["events"][0][0]["type"] == "nod"


def test_onset_fraction_places_windows_where_the_users_smile_begins(tmp_path):
    frames, onset = 300, 180
    convs = [fake_conversation(f"s{i}", frames, seed=i) for i in range(2)]
    for conv in convs:
        for p in conv.participants:
            p.motion[:, SMILE] = 0.0
        convs[0].participants[0].motion[onset:, SMILE] = 0.5  # participant 0 smiles: avatar 1 sees it
    shards.write_shard(tmp_path, "train-00000", convs)
    shards.write_index(tmp_path)
    lo, hi = LoaderConfig.onset_lead
    placed = TrainStream(tmp_path, cfg=LoaderConfig(onset_fraction=1.0))
    assert placed.user_smile_onsets(placed.refs[0], 1) == [onset]
    assert placed.user_smile_onsets(placed.refs[0], 0) == []
    plans = [p for _, p in zip(range(40), placed.plans(0, 1), strict=False)]
    answering = [p.start for p in plans if p.ref.id == "s0" and p.avatar == 1]
    assert answering and all(lo <= onset - s <= hi for s in answering)
    others = [p.start for p in plans if not (p.ref.id == "s0" and p.avatar == 1)]
    assert len(set(others)) > 1  # no smile to place them by: uniform windows
    uniform = [p.start for _, p in zip(range(40), TrainStream(tmp_path).plans(0, 1), strict=False)]
    assert sum(lo <= onset - s <= hi for s in uniform) < len(answering)


def test_start_fraction_places_windows_at_the_conversation_start_and_flags_them(tmp_path):
    convs = [fake_conversation(f"s{i}", 300, seed=i) for i in range(2)]
    shards.write_shard(tmp_path, "train-00000", convs)
    shards.write_index(tmp_path)
    starts = [p.start for _, p in zip(range(40), TrainStream(tmp_path, cfg=LoaderConfig(start_fraction=1.0))
                                                 .plans(0, 1), strict=False)]
    assert starts == [0] * 40
    uniform = [p.start for _, p in zip(range(40), TrainStream(tmp_path).plans(0, 1), strict=False)]
    assert uniform.count(0) < 3
    stream = iter(TrainStream(tmp_path, cfg=LoaderConfig(start_fraction=1.0, batch_size=2, window=W)))
    assert bool(next(stream)["at_start"].all())
    uniform_batch = next(iter(TrainStream(tmp_path, cfg=LoaderConfig(batch_size=8, window=W))))
    assert not bool(uniform_batch["at_start"].all())

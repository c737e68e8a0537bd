"""The long-session part of `bench stream`, on a small model: marks, paired block times, constant buffers."""

from __future__ import annotations

import torch

from avatar_forcing.eval.bench_stream import BenchConfig, bench_long
from avatar_forcing.model.config import model_preset
from avatar_forcing.model.dfot import DFoT
from avatar_forcing.motion.vector import MotionStats


def test_long_session_marks_are_paired_and_buffers_stay_constant(tmp_path):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = DFoT(model_preset("tiny", width=32, depth=1, heads=2, cond_dim=16, time_embed_dim=32)).eval()
    bc = BenchConfig(long_minutes=(1, 2), long_nfe=1, long_paired_blocks=4, plot=str(tmp_path / "long.png"))
    res = bench_long(bc, model, MotionStats())
    assert set(res["marks"]) == {1, 2}
    assert [c["minute"] for c in res["per_minute"]] == [1, 2]
    for mark in res["marks"].values():
        assert 0.2 < mark["paired_ratio"] < 5.0  # the same model on the same machine: near 1
        assert mark["rss_mb"] > 0
    assert res["marks"][1]["buffers"] == res["marks"][2]["buffers"]  # the caches do not grow
    assert set(res["drift"]) == {"rss_pct", "block_ms_pct", "block_ms_unpaired_pct"}
    assert (tmp_path / "long.png").stat().st_size > 0

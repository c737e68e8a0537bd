"""The INFP*-like bidirectional baseline: window bookkeeping, bidirectionality, determinism."""

import numpy as np
import torch

from avatar_forcing.model.config import SamplerConfig, model_preset
from avatar_forcing.model.dfot import DFoT
from avatar_forcing.stream.baseline import BaselineConfig, BidirectionalSampler


def small_model() -> DFoT:
    torch.manual_seed(0)
    model = DFoT(model_preset("tiny", width=32, depth=2, heads=2, cond_dim=16, cond_heads=2,
                              time_embed_dim=32)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def conditions(frames: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return tuple(rng.normal(size=(frames, dim)).astype(np.float32) for dim in (320, 320, 58))


def test_windows_cover_the_sequence_deterministically():
    torch.set_num_threads(1)
    sampler = BidirectionalSampler(small_model(), BaselineConfig(window=15, context=5), SamplerConfig(nfe=2))
    conds = conditions(40)
    a = sampler.sample(*conds, np.zeros(58, np.float32), seed=1)
    b = sampler.sample(*conds, np.zeros(58, np.float32), seed=1)
    assert a.shape == (40, 58) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)


def test_window_is_bidirectional():
    """Changing the last frame's conditions changes the first frame's motion (unlike the causal model,
    where the first frame only sees l frames ahead)."""
    torch.set_num_threads(1)
    sampler = BidirectionalSampler(small_model(), BaselineConfig(window=15, context=0), SamplerConfig(nfe=2))
    conds = conditions(15)
    changed = tuple(c.copy() for c in conds)
    changed[0][-1] += 5.0
    a = sampler.sample(*conds, np.zeros(58, np.float32))
    b = sampler.sample(*changed, np.zeros(58, np.float32))
    assert np.abs(a[0] - b[0]).max() > 1e-4

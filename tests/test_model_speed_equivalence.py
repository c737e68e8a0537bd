"""The optimized inference path (cached transposed weights, GELU as a sigmoid, complex RoPE, per-block
preparation, padded key/value buffers) against the plain training path, numerically."""

import torch
import torch.nn.functional as F

from avatar_forcing.model.config import SamplerConfig
from avatar_forcing.model.dfot import gelu_tanh
from avatar_forcing.model.linear import Linear
from avatar_forcing.model.masks import cross_attention_mask, self_attention_mask
from avatar_forcing.model.rope import apply_rope, rope_angles
from avatar_forcing.model.sampler import BRANCHES, guidance_drops
from avatar_forcing.model.streaming import StreamingGenerator
from tests.model_helpers import inputs, micro_model


def test_linear_fast_path_follows_weight_changes():
    torch.manual_seed(0)
    layer, x = Linear(8, 5), torch.randn(2, 3, 8)
    with torch.no_grad():
        assert torch.allclose(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-6)
        layer.weight.mul_(2)  # in place: optimizer step, EMA, load_state_dict
        assert torch.allclose(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-6)
        layer.weight = torch.nn.Parameter(torch.randn(5, 8))  # a new tensor
        assert torch.allclose(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-6)
    out = layer(x)  # autograd on: the plain path, with gradients
    out.sum().backward()
    assert layer.weight.grad is not None and "_weight_t" not in layer.state_dict()


def test_gelu_and_rope_forms():
    x = torch.linspace(-8, 8, 1001)
    with torch.no_grad():
        assert (gelu_tanh(x) - F.gelu(x, approximate="tanh")).abs().max() < 1e-6
    q = torch.randn(2, 3, 7, 8)
    positions = torch.tensor([0, 1, 5, 40, 41, 1000, 123456])
    angles = positions.double()[:, None] / 10000.0 ** (torch.arange(0, 8, 2).double() / 8)
    cos, sin = angles.cos().float(), angles.sin().float()
    even, odd = q[..., 0::2], q[..., 1::2]
    expected = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)
    assert (apply_rope(q, rope_angles(positions, 8, 10000.0)) - expected).abs().max() < 1e-6


def test_inference_forward_equals_training_forward():
    model = micro_model()
    data = inputs(model, 3, 50)
    x, t = torch.randn(3, 50, 6), torch.rand(3, 50)
    args = (x, t, data["avatar_audio"], data["user_audio"], data["user_motion"], data["reference"])
    drops = (torch.tensor([True, False, True]), torch.tensor([True, True, False]))
    train = model(*args, *drops)  # autograd on: F.linear, F.gelu
    with torch.inference_mode():
        fast = model(*args, *drops)
    assert (train.detach() - fast).abs().max() < 1e-5


def plain_pass(model, gen: StreamingGenerator, x, t, conds) -> torch.Tensor:
    """The first velocity pass of the next block, recomputed on the plain path from the generator's cache:
    autograd on, boolean masks, keys concatenated and unpadded, absolute positions, time embedded per pass."""
    m = model.cfg
    n_ctx, length = m.context, x.shape[1]
    start = gen.next_frame - n_ctx
    frames = torch.arange(start, start + length)
    cond = model.encode_conditions(*(c.repeat(BRANCHES, 1, 1) for c in conds), *guidance_drops(1))
    window_kv = model.cross_kv(cond)
    cross_kv = [
        (torch.cat((pk, k), 2), torch.cat((pv, v), 2))
        for (pk, pv), (k, v) in zip(gen.cross_kv, window_kv, strict=True)
    ]
    rotation = model.rope(gen.self_frames)
    past = [(apply_rope(k, rotation), v) for k, v in gen.self_kv]
    self_mask = self_attention_mask(frames, torch.cat((gen.self_frames, frames)), m)
    cross_mask = cross_attention_mask(frames, torch.cat((gen.cross_frames, frames)), m)
    reference = gen.reference.repeat(BRANCHES, 1)
    user_frames = model.embed_user_frames(conds[2][:, -length:].repeat(BRANCHES, 1, 1), guidance_drops(1)[1])
    v, _ = model.denoise(
        x.repeat(BRANCHES, 1, 1), t[None].float(), reference, cross_kv, model.rope(frames), self_mask,
        cross_mask, past, user_frames=user_frames,
    )  # fmt: skip
    return v.detach()


def test_streaming_pass_equals_plain_path():
    """A steady-state block (full cache) of the optimized generator == the plain path of the same pass."""
    model = micro_model()
    data = inputs(model, 1, 60)
    gen = StreamingGenerator(model, SamplerConfig(nfe=3, first_block="short"), data["reference"], seed=5)

    def chunk(i: int) -> tuple[torch.Tensor, ...]:
        return tuple(data[k][:, 10 * i : 10 * i + 10] for k in ("avatar_audio", "user_audio", "user_motion"))

    for i in range(5):
        gen.step(*chunk(i))
    assert gen.self_kv[0][0].shape[2] == model.cfg.cache_frames  # the cache is full
    conds = tuple(torch.cat((c, new), dim=1) for c, new in zip(gen.past_conds, chunk(5), strict=True))
    snapshot = (gen.next_frame, gen.self_kv, gen.cross_kv, gen.self_frames, gen.cross_frames)
    gen.trace = []
    gen.step(*chunk(5))
    x, v_fast = gen.trace[0]
    gen.next_frame, gen.self_kv, gen.cross_kv, gen.self_frames, gen.cross_frames = snapshot
    t = torch.where(torch.arange(x.shape[1]) >= model.cfg.context, gen.times[0], 0.0)
    v_plain = plain_pass(model, gen, x, t, conds)
    assert v_plain.shape == v_fast.shape == (3, 12, 6)
    assert (v_plain - v_fast).abs().max() < 1e-5

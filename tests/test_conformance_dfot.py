"""The DFoT against the authors' code (small config, random weights): forward, audio head, both streaming
runs (CFG branch order, s table, Euler in float64, context frames, first block, padding), key layout."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from avatar_forcing.errors import CheckpointError
from avatar_forcing.model.config import SamplerConfig, model_preset
from avatar_forcing.model.dfot import DFoT
from avatar_forcing.model.flow import sampling_schedule
from avatar_forcing.model.official import export_official_state, load_official_state, official_key
from avatar_forcing.model.streaming import StreamingGenerator, generate_offline

DATA = Path(__file__).parent / "data" / "conformance"
PAPER_KEYS = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "paper_keys.json"
ATOL = 1e-4


@pytest.fixture(scope="module")
def model() -> DFoT:
    torch.set_num_threads(1)
    m = DFoT(model_preset("conformance_small")).eval()
    report = load_official_state(m, load_file(DATA / "ft_small_state_dict.safetensors"), "small")
    assert len(report["unused"]) == 2  # the two mask buffers, checked against our masks
    return m


def projected(model: DFoT) -> DFoT:
    """The same weights fed with already-projected audio features."""
    m = DFoT(dataclasses.replace(model.cfg, audio_dim=model.cfg.cond_dim)).eval()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("audio_projection.")}
    m.load_state_dict(state, strict=False)
    m.audio_projection = torch.nn.Identity()
    return m


def test_forward_matches(model):
    d = load_file(DATA / "ft_small_forward.safetensors")
    m = projected(model)
    with torch.no_grad():
        # float32 matmuls: equal to rounding (the kernels' summation order differs between CPUs)
        torch.testing.assert_close(m.t_embedder(d["in.t"].double() / 1000), d["inter.t_embed"],
                                   rtol=1e-5, atol=1e-6)
        v = m(
            d["in.x"], d["in.t"].double() / 1000, d["in.wa"], d["in.wa_user"], d["in.motion_user"], d["in.wr"]
        )
    assert (v - d["out.v"]).abs().max() < ATOL


def test_audio_head_matches(model):
    d = load_file(DATA / "ft_small_sample_b1_T80.safetensors")
    with torch.no_grad():
        wa = model.audio_projection(d["in.avatar_w2v"])
    assert (wa - d["inter.avatar_wa"][:, :4]).abs().max() < 1e-5


def test_official_schedule():
    for name, nfe in [("b1_T80", 10), ("b2_T75", 6)]:
        d = load_file(DATA / f"ft_small_sample_{name}.safetensors")
        times, sigmas = sampling_schedule(SamplerConfig(nfe=nfe, schedule="official"))
        assert torch.equal(times * 1000, d["sched.timesteps"])
        assert torch.equal(sigmas[:-1], d["sched.sigmas"])  # ties to the lower k, s = 0 at t = 0
        assert sigmas[-1] == 0


@pytest.mark.parametrize("name,nfe,w_user", [("b1_T80", 10, 1.0), ("b2_T75", 6, 1.5)])
def test_streaming_runs_match(model, name, nfe, w_user):
    d = load_file(DATA / f"ft_small_sample_{name}.safetensors")
    cfg = SamplerConfig(nfe=nfe, schedule="official", w_audio=2.0, w_user=w_user)
    m = projected(model)
    avatar, user = d["inter.avatar_wa" if "inter.avatar_wa" in d else "in.avatar_wa"], None
    user = d["inter.user_wa" if "inter.user_wa" in d else "in.user_wa"]
    out = generate_offline(
        m, cfg, avatar, user, d["in.user_motion"], d["in.r_s"], noise_fn=lambda shape, i: d[f"noise.{i}"]
    )
    assert out.shape == d["out.motion"].shape
    assert (out - d["out.motion"]).abs().max() < ATOL


def test_branch_order_and_context_trace(model):
    d = load_file(DATA / "ft_small_sample_b1_T80.safetensors")
    m = projected(model)
    gen = StreamingGenerator(
        m, SamplerConfig(nfe=10, schedule="official"), d["in.r_s"], noise_fn=lambda s, i: d[f"noise.{i}"]
    )
    gen.trace = []
    um = d["in.user_motion"]
    gen.step(d["inter.avatar_wa"][:, :50], d["inter.user_wa"][:, :50], um[:, :50])
    assert (gen.trace[0][1] - d["trace.block0.v_raw.step0"]).abs().max() < ATOL  # rows [uncond, avatar, user]
    gen.trace = []
    gen.step(d["inter.avatar_wa"][:, 50:60], d["inter.user_wa"][:, 50:60], um[:, 50:60])
    xs = torch.stack([x for x, _ in gen.trace])
    assert (xs - d["trace.block1.x"][:-1]).abs().max() < ATOL
    assert torch.equal(xs[:, :, :2], xs[:1, :, :2].expand_as(xs[:, :, :2]))  # context frames untouched


def test_small_random_checkpoint_round_trips(model, tmp_path):
    from avatar_forcing.model.official import load_official

    torch.save(export_official_state(model), tmp_path / "flow_transformer.pth")
    loaded, _ = load_official(tmp_path / "flow_transformer.pth", model_preset("paper", heads=4))
    assert dataclasses.replace(loaded.cfg) == model.cfg
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


@pytest.mark.slow
def test_full_size_random_checkpoint_round_trips(tmp_path):
    """paper_keys.json shapes -> authors' flat file -> our loader -> identical tensors (~600 MB)."""
    torch.manual_seed(0)
    entries = json.loads(PAPER_KEYS.read_text()) if PAPER_KEYS.exists() else None
    model = DFoT(model_preset("paper"))
    flat = export_official_state(model)
    if entries is not None:
        expected = {e["key"]: e["shape"] for e in entries["flow_transformer"]["entries"]}
        expected |= {e["key"]: e["shape"] for e in entries["audio_projection"]["entries"]}
        assert {k: list(v.shape) for k, v in flat.items()} == expected
    path = tmp_path / "flow_transformer.pth"
    torch.save(flat, path)
    del flat
    from avatar_forcing.model.official import load_official

    loaded, report = load_official(path)
    assert loaded.cfg == model.cfg
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert sorted(report["unused"]) == sorted(
        ["flow_transformer.alignment_mask", "flow_transformer.block_bidir_causal_lookahead_mask"]
    )


def test_bad_official_files(model, tmp_path):
    flat = export_official_state(model)
    broken = dict(flat)
    del broken["flow_transformer.blocks.1.mlp.fc2.bias"]
    with pytest.raises(CheckpointError, match="blocks.1.mlp.fc2.bias"):
        load_official_state(DFoT(model.cfg), broken)
    broken = dict(flat, **{"flow_transformer.x_embedder.proj.weight": torch.zeros(3, 3)})
    with pytest.raises(CheckpointError, match="x_embedder.proj.weight"):
        load_official_state(DFoT(model.cfg), broken)
    broken = dict(flat, **{"flow_transformer.extra_head.weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match="extra_head"):
        load_official_state(DFoT(model.cfg), broken)
    assert official_key("audio_projection.0.weight") == "audio_encoder.audio_projection.0.weight"

    from avatar_forcing.model.official import read_official_file

    path = tmp_path / "flow.pth"
    torch.save(flat, path)
    (tmp_path / "truncated.pth").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError):
        read_official_file(tmp_path / "truncated.pth")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError):
        read_official_file(tmp_path / "evil.pth")

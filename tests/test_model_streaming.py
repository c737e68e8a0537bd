import pytest
import torch

from avatar_forcing.errors import ConfigError, InputError
from avatar_forcing.model.config import SamplerConfig
from avatar_forcing.model.sampler import combine_guidance, guidance_drops
from avatar_forcing.model.streaming import StreamingGenerator, generate_offline
from avatar_forcing.motion.vector import BLENDSHAPE_SLICE, MOTION_DIM, POSE_SLICE
from tests.model_helpers import inputs, micro_model


def offline(model, data, frames, **kw):
    return generate_offline(
        model, kw.pop("cfg", SamplerConfig(nfe=2)), data["avatar_audio"], data["user_audio"],
        data["user_motion"], data["reference"], num_frames=frames, **kw,
    )  # fmt: skip


def test_seed_determinism():
    model = micro_model()
    data = inputs(model, 1, 80)
    a, b = offline(model, data, 80, seed=3), offline(model, data, 80, seed=3)
    assert torch.equal(a, b)
    assert not torch.equal(a, offline(model, data, 80, seed=4))


def test_first_block_equals_cache_free_forward():
    """One Euler step from noise over the first window: the streaming path == DFoT.forward with CFG."""
    model = micro_model()
    data = inputs(model, 1, 50)
    noise = torch.randn(1, 50, 6)
    cfg = SamplerConfig(nfe=1, w_audio=2.0, w_user=1.5)
    out = offline(model, data, 50, cfg=cfg, noise_fn=lambda s, i: noise)
    drop_a, drop_u = guidance_drops(1)
    rows = {k: v.repeat(3, *[1] * (v.ndim - 1)) for k, v in data.items()}
    with torch.no_grad():
        v = model(noise.repeat(3, 1, 1), torch.ones(3, 50), rows["avatar_audio"], rows["user_audio"],
                  rows["user_motion"], rows["reference"], drop_a, drop_u)  # fmt: skip
    v_u, v_a, v_user = v.chunk(3)
    expected = noise - (v_u + 2.0 * (v_a - v_u) + 1.5 * (v_user - v_u))
    assert (out - expected).abs().max() < 1e-5


def test_pose_guidance_scales_only_the_head_poses_guidance():
    """pose_guidance g: the pose channels get weights 1 + g (w - 1), the blendshapes keep w; g = 1 is the
    paper's single formula bit for bit."""
    v = torch.randn(3, 4, MOTION_DIM, generator=torch.Generator().manual_seed(0))
    v_u, v_a, v_user = v.chunk(3)
    paper = v_u + 2.0 * (v_a - v_u) + 3.0 * (v_user - v_u)
    assert torch.equal(combine_guidance(v, SamplerConfig(w_audio=2.0, w_user=3.0)), paper)
    half = combine_guidance(v, SamplerConfig(w_audio=2.0, w_user=3.0, pose_guidance=0.5))
    torch.testing.assert_close(half[..., BLENDSHAPE_SLICE], paper[..., BLENDSHAPE_SLICE])
    pose = (v_u + 1.5 * (v_a - v_u) + 2.0 * (v_user - v_u))[..., POSE_SLICE]
    torch.testing.assert_close(half[..., POSE_SLICE], pose)
    with pytest.raises(ConfigError, match="pose_guidance"):
        SamplerConfig(pose_guidance=1.5).validate()
    with pytest.raises(ConfigError, match="58-d"):
        combine_guidance(torch.zeros(3, 4, 6), SamplerConfig(pose_guidance=0.0))


@pytest.mark.parametrize("mask", ["frame_lookahead", "block_causal", "lookahead_in_block",
                                  "motion_lookahead_in_block"])
@pytest.mark.parametrize("first_block", ["full", "short"])
def test_rolling_cache_equals_reference(mask, first_block):
    """Rolling cache with rebased positions == full history with absolute positions and horizon masks."""
    model = micro_model(mask=mask)
    data = inputs(model, 2, 130)
    cfg = SamplerConfig(nfe=3, first_block=first_block)
    rolling = offline(model, data, 130, cfg=cfg, seed=1)
    reference = offline(model, data, 130, cfg=cfg, seed=1, rolling=False)
    assert (rolling - reference).abs().max() < 1e-4


def test_streaming_past_1024_positions():
    model = micro_model()
    frames = 1130
    data = inputs(model, 1, frames)
    cfg = SamplerConfig(nfe=1, w_user=0.5)
    rolling = offline(model, data, frames, cfg=cfg, seed=2)
    reference = offline(model, data, frames, cfg=cfg, seed=2, rolling=False)
    assert rolling.shape == (1, frames, 6) and torch.isfinite(rolling).all()
    assert (rolling[:, :1024] - reference[:, :1024]).abs().max() < 1e-4
    assert (rolling - reference).abs().max() < 1e-4


def test_cache_stays_bounded_and_step_api():
    model = micro_model()
    cfg = SamplerConfig(nfe=1, first_block="short")
    gen = StreamingGenerator(model, cfg, torch.zeros(6), seed=0)
    assert gen.frames_needed == 10
    for _ in range(8):
        out = gen.step(torch.zeros(10, 8), torch.zeros(10, 8), torch.zeros(10, 5), has_user=False)
        assert out.shape == (1, 10, 6)
    assert gen.self_kv[0][0].shape[2] == model.cfg.cache_frames
    assert gen.cross_kv[0][0].shape[2] == model.cfg.cross_window
    assert int(gen.self_frames.max()) < gen.next_frame
    with pytest.raises(InputError):
        gen.step(torch.zeros(9, 8), torch.zeros(10, 8), torch.zeros(10, 5))
    gen.reset()
    assert gen.next_frame == 0 and gen.self_kv is None


def test_missing_condition_removes_its_guidance():
    """Without a user, the user branch equals the unconditional one, so w_user has no effect."""
    model = micro_model()
    data = inputs(model, 1, 10)
    outs = []
    for w_user in (0.0, 3.0):
        gen = StreamingGenerator(
            model, SamplerConfig(nfe=2, first_block="short", w_user=w_user), data["reference"]
        )
        outs.append(gen.step(data["avatar_audio"], data["user_audio"], data["user_motion"], has_user=False))
    assert (outs[0] - outs[1]).abs().max() < 1e-5


def test_history_noise_changes_only_what_follows_the_first_block():
    """A noisy past (SamplerConfig.history_noise) enters the cache only: the first block, which has no past,
    is unchanged, later blocks differ, and 0 is the clean-past sampler exactly."""
    model = micro_model()
    data = inputs(model, 1, 80)
    short = dict(nfe=2, first_block="short")
    clean = offline(model, data, 80, cfg=SamplerConfig(**short))
    assert torch.equal(clean, offline(model, data, 80, cfg=SamplerConfig(**short, history_noise=0.0)))
    noisy = offline(model, data, 80, cfg=SamplerConfig(**short, history_noise=0.4))
    b = model.cfg.block_size
    assert torch.equal(clean[:, :b], noisy[:, :b])
    assert not torch.allclose(clean[:, b:], noisy[:, b:])
    assert torch.isfinite(noisy).all()
    with pytest.raises(ConfigError, match="history_noise"):
        SamplerConfig(history_noise=1.0).validate()


def test_clean_context_continues_the_last_block_exactly():
    """With a noisy past, a block continues from its `context` frames: clean (clean_context) they are the
    previous block's own output; noised they are not. The older cache is noised either way, and with no
    history noise the option changes nothing."""
    model = micro_model()
    data = inputs(model, 1, 30)
    short = dict(nfe=2, first_block="short", history_noise=0.4)
    for clean_context in (True, False):
        cfg = SamplerConfig(**short, clean_context=clean_context)
        gen = StreamingGenerator(model, cfg, data["reference"])
        out = gen.step(data["avatar_audio"][:, :10], data["user_audio"][:, :10], data["user_motion"][:, :10])
        tail = out[:, -model.cfg.context:]
        assert torch.equal(gen.context_latents, tail) == clean_context
    plain = dict(nfe=2, first_block="short")
    same = offline(model, data, 30, cfg=SamplerConfig(**plain)) - offline(
        model, data, 30, cfg=SamplerConfig(**plain, clean_context=True))
    assert same.abs().max() < 1e-5  # float rounding of a batch of flow times one longer


def test_condition_window_reaches_back_across_blocks():
    """cond_window = k: every block's condition tokens equal those of encoding the whole stream at once, so
    the encoder sees the k frames before a window (carried from earlier blocks) as it does in training."""
    model = micro_model(cond_window=7)
    m, frames = model.cfg, 60
    data = inputs(model, 1, frames)
    gen = StreamingGenerator(model, SamplerConfig(nfe=1, first_block="short"), data["reference"])
    seen: list[torch.Tensor] = []
    cross_kv = model.cross_kv
    model.cross_kv = lambda cond: seen.append(cond) or cross_kv(cond)
    names = ("avatar_audio", "user_audio", "user_motion")
    for start in range(0, frames, m.block_size):
        gen.step(*(data[k][:, start : start + m.block_size] for k in names))
    with torch.no_grad():
        whole = model.encode_conditions(*(data[k].repeat(3, 1, 1) for k in names), *guidance_drops(1))
    for i, cond in enumerate(seen):
        first = i * m.block_size - (m.context if i else 0)
        assert torch.allclose(cond, whole[:, first : first + cond.shape[1]], atol=1e-5), f"block {i}"
    assert len(seen) == frames // m.block_size


@pytest.mark.parametrize("mask", ["frame_lookahead", "block_causal"])
def test_overlap_gives_a_blocks_last_frames_their_look_ahead(mask):
    """overlap = k: a step takes the conditions of k frames past its block, samples them with it and
    returns the block only. Its last frames then depend on what comes after them (as in training), the next
    block continues from the kept frames, and the rolling cache still equals the reference path."""
    model = micro_model(mask=mask)
    b, k = model.cfg.block_size, model.cfg.lookahead
    data = inputs(model, 1, 40)
    names = ("avatar_audio", "user_audio", "user_motion")
    cfg = SamplerConfig(nfe=2, first_block="short", overlap=k, clean_context=True, history_noise=0.2)
    outs = []
    silenced = data["avatar_audio"].clone().index_fill_(1, torch.arange(b, b + k), 0)  # the overlap's sound
    for audio in (data["avatar_audio"], silenced):
        gen = StreamingGenerator(model, cfg, data["reference"], seed=0)
        assert (gen.frames_needed, gen.condition_frames) == (b, b + k)
        conds = {**data, "avatar_audio": audio}
        out = gen.step(*(conds[name][:, : b + k] for name in names))
        assert out.shape == (1, b, model.cfg.motion_dim) and gen.next_frame == b
        assert torch.equal(gen.context_latents, out[:, -model.cfg.context:])  # kept frames, not the overlap
        outs.append(out)
    assert not torch.allclose(outs[0][:, -k:], outs[1][:, -k:])  # the block's last frames heard what follows
    rolling = offline(model, data, 40, cfg=cfg, seed=1)
    assert rolling.shape == (1, 40, model.cfg.motion_dim)
    assert (rolling - offline(model, data, 40, cfg=cfg, seed=1, rolling=False)).abs().max() < 1e-4
    with pytest.raises(ConfigError, match="overlap"):
        SamplerConfig(overlap=-1).validate()


def test_guidance_interval_guides_only_the_steps_inside_it():
    """Steps starting at a flow time outside the interval compose the conditions with every weight 1; the
    default interval (0, 1) is the paper's sampler bit for bit."""
    v = torch.randn(3, 4, MOTION_DIM, generator=torch.Generator().manual_seed(0))
    v_u, v_a, v_user = v.chunk(3)
    cfg = SamplerConfig(w_audio=2.0, w_user=3.0, guidance_interval=(0.3, 1.0))
    guided = v_u + 2.0 * (v_a - v_u) + 3.0 * (v_user - v_u)
    torch.testing.assert_close(combine_guidance(v, cfg, 0.3 + 1e-12), guided)
    torch.testing.assert_close(combine_guidance(v, cfg, 0.2), v_a + v_user - v_u)
    model = micro_model()
    data = inputs(model, 1, 30)

    def run(interval):
        return offline(model, data, 30, cfg=SamplerConfig(nfe=4, guidance_interval=interval))

    paper = offline(model, data, 30, cfg=SamplerConfig(nfe=4))
    assert torch.equal(paper, run((0.0, 1.0))) and not torch.allclose(paper, run((0.5, 1.0)))
    with pytest.raises(ConfigError, match="guidance_interval"):
        SamplerConfig(guidance_interval=(0.6, 0.2)).validate()


def test_joint_guidance_is_the_velocity_given_both_conditions_at_weight_one():
    """guidance_form "joint": rows [avatar audio only, user only, both]; at w = 1 the result is the branch
    that sees both conditions, and the guidance terms are differences against it."""
    drop_a, drop_u = guidance_drops(1, form="joint")
    assert drop_a.tolist() == [False, True, False] and drop_u.tolist() == [True, False, False]
    drop_a, drop_u = guidance_drops(1, has_user=False, form="joint")
    assert drop_u.all() and drop_a.tolist() == [False, True, False]
    v = torch.randn(3, 4, MOTION_DIM, generator=torch.Generator().manual_seed(0))
    v_a, v_user, v_both = v.chunk(3)
    torch.testing.assert_close(combine_guidance(v, SamplerConfig(w_audio=1.0, w_user=1.0,
                                                                 guidance_form="joint")), v_both)
    guided = combine_guidance(v, SamplerConfig(w_audio=2.0, w_user=3.0, guidance_form="joint"))
    torch.testing.assert_close(guided, v_both + (v_both - v_user) + 2.0 * (v_both - v_a))
    with pytest.raises(ConfigError, match="guidance_form"):
        SamplerConfig(guidance_form="both").validate()

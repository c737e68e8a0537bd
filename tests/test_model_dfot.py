import pytest
import torch

from avatar_forcing.errors import CheckpointError, ConfigError
from avatar_forcing.model.checkpoint import load_checkpoint, save_checkpoint
from avatar_forcing.model.config import FlowConfig, model_preset
from avatar_forcing.model.dfot import DFoT
from avatar_forcing.model.flow import block_sigmas, diffusion_forcing_loss
from avatar_forcing.motion.vector import MOTION_NAMES
from tests.model_helpers import inputs, micro_model


def run(model, x, data, t):
    with torch.no_grad():
        return model(x, t, data["avatar_audio"], data["user_audio"], data["user_motion"], data["reference"])


@pytest.mark.parametrize("mask", ["frame_lookahead", "block_causal"])
def test_causality_of_noisy_motion(mask):
    """Changing frame j of the noisy motion leaves frames before j - depth * lookahead unchanged (each layer
    looks l frames further; for block_causal the reach is whole blocks)."""
    model = micro_model(mask=mask, block_size=5, window=30, lookahead=1)
    data = inputs(model, 1, 30)
    t = torch.rand(1, 30)
    base = run(model, data["motion"], data, t)
    j = 22
    x = data["motion"].clone()
    x[:, j] += 1.0
    changed = (run(model, x, data, t) - base).abs().amax(-1)[0]
    c = model.cfg
    reach = c.depth * c.lookahead if mask == "frame_lookahead" else c.depth * c.block_size + c.lookahead
    first_affected = int(torch.nonzero(changed > 1e-6)[0])
    assert first_affected >= j - reach
    assert torch.all(changed[: j - reach] == 0)
    assert changed[j] > 1e-3


def test_paper_and_tiny_sizes():
    assert 1_000_000 <= DFoT(model_preset("tiny")).num_parameters() <= 3_000_000
    assert DFoT(model_preset("paper")).num_parameters() == 148_764_160 + 4_720_128


def test_bad_config():
    with pytest.raises(ConfigError):
        model_preset("tiny", window=45)
    with pytest.raises(ConfigError):
        model_preset("nope")


def test_df_loss_per_block_times_and_dropout():
    g = torch.Generator().manual_seed(0)
    s = block_sigmas(4, 25, 10, FlowConfig(), g)
    assert torch.all(s[:, :10] == s[:, :1]) and torch.all(s[:, 20:] == s[:, 20:21])
    assert not torch.all(s[:, :10] == s[:, 10:20])
    model = micro_model()
    model.train()
    data = inputs(model, 64, 20)
    loss, stats = diffusion_forcing_loss(model, data, FlowConfig(), torch.Generator().manual_seed(1))
    loss.backward()
    assert torch.isfinite(loss) and 0 < stats["drop_avatar"] < 0.3 and 0 < stats["drop_user"] < 0.3
    again, _ = diffusion_forcing_loss(model, data, FlowConfig(), torch.Generator().manual_seed(1))
    assert again.item() == loss.item()


def test_streamed_windows_get_a_nearly_clean_past_and_the_paper_recipe_is_unchanged():
    blocks, size = 5, 10
    paper = block_sigmas(64, blocks * size, size, FlowConfig(), torch.Generator().manual_seed(3))
    drawn = torch.rand(64, blocks, generator=torch.Generator().manual_seed(3))
    assert torch.equal(paper[:, ::size], drawn)  # fraction 0 draws nothing more: old runs repeat bit for bit
    cfg = FlowConfig(streamed_fraction=1.0, streamed_past_max=0.3)
    s = block_sigmas(64, blocks * size, size, cfg, torch.Generator().manual_seed(3))[:, ::size]
    assert bool((s[:, 0] <= 0.3).all())  # the first block is always past: the current block is >= 1
    # the past is a prefix: once a block is noisier than the past can be, it is the current block or later
    clean_prefix = (s <= 0.3).int().cumprod(dim=1).sum(dim=1)
    assert clean_prefix.min() >= 1 and clean_prefix.float().mean() > 1.5
    half = block_sigmas(4000, blocks * size, size, FlowConfig(streamed_fraction=0.5),
                        torch.Generator().manual_seed(4))[:, ::size]
    all_clean_before_last = (half[:, :4] <= 0.3).all(dim=1).float().mean().item()
    assert 0.1 < all_clean_before_last < 0.25  # 0.5 x 1/4 of the windows stream their last block, + 0.3^4


class FixedVelocity(torch.nn.Module):
    """A "model" whose velocity is a free tensor: the loss's gradient says which frames it counts."""

    def __init__(self, cfg, rows: int, frames: int):
        super().__init__()
        self.cfg = cfg
        self.v = torch.nn.Parameter(torch.zeros(rows, frames, cfg.motion_dim))

    def forward(self, *args):
        return self.v


def test_burn_in_frames_carry_no_loss_unless_the_window_begins_its_conversation():
    """With burn_in = b, a window's first b frames are context only (no loss), except in a window at its
    conversation's start; with every frame counting, the loss is the paper's plain mean."""
    data = inputs(micro_model(), 4, 20)
    data["at_start"] = torch.tensor([False, True, False, False])
    model = FixedVelocity(micro_model().cfg, 4, 20)
    cfg = FlowConfig(burn_in=10)
    loss, _ = diffusion_forcing_loss(model, data, cfg, torch.Generator().manual_seed(1))
    (grad,) = torch.autograd.grad(loss, model.v)
    counted = grad.abs().amax(dim=2) > 0
    assert not counted[[0, 2, 3], :10].any()  # mid-conversation windows: context only
    assert counted[1].all() and counted[:, 10:].all()  # a window at its conversation's start counts whole
    plain, _ = diffusion_forcing_loss(model, data, FlowConfig(), torch.Generator().manual_seed(1))
    whole = {**data, "at_start": torch.ones(4, dtype=torch.bool)}
    every_frame, _ = diffusion_forcing_loss(model, whole, cfg, torch.Generator().manual_seed(1))
    assert torch.allclose(plain, every_frame)


def test_l2_flow_loss_is_the_mean_square_of_the_same_velocity_error():
    """Same noise, times and drops: L1 is the mean |error|, L2 the mean error^2 (the conditional mean)."""
    model = micro_model()
    data = inputs(model, 8, 20)
    l1, _ = diffusion_forcing_loss(model, data, FlowConfig(loss="l1"), torch.Generator().manual_seed(1))
    l2, _ = diffusion_forcing_loss(model, data, FlowConfig(loss="l2"), torch.Generator().manual_seed(1))
    # |e| and e^2 differ, and by Jensen mean(e^2) >= mean(|e|)^2
    assert l2.item() != l1.item() and l2.item() >= l1.item() ** 2


def test_checkpoint_round_trip_and_errors(tmp_path):
    model = micro_model()
    save_checkpoint(tmp_path / "ck", model, extra={"note": 1})
    loaded, cfg, stats = load_checkpoint(tmp_path / "ck")
    assert cfg == model.cfg and stats is None
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    weights = tmp_path / "ck" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "ck")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "config.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "foreign")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "missing")


@pytest.mark.parametrize("cond_window", [0, 3])
def test_local_condition_window_keeps_tokens_local(cond_window):
    """With cond_window = k, changing the user's audio at frame j changes only condition tokens j..j+2k (two
    attentions in a row, each k frames back); with the whole window (-1) it changes all of them."""
    torch.manual_seed(0)
    for k, expected in ((cond_window, None), (-1, "all")):
        model = DFoT(model_preset("tiny", width=64, cond_dim=32, cond_window=k)).eval()
        audio, user_audio = torch.randn(1, 20, 320), torch.randn(1, 20, 320)
        user_motion = torch.randn(1, 20, 58)
        base = model.encode_conditions(audio, user_audio, user_motion)
        user_audio[:, 8] += 3.0
        changed = (model.encode_conditions(audio, user_audio, user_motion) - base).abs().amax(-1)[0] > 1e-6
        if expected == "all":
            assert changed.all()
        else:
            assert torch.nonzero(changed).ravel().tolist() == list(range(8, 8 + 2 * k + 1))


def test_the_model_sees_only_its_user_channels():
    """With user_channels, the other user channels change nothing in either user path (condition tokens,
    input tokens), a named one changes both; a name that is not a motion channel is refused."""
    from avatar_forcing.motion.vector import idx

    torch.manual_seed(0)
    model = DFoT(model_preset("tiny", width=64, cond_dim=32, user_channels=("mouthSmileLeft", "yaw"))).eval()
    audio, user_audio, user_motion = torch.randn(1, 20, 320), torch.randn(1, 20, 320), torch.randn(1, 20, 58)

    def paths(motion):
        return model.encode_conditions(audio, user_audio, motion), model.embed_user_frames(motion)

    base = paths(user_motion)
    unseen = user_motion.clone()
    unseen[..., [idx("jawOpen"), idx("eyeSquintLeft"), idx("pitch"), idx("tx")]] += 2.0
    assert all(torch.equal(a, b) for a, b in zip(base, paths(unseen), strict=True))
    for name in ("mouthSmileLeft", "yaw"):
        seen = user_motion.clone()
        seen[..., idx(name)] += 2.0
        assert all((a - b).abs().max() > 1e-4 for a, b in zip(base, paths(seen), strict=True))
    with pytest.raises(ConfigError):
        model_preset("tiny", user_channels=("smile",))


def test_channel_weights_count_a_channel_more_and_keep_the_scale():
    """A weighted channel's error counts w times; with every weight equal the loss is unchanged."""
    model = micro_model()
    data = inputs(model, 8, 20)
    loss = {name: diffusion_forcing_loss(model, data, FlowConfig(loss="l2", channel_weights=weights),
                                         torch.Generator().manual_seed(1))[0].item()
            for name, weights in (("plain", ()), ("one", ((MOTION_NAMES[1], 50.0),)),
                                  ("all", tuple((n, 3.0) for n in MOTION_NAMES[:model.cfg.motion_dim])))}
    assert loss["all"] == pytest.approx(loss["plain"], rel=1e-5)
    assert loss["one"] != pytest.approx(loss["plain"], rel=1e-3)

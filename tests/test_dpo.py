"""Stage-2 preference optimization: the loss's fixed point, its direction, the loser pipeline."""

from __future__ import annotations

import copy

import pytest
import torch

from avatar_forcing.errors import ConfigError
from avatar_forcing.model.config import FlowConfig, SamplerConfig, model_preset
from avatar_forcing.model.dfot import DFoT
from avatar_forcing.model.flow import velocity
from avatar_forcing.train.config import DPOConfig
from avatar_forcing.train.dpo import CachedLosers, DPOObjective, dpo_loss, sampler_loser

FLOW = FlowConfig()


def small_model(seed: int = 0) -> DFoT:
    torch.manual_seed(seed)
    cfg = model_preset(
        "tiny",
        width=32,
        depth=1,
        heads=2,
        cond_dim=16,
        time_embed_dim=32,
        audio_dim=12,
        motion_dim=6,
        user_motion_dim=6,
        user_channels=(),
        window=20,
    )
    model = DFoT(cfg)
    # DFoT starts with a zero output layer (every block an identity); give it a non-trivial start.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def batch(n: int = 2, frames: int = 20, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "motion": torch.randn(n, frames, 6, generator=g),
        "avatar_audio": torch.randn(n, frames, 12, generator=g),
        "user_audio": torch.randn(n, frames, 12, generator=g),
        "user_motion": torch.randn(n, frames, 6, generator=g),
        "reference": torch.randn(n, 6, generator=g),
    }


def test_zero_gradient_when_policy_is_reference_and_winner_is_loser():
    torch.set_num_threads(1)
    model = small_model()
    ref = copy.deepcopy(model)
    b = batch()
    loss, stats = dpo_loss(
        model, ref, b["motion"], b["motion"].clone(), b, 1000.0, 10, FLOW, torch.Generator().manual_seed(0)
    )
    loss.backward()
    assert loss.item() == pytest.approx(torch.log(torch.tensor(2.0)).item(), abs=1e-6)
    assert stats["reward_margin"] == 0.0
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert all(p.grad is None for p in ref.parameters())
    # Scale: the gradient of the winner's own term, beta/2 * e_theta(w), which the loser's term cancels.
    model.zero_grad()
    (500.0 * (velocity(model, b["motion"], torch.rand(2, 20), b) - b["motion"]).abs().mean()).backward()
    scale = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]).norm()
    assert grads.norm() < 1e-5 * scale  # zero up to float32 rounding


def test_a_few_steps_raise_the_margin_toward_the_winner():
    torch.set_num_threads(1)
    model = small_model()
    ref = copy.deepcopy(model)
    b = batch(n=4)
    # Toy preference: the winner follows the user's motion (reacts), the loser is a frozen, unrelated pose.
    winner = b["user_motion"]
    loser = b["reference"][:, None, :].expand_as(winner).contiguous()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def margin() -> tuple[float, float]:
        with torch.no_grad():
            _, s = dpo_loss(
                model, ref, winner, loser, b, 1000.0, 10, FLOW, torch.Generator().manual_seed(123)
            )
        return s["reward_margin"], s["pref_acc"]

    before, _ = margin()
    for step in range(6):
        opt.zero_grad()
        loss, _ = dpo_loss(
            model, ref, winner, loser, b, 1000.0, 10, FLOW, torch.Generator().manual_seed(step)
        )
        loss.backward()
        opt.step()
    after, acc = margin()
    assert before == pytest.approx(0.0, abs=1e-6)
    assert after > before + 1.0
    assert acc > 0.5


def test_objective_with_generated_losers_and_resumable_cache():
    torch.set_num_threads(1)
    model = small_model()
    ref = copy.deepcopy(model).eval()
    sampler = SamplerConfig(nfe=2)
    loser_fn = sampler_loser(ref, sampler)
    b = batch()
    loser = loser_fn(b, seed=7)
    assert loser.shape == b["motion"].shape and torch.isfinite(loser).all()
    assert torch.equal(loser, loser_fn(b, seed=7))  # seeded
    # the user condition does not reach the loser: different user inputs, same loser
    other = {
        **b,
        "user_audio": torch.randn_like(b["user_audio"]),
        "user_motion": torch.randn_like(b["user_motion"]),
    }
    torch.testing.assert_close(loser_fn(other, seed=7), loser)

    objective = DPOObjective(ref, loser_fn, DPOConfig(), FLOW, block_size=10, motion_dim=6)
    loss, stats = objective(model, b, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and {"dpo_loss", "pref_acc", "reward_margin", "df_loss"} <= set(stats)

    class Source:  # three batches, resumable
        def __init__(self):
            self.pos = 0

        def __iter__(self):
            while self.pos < 3:
                self.pos += 1
                yield batch(seed=self.pos)
            self.pos = 0

        def state_dict(self):
            return {"pos": self.pos}

        def load_state_dict(self, s):
            self.pos = s["pos"]

    cached = CachedLosers(Source(), loser_fn, windows_per_chunk=4, batch_size=2, seed=1)
    it = iter(cached)
    first = [next(it) for _ in range(3)]  # crosses a chunk boundary (2 batches per chunk)
    state = cached.state_dict()
    expected = next(it)
    resumed = CachedLosers(Source(), loser_fn, windows_per_chunk=4, batch_size=2, seed=1)
    resumed.load_state_dict(state)
    got = next(iter(resumed))
    assert torch.equal(got["loser"], expected["loser"]) and torch.equal(got["motion"], expected["motion"])
    assert not torch.equal(first[0]["loser"], first[1]["loser"])


def test_dpo_config_errors():
    with pytest.raises(ConfigError, match="loser_checkpoint"):
        DPOConfig(loser_source="checkpoint").validate()
    with pytest.raises(ConfigError):
        DPOConfig(loser_mode="sometimes").validate()


def test_run_dpo_end_to_end_and_incompatible_checkpoint(tmp_path):
    from avatar_forcing.errors import CheckpointError
    from avatar_forcing.model.checkpoint import load_checkpoint, read_config, save_checkpoint
    from avatar_forcing.train.config import TrainConfig
    from avatar_forcing.train.dpo import run_dpo
    from tests.train_helpers import make_corpus, micro_config

    torch.set_num_threads(1)
    data = make_corpus(tmp_path / "corpus")
    torch.manual_seed(0)
    stage1 = DFoT(micro_config())
    save_checkpoint(tmp_path / "stage1", stage1, stage1.cfg, None, {})
    cfg = DPOConfig(
        train=TrainConfig(
            steps=2,
            batch_size=2,
            lr=1e-4,
            warmup_steps=1,
            log_every=1,
            val_every=2,
            ckpt_every=2,
            val_windows=2,
            precision="fp32",
            device="cpu",
        ),
        loser_nfe=2,
    )
    result = run_dpo(cfg, tmp_path / "stage1", data, tmp_path / "dpo")
    assert result.step == 2
    model, _, _ = load_checkpoint(tmp_path / "dpo" / "latest")
    assert read_config(tmp_path / "dpo" / "latest")["extra"]["stage"] == "dpo"
    records = (tmp_path / "dpo" / "metrics.jsonl").read_text()
    assert "pref_acc" in records and "reward_margin" in records

    foreign = DFoT(micro_config(motion_dim=12, user_motion_dim=12, user_channels=()))
    save_checkpoint(tmp_path / "foreign", foreign, foreign.cfg, None, {})
    with pytest.raises(CheckpointError, match="motion dimension"):
        run_dpo(cfg, tmp_path / "foreign", data, tmp_path / "dpo2")
    with pytest.raises(CheckpointError):
        run_dpo(cfg, tmp_path / "corpus", data, tmp_path / "dpo3")  # not a checkpoint at all
    cfg.loser_source, cfg.loser_checkpoint = "checkpoint", str(tmp_path / "foreign")
    with pytest.raises(CheckpointError, match="loser checkpoint"):
        run_dpo(cfg, tmp_path / "stage1", data, tmp_path / "dpo4")


def test_residual_loser_removes_only_the_user_driven_motion():
    torch.set_num_threads(1)
    from avatar_forcing.train.dpo import residual_loser

    model = small_model().eval()
    sampler = SamplerConfig(nfe=2)
    without, with_user = sampler_loser(model, sampler), sampler_loser(model, sampler, with_user=True)
    loser_fn = residual_loser(without, with_user)
    b = batch()
    loser = loser_fn(b, seed=3)
    user_part = with_user(b, seed=3) - without(b, seed=3)
    assert user_part.abs().max() > 1e-3  # the user conditions do change this model's motion
    torch.testing.assert_close(b["motion"] - loser, user_part)
    # no user guidance (w_u = 0): the two samples coincide and the loser is the winner
    silent = residual_loser(without, sampler_loser(model, SamplerConfig(nfe=2, w_user=0.0), with_user=True))
    torch.testing.assert_close(silent(b, seed=3), b["motion"])


def test_mismatched_loser_reacts_to_another_windows_user():
    torch.set_num_threads(1)
    from avatar_forcing.train.dpo import mismatched_loser

    model = small_model().eval()
    with_user = sampler_loser(model, SamplerConfig(nfe=2), with_user=True)
    b = batch(n=3)
    loser = mismatched_loser(with_user)(b, seed=3)
    swapped = {**b, "user_audio": b["user_audio"][[2, 0, 1]], "user_motion": b["user_motion"][[2, 0, 1]]}
    torch.testing.assert_close(loser, with_user(swapped, seed=3))
    assert (loser - with_user(b, seed=3)).abs().max() > 1e-3  # not the sample for the right user
    cfg = DPOConfig(loser_form="mismatched")
    cfg.train.batch_size = 1
    with pytest.raises(ConfigError, match="batch_size >= 2"):
        cfg.validate()


def test_mixed_losers_split_the_batch_between_the_two_forms():
    torch.set_num_threads(1)
    from avatar_forcing.train.dpo import mismatched_loser, mixed_loser

    model = small_model().eval()
    without = sampler_loser(model, SamplerConfig(nfe=2))
    mismatched = mismatched_loser(sampler_loser(model, SamplerConfig(nfe=2), with_user=True))
    b = batch(n=4)
    loser = mixed_loser(without, mismatched)(b, seed=3)
    first, second = ({k: v[s] for k, v in b.items()} for s in (slice(0, 2), slice(2, 4)))
    torch.testing.assert_close(loser[:2], without(first, seed=3))
    torch.testing.assert_close(loser[2:], mismatched(second, seed=3))
    cfg = DPOConfig(loser_form="mixed")
    cfg.train.batch_size = 3
    with pytest.raises(ConfigError, match="batch_size >= 4"):
        cfg.validate()


def test_balanced_channel_weighting_gives_pose_half_the_error():
    from avatar_forcing.motion.vector import MOTION_DIM, POSE_SLICE
    from avatar_forcing.train.dpo import channel_weights, window_errors

    assert channel_weights(MOTION_DIM, "uniform") is None
    w = channel_weights(MOTION_DIM, "balanced")
    assert w.sum().item() == pytest.approx(1.0)
    pred, target = torch.zeros(2, 5, MOTION_DIM), torch.zeros(2, 5, MOTION_DIM)
    pred[0, :, POSE_SLICE] = 1.0  # window 0: a pose-only error; window 1: an error on every channel
    pred[1] = 1.0
    plain, balanced = window_errors(pred, target), window_errors(pred, target, w)
    assert plain[0].item() == pytest.approx(6 / 58)
    assert balanced[0].item() == pytest.approx(0.5)
    assert balanced[1].item() == pytest.approx(plain[1].item()) == pytest.approx(1.0)
    expression = window_errors(pred, target, channel_weights(MOTION_DIM, "expression"))
    assert expression[0].item() == 0.0 and expression[1].item() == pytest.approx(1.0)  # pose ignored
    with pytest.raises(ConfigError, match="58-d motion"):
        channel_weights(6, "balanced")
    with pytest.raises(ConfigError, match="channel_weighting"):
        DPOConfig(channel_weighting="pose").validate()


def test_phrase_ends_are_found_in_the_users_audio_features():
    """A phrase ends at its first silent frame when at least min_pause silent frames follow; short pauses
    are bridged, short bursts are no phrase, and a pause that runs past the window is not known yet."""
    from avatar_forcing.train.phrase_ends import PhraseEndConfig, after_phrase_ends, phrase_ends

    cfg = PhraseEndConfig(min_pause=3, min_phrase=4, response=5)
    row = lambda spec: torch.tensor([c == "#" for c in spec])  # noqa: E731
    #                    phrase  short pause  phrase ends   burst   pause past the end
    voiced = row("..######..####......##....######..")
    assert phrase_ends(voiced.numpy(), cfg) == [14]
    assert phrase_ends(row("######......").numpy(), cfg) == [6]
    assert phrase_ends(row("##....").numpy(), cfg) == []           # a burst
    assert phrase_ends(row("......######..").numpy(), cfg) == []   # not known yet
    audio = torch.where(voiced[None, :, None], torch.tensor(0.0), torch.tensor(-1.0)).expand(1, -1, 320)
    mask = after_phrase_ends(audio, cfg)
    assert mask.shape == (1, len(voiced)) and mask[0].nonzero().flatten().tolist() == [14, 15, 16, 17, 18]


def test_phrase_end_pose_scores_the_head_only_after_the_users_phrase_ends():
    from avatar_forcing.motion.vector import BLENDSHAPE_SLICE, MOTION_DIM, POSE_SLICE
    from avatar_forcing.train.dpo import channel_weights, phrase_end_weights, window_errors

    frames = 60
    audio = torch.full((2, frames, 320), -1.0)
    audio[0, 5:20] = 0.0  # window 0: the user speaks, then is silent from frame 20; window 1: silence
    w = phrase_end_weights(channel_weights(MOTION_DIM, "expression"), audio, 0.5, MOTION_DIM)
    assert w.shape == (2, frames, MOTION_DIM)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, frames))
    after = torch.zeros(frames, dtype=torch.bool)
    after[20:58] = True  # the 38 response frames
    assert (w[0, after][:, POSE_SLICE].sum(-1) == 0.5).all()
    assert (w[0, ~after][:, POSE_SLICE] == 0).all() and (w[1][:, POSE_SLICE] == 0).all()
    pred = torch.zeros(2, frames, MOTION_DIM)
    pred[..., POSE_SLICE] = 1.0  # a head-only error counts only in the window with a phrase end
    err = window_errors(pred, torch.zeros_like(pred), w)
    assert err[0].item() == pytest.approx(0.5 * 38 / frames) and err[1].item() == 0.0
    pred[..., BLENDSHAPE_SLICE] = 1.0
    assert window_errors(pred, torch.zeros_like(pred), w).tolist() == pytest.approx([1.0, 1.0])
    with pytest.raises(ConfigError, match="phrase_end_pose"):
        DPOConfig(phrase_end_pose=1.5).validate()


def test_objective_with_phrase_end_pose_trains_on_the_full_motion():
    """The per-frame weights go through the whole objective (winner and loser rows alike) and change it."""
    from avatar_forcing.motion.vector import MOTION_DIM

    torch.manual_seed(0)
    model = DFoT(model_preset("tiny", width=32, depth=1, heads=2, cond_dim=16, time_embed_dim=32, window=20))
    ref = copy.deepcopy(model).eval()
    g = torch.Generator().manual_seed(0)
    b = {"motion": torch.randn(2, 20, MOTION_DIM, generator=g),
         "loser": torch.randn(2, 20, MOTION_DIM, generator=g),
         "avatar_audio": torch.randn(2, 20, 320, generator=g), "user_audio": torch.full((2, 20, 320), -1.0),
         "user_motion": torch.randn(2, 20, MOTION_DIM, generator=g), "reference": torch.zeros(2, MOTION_DIM)}
    b["user_audio"][:, :10] = 0.0  # a phrase ending at frame 10
    losses = []
    for share in (0.0, 0.5):
        objective = DPOObjective(ref, None, DPOConfig(channel_weighting="expression", phrase_end_pose=share),
                                 FLOW, block_size=10, motion_dim=MOTION_DIM)
        loss, stats = objective(model, b, torch.Generator().manual_seed(0))
        loss.backward()
        losses.append(stats["err_winner"])
    assert all(torch.isfinite(torch.tensor(losses))) and losses[0] != losses[1]

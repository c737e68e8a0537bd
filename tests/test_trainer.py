"""The training loop: overfitting, exact resume, NaN handling, config errors, checkpoints on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from avatar_forcing.errors import ConfigError
from avatar_forcing.train.config import TrainConfig
from avatar_forcing.train.trainer import Trainer, TrainingDiverged


class ToyData:
    """Seeded in-memory windows served in a fixed order, with a resumable position."""

    def __init__(self, n: int = 12, batch: int = 4, dim: int = 6, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, dim, generator=g)
        self.batch, self.pos = batch, 0

    def __iter__(self):
        while self.pos + self.batch <= len(self.x):
            self.pos += self.batch
            yield {"motion": self.x[self.pos - self.batch : self.pos]}
        self.pos = 0

    def state_dict(self):
        return {"pos": self.pos}

    def load_state_dict(self, state):
        self.pos = state["pos"]


def toy_flow_loss(model, batch, generator):
    """Flow matching on toy vectors; all randomness from ``generator`` (as in the real DF loss)."""
    x0 = batch["motion"]
    eps = torch.randn(x0.shape, generator=generator).to(x0)
    s = torch.rand(x0.shape[0], 1, generator=generator).to(x0)
    pred = model(torch.cat([(1 - s) * x0 + s * eps, s], dim=1))
    loss = (pred - (eps - x0)).abs().mean()
    return loss, {"s_mean": float(s.mean())}


def toy_model(dim: int = 6, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(dim + 1, 32), nn.SiLU(), nn.Dropout(0.1), nn.Linear(32, dim))


def save_weights(directory: Path, module: nn.Module, extra: dict) -> None:
    save_file(
        {k: v.contiguous() for k, v in module.state_dict().items()}, str(directory / "model.safetensors")
    )
    (directory / "config.json").write_text(json.dumps(extra))


def make_trainer(tmp_path, steps, **cfg_changes):
    fields = dict(
        steps=steps,
        batch_size=4,
        lr=3e-3,
        warmup_steps=3,
        log_every=1,
        val_every=3,
        ckpt_every=2,
        val_windows=4,
        precision="fp32",
    )
    cfg = TrainConfig(**(fields | cfg_changes))
    data = ToyData()
    val = [{"motion": torch.randn(4, 6, generator=torch.Generator().manual_seed(9))}]
    return Trainer(cfg, toy_model(), toy_flow_loss, data, tmp_path, save_weights, val_batches=val)


def test_resume_is_bitwise_identical(tmp_path):
    torch.set_num_threads(1)
    full = make_trainer(tmp_path / "full", steps=8, grad_accum=2, tensorboard=False)
    full.fit()

    half = make_trainer(tmp_path / "half", steps=4, grad_accum=2, tensorboard=False)
    half.fit()
    resumed = make_trainer(tmp_path / "half", steps=8, grad_accum=2, tensorboard=False)
    torch.manual_seed(12345)  # scramble every RNG the resume must restore
    assert resumed.resume()
    assert resumed.step == 4
    resumed.fit()

    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(full.ema.model.parameters(), resumed.ema.model.parameters(), strict=True):
        assert torch.equal(a, b)
    # the resumed run's metrics continue the first half's log without duplicates
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "half" / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["split"] == "train"
    ]
    assert steps == list(range(1, 9))


def test_checkpoint_layout_and_curve(tmp_path):
    trainer = make_trainer(tmp_path, steps=4)
    result = trainer.fit()
    assert result.step == 4
    for name in ("latest", "best", "step_0000002", "step_0000004"):
        assert (tmp_path / name / "model.safetensors").is_file(), name
    assert (tmp_path / "latest" / "train_state.json").is_file()
    assert json.loads((tmp_path / "latest" / "config.json").read_text())["step"] == 4
    assert (tmp_path / "loss_curve.png").stat().st_size > 1000
    assert any((tmp_path / "tb").iterdir())
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in records} == {"train", "val"}


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, steps=10)

    def exploding(model, batch, generator):
        loss, stats = toy_flow_loss(model, batch, generator)
        return (loss * float("nan") if trainer.step == 5 else loss), stats

    trainer.loss_fn = exploding
    with pytest.raises(TrainingDiverged, match="step 6"):
        trainer.fit()
    state = json.loads((tmp_path / "latest" / "train_state.json").read_text())
    assert state["step"] == 4  # the last checkpoint before the NaN, untouched
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_overfits_one_batch(tmp_path):
    torch.set_num_threads(1)
    cfg = TrainConfig(
        steps=300,
        batch_size=4,
        lr=3e-3,
        warmup_steps=10,
        log_every=50,
        val_every=0,
        ckpt_every=1000,
        precision="fp32",
    )
    batch = {"motion": torch.randn(4, 6, generator=torch.Generator().manual_seed(1))}

    def fixed_noise_loss(model, b, generator):  # same noise and times every step: a pure regression
        return toy_flow_loss(model, b, torch.Generator().manual_seed(0))

    model = nn.Sequential(nn.Linear(7, 64), nn.SiLU(), nn.Linear(64, 6))
    trainer = Trainer(cfg, model, fixed_noise_loss, [batch], tmp_path, save_weights)
    first = float(fixed_noise_loss(model, batch, None)[0].detach())
    result = trainer.fit()
    assert result.train_loss < 0.03 * first


@pytest.mark.parametrize(
    "changes", [{"steps": 0}, {"user_condition": "sometimes"}, {"precision": "fp8"}, {"ema_decay": 1.0}]
)
def test_bad_train_config(tmp_path, changes):
    with pytest.raises(ConfigError):
        make_trainer(tmp_path, **({"steps": 4} | changes))


# ------------------------------------------------------------------ the real DFoT, loss, loader, checkpoint
def real_trainer(tmp_path, data, out, steps, **changes):
    from avatar_forcing.train.distributed import DistInfo
    from avatar_forcing.train.pretrain import build_trainer
    from tests.train_helpers import micro_config

    fields = dict(
        steps=steps,
        batch_size=3,
        lr=1e-3,
        warmup_steps=2,
        log_every=1,
        val_every=2,
        ckpt_every=2,
        val_windows=4,
        precision="fp32",
        device="cpu",
    )
    return build_trainer(
        TrainConfig(**(fields | changes)), data, tmp_path / out, DistInfo(), mcfg=micro_config()
    )


def test_real_pipeline_resumes_bitwise_and_writes_a_loadable_checkpoint(tmp_path):
    from avatar_forcing.model.checkpoint import load_checkpoint, read_config
    from tests.train_helpers import make_corpus

    torch.set_num_threads(1)
    data = make_corpus(tmp_path / "corpus")
    full = real_trainer(tmp_path, data, "full", steps=6)
    full.fit()
    real_trainer(tmp_path, data, "half", steps=3).fit()
    resumed = real_trainer(tmp_path, data, "half", steps=6)
    assert resumed.resume() and resumed.step == 3
    resumed.fit()
    for (name, a), b in zip(
        full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert resumed.train_data.state_dict()["batches"] == 6

    model, cfg, stats = load_checkpoint(tmp_path / "full" / "latest")
    for a, b in zip(model.parameters(), full.ema.model.parameters(), strict=True):
        assert torch.equal(a, b)  # the saved model is the EMA
    extra = read_config(tmp_path / "full" / "latest")["extra"]
    assert extra["step"] == 6 and extra["train_config"]["steps"] == 6
    assert extra["feature_config"]["kind"] == "log_mel" and stats is not None and cfg.window == 20


def test_real_model_overfits_one_batch(tmp_path):
    from avatar_forcing.data.loader import LoaderConfig, TrainLoader
    from avatar_forcing.model.dfot import DFoT
    from avatar_forcing.model.flow import diffusion_forcing_loss
    from avatar_forcing.train.pretrain import flow_config
    from tests.train_helpers import make_corpus, micro_config

    torch.set_num_threads(1)
    batch = next(iter(TrainLoader(make_corpus(tmp_path / "corpus"), LoaderConfig(window=20, batch_size=2))))
    flow = flow_config(TrainConfig())

    def fixed(model, b, generator):  # the same noise, flow times and dropout every step
        return diffusion_forcing_loss(model, b, flow, torch.Generator().manual_seed(0))

    torch.manual_seed(0)
    model = DFoT(micro_config(width=48, depth=1))
    first = float(fixed(model, batch, None)[0].detach())
    cfg = TrainConfig(
        steps=250,
        batch_size=2,
        lr=3e-3,
        warmup_steps=20,
        log_every=50,
        val_every=0,
        ckpt_every=10_000,
        precision="fp32",
        device="cpu",
        ema_decay=0.0,
    )
    result = Trainer(cfg, model, fixed, [batch], tmp_path / "run", lambda *a: None).fit()
    assert result.train_loss < 0.05 * first


def test_config_errors_before_training(tmp_path):
    from avatar_forcing.train.pretrain import check_config
    from tests.train_helpers import micro_config

    with pytest.raises(ConfigError, match="multiple of B"):
        check_config(micro_config(window=25))
    with pytest.raises(ConfigError, match="motion dimension"):
        check_config(micro_config(motion_dim=12))
    with pytest.raises(ConfigError, match="audio feature dimension"):
        check_config(micro_config(audio_dim=9216))


def test_cli_errors_exit_2(tmp_path, capsys):
    from avatar_forcing.cli import main

    assert main(["train", "--data", str(tmp_path / "missing"), "--steps", "1"]) == 2
    assert main(["train", "dpo", "--data", str(tmp_path)]) == 2
    assert "--from" in capsys.readouterr().err


def test_user_dropout_rate_loss_weights_and_streamed_fraction_reach_the_flow_config():
    from avatar_forcing.model.config import FlowConfig
    from avatar_forcing.train.pretrain import flow_config

    assert flow_config(TrainConfig(flow_loss="l1")) == FlowConfig()  # the default recipe is unchanged
    assert flow_config(TrainConfig(p_drop_user=0.3)).p_drop_user == 0.3
    # the talking-only model never sees the user
    assert flow_config(TrainConfig(user_condition="drop_always", p_drop_user=0.3)).p_drop_user == 1.0
    with pytest.raises(ConfigError, match="p_drop_user"):
        TrainConfig(p_drop_user=1.0).validate()
    weighted = flow_config(TrainConfig(loss_weights={"mouthSmileLeft": 4.0}))
    assert weighted.channel_weights == (("mouthSmileLeft", 4.0),)
    with pytest.raises(ConfigError, match="loss_weights"):
        TrainConfig(loss_weights={"smile": 4.0}).validate()
    assert flow_config(TrainConfig(streamed_fraction=0.5)).streamed_fraction == 0.5
    with pytest.raises(ConfigError, match="streamed_fraction"):
        TrainConfig(streamed_fraction=1.5).validate()
    assert flow_config(TrainConfig(burn_in=30)).burn_in == 30
    with pytest.raises(ConfigError, match="burn_in"):
        TrainConfig(burn_in=-1).validate()
    with pytest.raises(ConfigError, match="start_fraction"):
        TrainConfig(start_fraction=2.0).validate()


def test_model_changes_reach_the_model(tmp_path):
    from avatar_forcing.config import load
    from avatar_forcing.model.config import model_preset
    from avatar_forcing.train.distributed import DistInfo
    from avatar_forcing.train.pretrain import build_trainer
    from tests.train_helpers import make_corpus

    path = tmp_path / "train.json"
    path.write_text(json.dumps({"model_preset": "tiny", "model_changes": {"cond_window": 25, "depth": 1},
                                "device": "cpu"}))
    cfg = load(TrainConfig, path)
    assert cfg.model_changes == {"cond_window": 25, "depth": 1}
    trainer = build_trainer(cfg, make_corpus(tmp_path / "corpus"), tmp_path / "run", DistInfo())
    assert trainer.model.cfg == model_preset("tiny", cond_window=25, depth=1) != model_preset("tiny")
    with pytest.raises(ConfigError, match="unknown ModelConfig fields"):
        model_preset("tiny", cond_windw=25)


def test_learning_rate_warms_up_holds_and_decays_to_zero():
    from avatar_forcing.train.trainer import lr_at

    cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, decay_steps=20)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == 1.0  # warm-up
    assert lr_at(50, cfg) == lr_at(80, cfg) == 1.0  # constant until the last 20 steps
    assert lr_at(90, cfg) == pytest.approx(0.5) and lr_at(99, cfg) == pytest.approx(0.05)  # decay
    assert lr_at(99, TrainConfig(steps=100, lr=1.0, warmup_steps=10)) == 1.0  # no decay by default
    with pytest.raises(ConfigError, match="decay_steps"):
        TrainConfig(decay_steps=-1).validate()

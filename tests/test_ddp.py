"""Data parallel training with 2 gloo processes on the CPU (torch.multiprocessing.spawn)."""

from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from torch import nn

from avatar_forcing.train import distributed
from avatar_forcing.train.config import TrainConfig
from avatar_forcing.train.trainer import Trainer

STEPS, PER_RANK, DIM = 3, 4, 5


def regression_loss(model, batch, generator):
    """Deterministic, so one process with both ranks' windows sees exactly the same objective."""
    return (model(batch["x"]) - batch["y"]).abs().mean(), {}


def dataset(n: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return {"x": torch.randn(n, DIM, generator=g), "y": torch.randn(n, 2, generator=g)}


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(DIM, 16), nn.Tanh(), nn.Linear(16, 2))


def train(out_dir, batches, dist_info=None) -> Trainer:
    cfg = TrainConfig(
        steps=STEPS,
        batch_size=PER_RANK,
        lr=1e-2,
        warmup_steps=0,
        log_every=1,
        val_every=0,
        ckpt_every=100,
        precision="fp32",
        tensorboard=False,
        device="cpu",
    )
    trainer = Trainer(cfg, make_model(), regression_loss, batches, out_dir, lambda *a: None, dist=dist_info)
    trainer.fit()
    return trainer


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    info = distributed.setup("cpu")
    data = dataset(2 * PER_RANK)
    mine = {k: v[rank::world] for k, v in data.items()}  # this rank's shard: disjoint from the other's
    trainer = train(out_dir, [mine], info)
    tensors = {f"param.{i}": p.detach() for i, p in enumerate(trainer.model.parameters())}
    tensors |= {f"grad.{i}": p.grad for i, p in enumerate(trainer.model.parameters())}
    save_file(tensors, os.path.join(out_dir, f"rank{rank}.safetensors"))
    distributed.teardown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_match_one_process_with_twice_the_batch(tmp_path):
    mp.spawn(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2))
    # all-reduced gradients (of the last step) and the resulting weights agree across ranks
    for key in r0:
        assert torch.equal(r0[key], r1[key]), key

    torch.set_num_threads(1)
    single = train(tmp_path / "single", [dataset(2 * PER_RANK)])
    for i, p in enumerate(single.model.parameters()):
        torch.testing.assert_close(r0[f"param.{i}"], p.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(r0[f"grad.{i}"], p.grad, rtol=1e-5, atol=1e-6)
    # and the run actually moved the weights
    assert not torch.equal(r0["param.0"], make_model()[0].weight.detach())

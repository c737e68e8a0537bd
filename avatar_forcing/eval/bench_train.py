"""`avatar-forcing bench train`: training throughput of a preset on this machine, and FLOP counts.

Throughput runs the real optimizer step (forward, backward, clipping, Adam, EMA) of the diffusion-forcing
loss on seeded random windows of the right shapes, so data loading is not included. FLOPs are counted by
``torch.utils.flop_counter`` (matmuls and attention; elementwise ops are not counted), for the `paper`
preset by default:
  - training: forward + backward of one N-frame window, divided by its N / B blocks;
  - streaming inference: one steady-state B-frame block (context + B frames against a full KV cache,
    3 guidance branches batched, nfe Euler passes plus the cache pass), the paper's per-block latency unit.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from avatar_forcing.model.config import FlowConfig, ModelConfig, SamplerConfig, model_preset
from avatar_forcing.model.dfot import DFoT
from avatar_forcing.model.flow import diffusion_forcing_loss
from avatar_forcing.model.streaming import StreamingGenerator
from avatar_forcing.train.config import train_preset
from avatar_forcing.train.pretrain import df_loss
from avatar_forcing.train.trainer import Trainer


@dataclass
class BenchTrainConfig:
    preset: str = "tiny"  # throughput preset (model + batch size)
    steps: int = 20  # timed optimizer steps
    warmup: int = 3  # untimed steps first (allocator, autotuning)
    batch_size: int = 0  # 0: the preset's
    threads: int = 0  # torch threads, 0: leave as is
    flops_preset: str = "paper"  # "" skips the FLOP count
    seed: int = 0


def random_batch(cfg: ModelConfig, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    n = cfg.window
    return {
        "motion": torch.randn(batch, n, cfg.motion_dim, generator=generator),
        "avatar_audio": torch.randn(batch, n, cfg.audio_dim, generator=generator),
        "user_audio": torch.randn(batch, n, cfg.audio_dim, generator=generator),
        "user_motion": torch.randn(batch, n, cfg.user_motion_dim, generator=generator),
        "reference": torch.randn(batch, cfg.motion_dim, generator=generator),
    }


def measure_throughput(bc: BenchTrainConfig) -> dict[str, float]:
    tcfg = train_preset(bc.preset)
    tcfg.batch_size = bc.batch_size or tcfg.batch_size
    mcfg = model_preset(tcfg.model_preset)
    torch.manual_seed(bc.seed)
    model = DFoT(mcfg)
    g = torch.Generator().manual_seed(bc.seed)
    batches = [random_batch(mcfg, tcfg.batch_size, g) for _ in range(4)]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(tcfg, model, df_loss(FlowConfig()), batches, tmp, save_model=lambda *a: None)
        for _ in range(bc.warmup):
            trainer.train_step()
        start = time.perf_counter()
        for _ in range(bc.steps):
            trainer.train_step()
        seconds = time.perf_counter() - start
    steps_per_s = bc.steps / seconds
    return {
        "preset": bc.preset,
        "device": str(trainer.device),
        "threads": torch.get_num_threads(),
        "params": model.num_parameters(),
        "batch_size": tcfg.batch_size,
        "window": mcfg.window,
        "steps_per_s": steps_per_s,
        "samples_per_s": steps_per_s * tcfg.batch_size,
        "frames_per_s": steps_per_s * tcfg.batch_size * mcfg.window,
    }


def count_flops(preset: str, nfe: int = SamplerConfig().nfe) -> dict[str, float]:
    mcfg = model_preset(preset)
    torch.manual_seed(0)
    model = DFoT(mcfg)
    g = torch.Generator().manual_seed(0)
    batch = random_batch(mcfg, 1, g)
    blocks = mcfg.window // mcfg.block_size

    counter = FlopCounterMode(display=False)
    with counter:
        diffusion_forcing_loss(model, batch, FlowConfig(), g)[0].backward()
    train_flops = counter.get_total_flops()

    model.eval()
    sampler = SamplerConfig(nfe=nfe, first_block="short")
    stream = StreamingGenerator(model, sampler, batch["reference"], seed=0)
    # Fill the KV cache to its steady-state size, then count one block.
    warm_blocks = -(-mcfg.cache_frames // mcfg.block_size) + 1
    cond = batch["avatar_audio"][:, : mcfg.block_size], batch["user_audio"][:, : mcfg.block_size]
    user_motion = batch["user_motion"][:, : mcfg.block_size]
    with torch.no_grad():
        for _ in range(warm_blocks):
            stream.step(*cond, user_motion)
        counter = FlopCounterMode(display=False)
        with counter:
            stream.step(*cond, user_motion)
    return {
        "flops_preset": preset,
        "flops_params": model.num_parameters(),
        "train_flops_per_window": train_flops,
        "train_flops_per_block": train_flops / blocks,
        "infer_flops_per_block": counter.get_total_flops(),
        "nfe": nfe,
    }


def bench_train_arguments(parser: argparse.ArgumentParser) -> None:
    d = BenchTrainConfig()
    parser.add_argument("--preset", default=d.preset, help="throughput preset (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=d.steps, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=d.warmup, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="windows per step (0: preset)")
    parser.add_argument("--threads", type=int, default=d.threads, help="torch threads (0: default)")
    parser.add_argument("--flops-preset", default=d.flops_preset, help="preset to count FLOPs for ('' skips)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")


def bench_train_run(args: argparse.Namespace) -> int:
    bc = BenchTrainConfig(
        args.preset, args.steps, args.warmup, args.batch_size, args.threads, args.flops_preset
    )
    if bc.threads:
        torch.set_num_threads(bc.threads)
    result = measure_throughput(bc)
    print(
        f"training throughput, preset {result['preset']} ({result['params'] / 1e6:.2f}M params) on "
        f"{result['device']} with {result['threads']} threads, batch {result['batch_size']} x "
        f"{result['window']} frames:"
    )
    print(
        f"  {result['steps_per_s']:.2f} steps/s   {result['samples_per_s']:.1f} samples (windows)/s   "
        f"{result['frames_per_s']:.0f} frames/s"
    )
    if bc.flops_preset:
        flops = count_flops(bc.flops_preset)
        result |= flops
        print(f"FLOPs, preset {flops['flops_preset']} ({flops['flops_params'] / 1e6:.1f}M params):")
        print(
            f"  training (fwd+bwd): {flops['train_flops_per_block'] / 1e9:.1f} GFLOP per block "
            f"({flops['train_flops_per_window'] / 1e9:.1f} per window)"
        )
        print(
            f"  streaming inference: {flops['infer_flops_per_block'] / 1e9:.1f} GFLOP per block "
            f"({flops['nfe']} NFE x 3 CFG branches + cache pass)"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0

"""`avatar-forcing bench model`: the DFoT streaming step alone, in ms per block on this machine.

Runs `StreamingGenerator.step` (3 guidance branches batched, a "short" first block, then steady state with a
full cache) on seeded random conditions and an untrained model with random weights (the cost does not
depend on the values). Per block it reports wall-clock ms and thread CPU ms: on a shared machine the wall
clock also counts waiting for a core, the thread CPU time is what one dedicated core spends. Alongside, the
"matmul floor": the same block's linear layers alone (addmm on the same shapes), which no amount of
overhead removal gets below at this width and depth.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from avatar_forcing.model.config import SamplerConfig, model_preset
from avatar_forcing.model.dfot import DFoT
from avatar_forcing.model.linear import Linear
from avatar_forcing.model.sampler import BRANCHES
from avatar_forcing.model.streaming import StreamingGenerator

FPS = 25  # motion frames per second: a B-frame block must take under B / FPS seconds


@dataclass
class BenchModelConfig:
    preset: str = "tiny"
    width: int = 0  # 0: the preset's (to measure the cost of other sizes)
    depth: int = 0
    nfe: int = 10
    blocks: int = 25  # timed blocks
    warmup: int = 5  # untimed blocks first (the first block, allocator, weight copies)
    threads: int = 1
    target_ms: float = 50.0
    seed: int = 0


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def matmul_floor_ms(model: DFoT, tokens: int, passes: int, repeats: int = 5) -> float:
    """Thread CPU ms of one block's linear layers alone: `passes` x each per-pass `Linear`, `tokens` rows."""
    layers = [  # the cross-attention key/value projections run once per block, not per pass
        m for name, m in model.named_modules() if isinstance(m, Linear) and not name.endswith("cross_attn.kv")
    ]
    inputs = [torch.randn(tokens, m.in_features) for m in layers]
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.thread_time()
            for _ in range(passes):
                for layer, x in zip(layers, inputs, strict=True):
                    layer(x)
            best = min(best, time.thread_time() - start)
    return 1000 * best


def bench_model(bc: BenchModelConfig) -> dict:
    changes = {k: v for k, v in (("width", bc.width), ("depth", bc.depth)) if v}
    cfg = model_preset(bc.preset, **changes)
    torch.manual_seed(bc.seed)
    model = DFoT(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)  # the default init zeroes the output layers
    sampler = SamplerConfig(nfe=bc.nfe, first_block="short")
    gen = StreamingGenerator(model, sampler, torch.zeros(cfg.motion_dim), seed=bc.seed)
    g = torch.Generator().manual_seed(bc.seed)
    wall, cpu = [], []
    with torch.inference_mode():
        for _ in range(bc.warmup + bc.blocks):
            n = gen.frames_needed
            conds = (
                torch.randn(1, n, cfg.audio_dim, generator=g),
                torch.randn(1, n, cfg.audio_dim, generator=g),
                torch.randn(1, n, cfg.user_motion_dim, generator=g),
            )
            start_wall, start_cpu = time.perf_counter(), time.thread_time()
            gen.step(*conds)
            cpu.append(1000 * (time.thread_time() - start_cpu))
            wall.append(1000 * (time.perf_counter() - start_wall))
    wall, cpu = wall[bc.warmup :], cpu[bc.warmup :]
    tokens = BRANCHES * (cfg.block_size + cfg.context)
    return {
        "config": asdict(bc),
        "width": cfg.width,
        "depth": cfg.depth,
        "params": model.num_parameters(),
        "budget_ms": 1000 * cfg.block_size / FPS,
        "wall_ms_median": _median(wall),
        "wall_ms_min": min(wall),
        "cpu_ms_median": _median(cpu),
        "cpu_ms_min": min(cpu),
        "matmul_floor_ms": matmul_floor_ms(model, tokens, bc.nfe + 1),
    }


def bench_model_arguments(parser: argparse.ArgumentParser) -> None:
    d = BenchModelConfig()
    parser.add_argument("--preset", default=d.preset, help="model preset (default: %(default)s)")
    parser.add_argument("--width", type=int, default=d.width, help="override the preset's width (0: keep)")
    parser.add_argument("--depth", type=int, default=d.depth, help="override the preset's depth (0: keep)")
    parser.add_argument("--nfe", type=int, default=d.nfe, help="Euler steps per block")
    parser.add_argument("--blocks", type=int, default=d.blocks, help="timed blocks")
    parser.add_argument("--warmup", type=int, default=d.warmup, help="untimed blocks first")
    parser.add_argument("--threads", type=int, default=d.threads, help="torch threads (default: 1 core)")
    parser.add_argument("--target-ms", type=float, default=d.target_ms, help="per-block target to compare")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")


def bench_model_run(args: argparse.Namespace) -> int:
    bc = BenchModelConfig(
        args.preset, args.width, args.depth, args.nfe, args.blocks, args.warmup, args.threads, args.target_ms
    )
    torch.set_num_threads(bc.threads)
    r = bench_model(bc)
    print(
        f"DFoT streaming step, preset {bc.preset} (width {r['width']}, depth {r['depth']}, "
        f"{r['params'] / 1e6:.2f}M params), {bc.nfe} NFE x {BRANCHES} CFG branches + cache pass, "
        f"{bc.threads} thread(s), {bc.blocks} blocks:"
    )
    print(f"  wall        median {r['wall_ms_median']:6.1f} ms  min {r['wall_ms_min']:6.1f} ms per block")
    print(f"  thread CPU  median {r['cpu_ms_median']:6.1f} ms  min {r['cpu_ms_min']:6.1f} ms per block")
    print(f"  matmul floor (linear layers alone) {r['matmul_floor_ms']:6.1f} ms per block")
    print(
        f"  target {bc.target_ms:.0f} ms: {'met' if r['cpu_ms_median'] <= bc.target_ms else 'NOT met'} "
        f"(thread CPU median); real-time budget {r['budget_ms']:.0f} ms per block"
    )
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))
    return 0

"""The training loop shared by diffusion-forcing pretraining and DPO fine-tuning.

One optimizer step = ``grad_accum`` micro-batches -> (all-reduced under DDP) gradients -> clip -> Adam
-> EMA. The loop knows nothing about motion: it calls ``loss_fn(model, batch, generator)``, which
returns ``(loss, stats)``. All randomness of a step (noise, flow times, condition dropout) comes from
``generator``, whose state is checkpointed together with every other RNG and the data position, so
a resumed run is bit-identical to an uninterrupted one.

A run directory holds ``latest/`` (everything needed to resume), ``best/`` (lowest validation loss
of the EMA weights), ``step_XXXXXXX/`` (periodic), ``metrics.jsonl``, ``tb/`` and ``loss_curve.png``.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from avatar_forcing import config as config_io
from avatar_forcing.errors import AvatarForcingError, CheckpointError
from avatar_forcing.train import distributed
from avatar_forcing.train.config import TrainConfig
from avatar_forcing.train.distributed import DistInfo
from avatar_forcing.train.ema import EMA
from avatar_forcing.train.logs import CURVE_FILE, RunLogger, plot_loss_curve
from avatar_forcing.train.state import load_rng, load_train_state, save_rng, save_train_state

Batch = dict[str, torch.Tensor]
LossFn = Callable[[nn.Module, Batch, torch.Generator], tuple[torch.Tensor, dict[str, float]]]
# Writes the model checkpoint (safetensors + JSON config) of ``module`` into a directory.
SaveModelFn = Callable[[Path, nn.Module, dict[str, Any]], None]

LATEST, BEST = "latest", "best"
TRAIN_CONFIG_FILE = "train_config.json"


class TrainingDiverged(AvatarForcingError):
    """The loss or the gradients became NaN/inf; the last good checkpoint is kept."""


class BatchSource(Protocol):
    """Batches of window dicts; ``state_dict`` is the data position (JSON-able) for exact resume."""

    def __iter__(self) -> Iterator[Batch]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class TrainResult:
    step: int
    train_loss: float
    val_loss: float | None
    best_val_loss: float | None
    seconds: float
    out_dir: Path


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up over ``warmup_steps`` optimizer steps, then constant (the paper uses a fixed lr), then
    a linear decay towards 0 over the last ``decay_steps``."""
    warmup = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    decay = min(1.0, (cfg.steps - step) / cfg.decay_steps) if cfg.decay_steps else 1.0
    return cfg.lr * min(warmup, decay)


def use_bf16(precision: str, device: torch.device) -> bool:
    """bf16 autocast on CUDA devices that support it; off on the CPU unless asked for."""
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


class Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        model: nn.Module,
        loss_fn: LossFn,
        train_data: BatchSource | Iterable,
        out_dir: str | Path,
        save_model: SaveModelFn,
        val_batches: list[Batch] | None = None,
        val_loss_fn: LossFn | None = None,
        dist: DistInfo | None = None,
        extra_config: dict[str, Any] | None = None,
        log_name: str = "train",
    ):
        cfg.validate()
        self.cfg = cfg
        self.dist = dist or DistInfo(device=distributed.pick_device(cfg.device))
        self.device = self.dist.device
        self.model = model.to(self.device)
        self.ddp = distributed.wrap(self.model, self.dist)
        self.loss_fn = loss_fn
        self.val_loss_fn = val_loss_fn or loss_fn
        self.train_data = train_data
        self.val_batches = val_batches or []
        self.out_dir = Path(out_dir)
        self.save_model = save_model
        self.extra_config = extra_config or {}
        self.log_name = log_name
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(
            params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay
        )
        self.ema = EMA(self.model, cfg.ema_decay)
        # Every rank draws different noise; the seed is fixed so runs are reproducible.
        self.generator = torch.Generator(device="cpu").manual_seed(cfg.seed * 1000 + self.dist.rank)
        self.bf16 = use_bf16(cfg.precision, self.device)
        self.step = 0
        self.best_val: float | None = None
        self.last_val: float | None = None
        self._iter: Iterator[Batch] | None = None

    # ----------------------------------------------------------------------------------------- loop
    def fit(self) -> TrainResult:
        cfg = self.cfg
        logger = RunLogger(
            self.out_dir, cfg.steps, self.step, enabled=self.dist.is_main, tensorboard=cfg.tensorboard
        )
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            config_io.save(cfg, self.out_dir / TRAIN_CONFIG_FILE)
        start, train_loss = time.perf_counter(), math.nan
        try:
            while self.step < cfg.steps:
                t0 = time.perf_counter()
                loss, stats, grad_norm = self.train_step()
                self.step += 1
                train_loss = loss
                logger.advance()
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    dt = time.perf_counter() - t0
                    logger.log(
                        self.step,
                        "train",
                        {
                            "loss": loss,
                            "grad_norm": grad_norm,
                            "lr": self.optimizer.param_groups[0]["lr"],
                            "steps_per_s": 1.0 / max(dt, 1e-9),
                            **stats,
                        },
                    )
                if (cfg.val_every and self.step % cfg.val_every == 0) or self.step == cfg.steps:
                    self._validate(logger)
                if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps:
                    self.save(periodic=cfg.keep_periodic and self.step % cfg.ckpt_every == 0)
        except TrainingDiverged as exc:
            logger.message(str(exc))
            raise
        finally:
            logger.close()
        if self.dist.is_main:
            plot_loss_curve(self.out_dir / "metrics.jsonl", self.out_dir / CURVE_FILE, title=self.log_name)
        return TrainResult(
            self.step, train_loss, self.last_val, self.best_val, time.perf_counter() - start, self.out_dir
        )

    def train_step(self) -> tuple[float, dict[str, float], float]:
        cfg = self.cfg
        lr = lr_at(self.step, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        self.ddp.train()
        total, stats_sum = 0.0, {}
        for micro in range(cfg.grad_accum):
            batch = self._to_device(self._next_batch())
            # Under DDP, only the last micro-batch all-reduces the accumulated gradients.
            sync = self.dist.enabled and micro < cfg.grad_accum - 1
            with self.ddp.no_sync() if sync else contextlib.nullcontext(), self._autocast():
                loss, stats = self.loss_fn(self.ddp, batch, self.generator)
            (loss / cfg.grad_accum).backward()
            total += float(loss.detach()) / cfg.grad_accum
            for k, v in stats.items():
                stats_sum[k] = stats_sum.get(k, 0.0) + float(v) / cfg.grad_accum
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        max_norm = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        bad = not (math.isfinite(total) and math.isfinite(grad_norm))
        if distributed.broadcast_flag(bad, self.device):
            latest = self.out_dir / LATEST
            kept = (
                f"the last good checkpoint is {latest}"
                if latest.is_dir()
                else "no checkpoint was written yet"
            )
            raise TrainingDiverged(
                f"loss became non-finite at step {self.step + 1} (loss {total}, grad norm "
                f"{grad_norm}); stopped, {kept}. Try a lower lr or precision fp32."
            )
        self.optimizer.step()
        self.ema.update(self.model)
        return total, stats_sum, grad_norm

    def _next_batch(self) -> Batch:
        if self._iter is None:
            self._iter = iter(self.train_data)
        try:
            return next(self._iter)
        except StopIteration:  # one pass over the data is done: start the next epoch
            self._iter = iter(self.train_data)
            try:
                return next(self._iter)
            except StopIteration:
                raise AvatarForcingError("the training data yielded no windows") from None

    def _to_device(self, batch: Batch) -> Batch:
        return {
            k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
        }

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    # ----------------------------------------------------------------------------------- validation
    @torch.no_grad()
    def evaluate(self, module: nn.Module) -> float | None:
        """Mean loss over the fixed held-out batches with fixed noise and flow times."""
        if not self.val_batches:
            return None
        was_training = module.training
        module.eval()
        generator = torch.Generator(device="cpu").manual_seed(self.cfg.val_seed)
        losses = []
        for batch in self.val_batches:
            with self._autocast():
                loss, _ = self.val_loss_fn(module, self._to_device(batch), generator)
            losses.append(float(loss))
        module.train(was_training)
        return sum(losses) / len(losses)

    def _validate(self, logger: RunLogger) -> None:
        # Rank 0 validates the unwrapped model (no DDP collectives); the others wait.
        if self.dist.is_main and self.val_batches:
            val, val_ema = self.evaluate(self.model), self.evaluate(self.ema.model)
            self.last_val = val_ema
            logger.log(self.step, "val", {"loss": val, "ema_loss": val_ema})
            if self.best_val is None or val_ema < self.best_val:
                self.best_val = val_ema
                self._write_model(self.out_dir / BEST)
        distributed.barrier()

    # ---------------------------------------------------------------------------------- checkpoints
    def _model_extra(self) -> dict[str, Any]:
        return {"step": self.step, "train_config": config_io.to_dict(self.cfg), **self.extra_config}

    def _write_model(self, directory: Path) -> None:
        tmp = _fresh(directory.with_name(directory.name + ".tmp"))
        self.save_model(tmp, self.ema.model, self._model_extra())
        _replace_dir(tmp, directory)

    def save(self, periodic: bool = False) -> None:
        """Write ``latest/`` (model = EMA weights, plus the full training state); rank 0 writes the
        shared files, every rank its own RNG state and data position."""
        latest, tmp = self.out_dir / LATEST, self.out_dir / (LATEST + ".tmp")
        if self.dist.is_main:
            _fresh(tmp)
            self.save_model(tmp, self.ema.model, self._model_extra())
            info = {
                "step": self.step,
                "ema_updates": self.ema.updates,
                "best_val": self.best_val,
                "world_size": self.dist.world_size,
                "train_config": config_io.to_dict(self.cfg),
            }
            save_train_state(tmp, self.model.state_dict(), self.ema.state_dict(), self.optimizer, info)
        distributed.barrier()
        data_state = self.train_data.state_dict() if hasattr(self.train_data, "state_dict") else None
        save_rng(tmp, self.dist.rank, self.generator, {"data": data_state})
        distributed.barrier()
        if self.dist.is_main:
            _replace_dir(tmp, latest)
            if periodic:
                shutil.copytree(latest, self.out_dir / f"step_{self.step:07d}", dirs_exist_ok=True)
        distributed.barrier()

    def resume(self, directory: str | Path | None = None) -> bool:
        """Restore everything from ``latest/`` (or ``directory``); False if there is nothing to resume."""
        directory = Path(directory) if directory else self.out_dir / LATEST
        if not directory.is_dir():
            return False
        raw, ema, info = load_train_state(directory, self.optimizer)
        if info.get("world_size", 1) != self.dist.world_size:
            raise CheckpointError(
                f"{directory} was saved by {info.get('world_size')} processes; resume it with "
                f"the same number (this run has {self.dist.world_size})"
            )
        try:
            self.model.load_state_dict(raw)
            self.ema.load_state_dict(ema, info["ema_updates"])
        except RuntimeError as exc:
            raise CheckpointError(f"{directory} holds weights of a different model: {exc}") from None
        self.step = int(info["step"])
        self.best_val = info.get("best_val")
        extra = load_rng(directory, self.dist.rank, self.generator)
        if extra.get("data") is not None and hasattr(self.train_data, "load_state_dict"):
            self.train_data.load_state_dict(extra["data"])
        self._iter = None
        return True


def _fresh(directory: Path) -> Path:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


def _replace_dir(src: Path, dst: Path) -> None:
    """Swap ``src`` in for ``dst`` so that a crash never leaves a half-written ``dst``."""
    old = dst.with_name(dst.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if dst.exists():
        dst.rename(old)
    src.rename(dst)
    if old.exists():
        shutil.rmtree(old)

"""Training logs: TensorBoard scalars, a JSONL record per log line, a tqdm bar and a loss-curve PNG.

Only rank 0 logs; on other ranks every method is a no-op.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from tqdm import tqdm

METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "loss_curve.png"


class RunLogger:
    def __init__(
        self,
        out_dir: str | Path,
        total_steps: int,
        start_step: int = 0,
        enabled: bool = True,
        tensorboard: bool = True,
    ):
        self.enabled = enabled
        self.out_dir = Path(out_dir)
        self._tb = None
        self._bar = None
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.out_dir / METRICS_FILE
        _truncate_after(self.jsonl_path, start_step)  # a resumed run rewrites what followed its checkpoint
        self._jsonl = self.jsonl_path.open("a")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.out_dir / "tb"), purge_step=start_step or None)
            except ImportError:  # tensorboard is optional at run time; JSONL always works
                self._tb = None
        self._bar = tqdm(total=total_steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True)

    def log(self, step: int, split: str, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        record = {"step": step, "split": split, **{k: float(v) for k, v in values.items()}}
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(f"{split}/{key}", value, step)
        if split == "train" and self._bar is not None and "loss" in values:
            self._bar.set_postfix(loss=f"{values['loss']:.4f}")
        if split == "val" and self._bar is not None:
            self._bar.write(f"step {step}: " + ", ".join(f"val/{k} {v:.4f}" for k, v in values.items()))

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def message(self, text: str) -> None:
        if self.enabled:
            (self._bar.write if self._bar is not None else print)(text)

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.close()
        self._jsonl.close()


def read_metrics(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _truncate_after(path: Path, step: int) -> None:
    if not path.is_file():
        return
    keep = [r for r in read_metrics(path) if r["step"] <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in keep))


def plot_loss_curve(metrics_path: str | Path, png_path: str | Path, title: str = "training") -> Path | None:
    """Train loss (raw and smoothed) and validation loss against step; None if nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [(r["step"], r["loss"]) for r in records if r["split"] == "train" and "loss" in r]
    val = [(r["step"], r["loss"]) for r in records if r["split"] == "val" and "loss" in r]
    val_ema = [(r["step"], r["ema_loss"]) for r in records if r["split"] == "val" and "ema_loss" in r]
    if not train and not val:
        return None
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    if train:
        steps, losses = zip(*train, strict=True)
        ax.plot(steps, losses, color="tab:blue", alpha=0.25, lw=0.8)
        ax.plot(steps, _smooth(list(losses)), color="tab:blue", lw=1.5, label="train (smoothed)")
    if val:
        ax.plot(*zip(*val, strict=True), "o-", color="tab:orange", lw=1.5, ms=3, label="val")
    if val_ema:
        ax.plot(
            *zip(*val_ema, strict=True), "s--", color="tab:green", lw=1.2, ms=3, label="val (EMA weights)"
        )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    if all(v > 0 for _, v in train + val):
        ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path)
    plt.close(fig)
    return png_path


def _smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """TensorBoard-style exponential smoothing with bias correction."""
    out, acc = [], 0.0
    for i, v in enumerate(values, start=1):
        acc = weight * acc + (1 - weight) * v
        out.append(acc / (1 - weight**i))
    return out if all(math.isfinite(v) for v in out) else values

"""Presenting an evaluation: a rich table in the terminal, a Markdown table and a PNG chart.

Columns follow the paper's Table 6 (rPCC, SID, Var, FD) plus this project's lip-sync and reaction
probes. Every header names the metric's variant (docs/EVALUATION.md defines them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from avatar_forcing.eval.evaluate import EvalReport, save_json


@dataclass(frozen=True)
class Column:
    key: str  # metric key in Row.metrics
    header: str
    better: str  # "↓", "↑" or "" (no direction: compare with the ground truth row)
    digits: int = 3


def columns(report: EvalReport) -> list[Column]:
    ke, kp, var = report.config["sid_k_exp"], report.config["sid_k_pose"], report.config["var_variant"]
    return [
        Column("rpcc_flat_exp", "rPCC-Exp (flat)", "↓"),
        Column("rpcc_flat_pose", "rPCC-Pose (flat)", "↓"),
        Column("rpcc_per_dim_exp", "rPCC-Exp (per-dim)", "↓"),
        Column("rpcc_per_dim_pose", "rPCC-Pose (per-dim)", "↓"),
        Column(f"sid_k{ke}_exp", f"SID-Exp (k={ke})", "↑"),
        Column(f"sid_k{kp}_pose", f"SID-Pose (k={kp})", "↑"),
        Column(f"var_{var}_exp", f"Var-Exp ({var})", "", 4),
        Column(f"var_{var}_pose", f"Var-Pose ({var})", "", 4),
        Column("fd_exp", "FD-Exp", "↓"),
        Column("fd_pose", "FD-Pose", "↓", 4),
        Column("lip_r", "Lip-sync r", "↑"),
        Column("mouth_mae", "Mouth MAE", "↓"),
        Column("nod_recall", "Nod recall", "↑"),
        Column("nod_precision", "Nod precision", "↑"),
        Column("nod_latency_s", "Nod latency (s)", ""),
        Column("smile_r", "Smile-mirror r", ""),
        Column("smiles_answered", "Smiles answered in time", ""),
        Column("block_seam", "Block seam", ""),
    ]


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def _row_name(row) -> str:
    return row.label + (" (talking-only)" if row.talking_only else "")


def markdown(report: EvalReport) -> str:
    cols = columns(report)
    lines = ["| model | " + " | ".join(f"{c.header}{c.better}" for c in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for row in report.rows:
        cells = ["skipped" if c.key in report.skipped and not math.isfinite(row.metrics.get(c.key, math.nan))
                 else fmt(row.metrics.get(c.key), c.digits) for c in cols]
        lines.append(f"| {_row_name(row)} | " + " | ".join(cells) + " |")
    lines.append("")
    cfg = report.config
    samples = cfg.get("samples", 1)
    per = f" x {samples} generations with their own noise" if samples > 1 else ""
    lines.append(f"{len(report.clips)} clips (held-out conversation x participant as avatar{per}), "
                 f"first {cfg['seconds'] or 'all'} s, {cfg['nfe']} NFE, "
                 f"w_a={cfg['cfg_audio']}, w_u={cfg['cfg_user']}, seed {cfg['seed']}.")
    for name, why in report.skipped.items():
        lines.append(f"Skipped {name}: {why}.")
    if report.preference:
        lines.append("")
        lines.append(preference_line(report.preference))
    return "\n".join(lines) + "\n"


def preference_line(p: dict) -> str:
    groups = ", ".join(f"{g} {v:.1%}" for g, v in p["group_win_rates"].items())
    return (f"Automatic preference PROXY (not a human study): {p['a']} vs {p['b']} wins "
            f"{p['win_rate']:.1%} of {p['clips']} clips ({p['wins']} wins, {p['ties']} ties, "
            f"{p['losses']} losses; {groups}). "
            f"For scale only, the paper's human study preferred Avatar Forcing over INFP* "
            f"{p['paper_human_preference']:.1%}.")


def print_report(report: EvalReport) -> None:
    from rich.console import Console
    from rich.table import Table

    cols = columns(report)
    table = Table(title=f"Held-out evaluation ({len(report.clips)} clips, streaming engine)")
    table.add_column("model", style="bold")
    for c in cols:
        table.add_column(f"{c.header}{c.better}", justify="right")
    for row in report.rows:
        table.add_row(_row_name(row), *[fmt(row.metrics.get(c.key), c.digits) for c in cols])
    console = Console(width=max(160, 12 * len(cols)))
    console.print(table)
    for name, why in report.skipped.items():
        console.print(f"[yellow]skipped {name}[/yellow]: {why}")
    if report.preference:
        console.print(preference_line(report.preference))


def chart(report: EvalReport, path: str | Path) -> Path:
    """One small bar chart per column, one bar per row (the ground truth in grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = columns(report)
    ncol = 5
    nrow = math.ceil(len(cols) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow))
    colors = ["#9e9e9e"] + [plt.get_cmap("tab10")(i) for i in range(len(report.rows) - 1)]
    names = [r.label for r in report.rows]
    for ax, c in zip(axes.flat, cols, strict=False):
        values = [r.metrics.get(c.key, math.nan) for r in report.rows]
        finite = [v if v is not None and math.isfinite(v) else 0.0 for v in values]
        bars = ax.bar(range(len(values)), finite, color=colors)
        for b, v in zip(bars, values, strict=True):
            ax.annotate(fmt(v, 3), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                        va="bottom", fontsize=7)
        ax.set_title(f"{c.header} {c.better}".strip(), fontsize=9)
        ax.set_xticks(range(len(values)), names, rotation=30, fontsize=7, ha="right")
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    fig.suptitle(f"Held-out evaluation on {len(report.clips)} clips (streaming engine); grey = ground truth",
                 fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(report: EvalReport, out: str | Path) -> list[Path]:
    """eval.json (everything, per clip too), eval.md and eval.png in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "eval.md"
    md.write_text(markdown(report))
    return [save_json(report, out / "eval.json"), md, chart(report, out / "eval.png")]

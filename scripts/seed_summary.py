"""Average several `avatar-forcing eval model` runs that differ only by --seed into one Markdown table.

    python scripts/seed_summary.py runs/ablation5/eval_s0 runs/ablation5/eval_s1 ... [--keys k1,k2]

Each cell is the mean over the runs, with the range (min..max) underneath when the runs disagree; the last
column counts the runs in which each row beat the reference row (--versus, default the row "b") on every
listed direction-aware key. One evaluation of 32 clips moves rPCC by a few hundredths with the noise seed
(docs/EVALUATION.md), so a difference is only read as real when it holds in most seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

DEFAULT_KEYS = (
    ("rpcc_flat_exp", "rPCC-Exp flat↓", "lower"),
    ("rpcc_flat_pose", "rPCC-Pose flat↓", "lower"),
    ("rpcc_per_dim_exp", "rPCC-Exp per-dim↓", "lower"),
    ("rpcc_per_dim_pose", "rPCC-Pose per-dim↓", "lower"),
    ("lip_r", "lip-sync r↑", "higher"),
    ("nod_recall", "nod recall↑", "higher"),
    ("nod_precision", "nod precision↑", "higher"),
    ("smile_r", "smile-mirror r", "higher"),
    ("var_flat_pose", "Var-Pose", ""),
    ("fd_pose", "FD-Pose↓", "lower"),
)


def load(run: Path) -> dict[str, dict[str, float]]:
    report = json.loads((run / "eval.json").read_text())
    return {row["label"]: row["metrics"] for row in report["rows"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="eval output folders (each holds eval.json)")
    p.add_argument("--versus", default="b", help="row that the win counts compare against")
    args = p.parse_args()
    runs = [load(r) for r in args.runs]
    labels = list(runs[0])
    keys = [k for k in DEFAULT_KEYS if k[0] in runs[0][labels[0]]]
    header = "| model | " + " | ".join(k[1] for k in keys) + f" | wins vs {args.versus} (per key) |"
    lines = [header, "|---|" + "---|" * (len(keys) + 1)]
    for label in labels:
        cells, wins = [], []
        for key, _, direction in keys:
            values = [r[label].get(key) for r in runs if r.get(label, {}).get(key) is not None]
            if not values:
                cells.append("–")
                continue
            mean = statistics.fmean(values)
            spread = f" ({min(values):.3f}..{max(values):.3f})" if len(values) > 1 else ""
            cells.append(f"{mean:.3f}{spread}")
            if direction and label != args.versus and all(args.versus in r for r in runs):
                better = sum(
                    (r[label][key] < r[args.versus][key]) if direction == "lower"
                    else (r[label][key] > r[args.versus][key])
                    for r in runs
                )
                wins.append(f"{better}/{len(runs)}")
        lines.append(f"| {label} | " + " | ".join(cells) + " | " + " ".join(wins) + " |")
    print(f"{len(runs)} runs: " + ", ".join(str(r) for r in args.runs))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

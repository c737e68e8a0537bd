"""Pool several `avatar-forcing eval reactions` runs that differ only by --seed into one table.

    python scripts/reactions_seed_summary.py runs/r/s0 runs/r/s1 runs/r/s2 runs/r/s3 [--run model]

The real videos hold few phrase ends (nine in all), so one seed's nod precision and recall move by a
third with the sampling noise. Here the nods are pooled: precision = nods that follow a phrase end / all
nods, recall = phrase ends followed by a nod / all phrase ends, over every video and seed that has a
phrase end; the chance level is pooled the same way (each video's chance rate weighted by its nods and
its phrase ends). The other columns are each seed's mean row (as `eval reactions` prints it), then
their mean.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

MEAN_KEYS = (  # key, header, format
    ("smile_range", "smile p90-p10", ".3f"),
    ("smile_lag_r", "smile lag r", ".2f"),
    ("smiles_answered", "answered in time", ".2f"),
    ("yaw_ratio", "yaw std / user's", ".2f"),
    ("roll_ratio", "roll std / user's", ".2f"),
    ("longest_freeze_s", "longest freeze s", ".2f"),
)


def pooled_nods(videos: list[dict], run: str) -> dict[str, float]:
    """Pooled nod precision and recall, and their chance levels, over the videos with a phrase end."""
    nods = hits = ends = answered = chance_hits = chance_answered = 0.0
    for video in videos:
        m = video[run]
        if not m.get("phrase_ends") or not math.isfinite(m.get("nod_recall", math.nan)):
            continue
        ends += m["phrase_ends"]
        answered += m["nod_recall"] * m["phrase_ends"]
        chance_answered += m["nod_recall_chance"] * m["phrase_ends"]
        if m["nods"]:
            nods += m["nods"]
            hits += m["nod_precision"] * m["nods"]
            chance_hits += m["nod_precision_chance"] * m["nods"]
    return {"phrase_ends": ends, "nods": nods,
            "precision": hits / nods if nods else math.nan, "recall": answered / ends if ends else math.nan,
            "precision_chance": chance_hits / nods if nods else math.nan,
            "recall_chance": chance_answered / ends if ends else math.nan}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="eval reactions output folders (each holds table.json)")
    p.add_argument("--run", default="model", help="which condition: model or baseline")
    args = p.parse_args()
    reports = [json.loads((r / "table.json").read_text()) for r in args.runs]

    header = "| seed | " + " | ".join(h for _, h, _ in MEAN_KEYS) + " | nods P / R (chance) |"
    lines = [header, "|---|" + "---:|" * (len(MEAN_KEYS) + 1)]
    means: dict[str, list[float]] = {k: [] for k, _, _ in MEAN_KEYS}
    for report in reports:
        row = report["overall"][args.run]
        nods = pooled_nods(report["videos"], args.run)
        cells = [format(row[k], f) for k, _, f in MEAN_KEYS]
        for k, _, _ in MEAN_KEYS:
            means[k].append(row[k])
        lines.append(f"| {report['config']['seed']} | " + " | ".join(cells)
                     + " | {precision:.2f} / {recall:.2f} ({precision_chance:.2f} / {recall_chance:.2f}) |"
                       .format(**nods))
    every = pooled_nods([v for r in reports for v in r["videos"]], args.run)
    worst = {"longest_freeze_s"}
    cells = [format(max(means[k]) if k in worst else statistics.fmean(means[k]), f) for k, _, f in MEAN_KEYS]
    lines.append(f"| **all {len(reports)}** | " + " | ".join(cells)
                 + " | **{precision:.2f} / {recall:.2f}** ({precision_chance:.2f} / {recall_chance:.2f}) |"
                   .format(**every))
    print("\n".join(lines))
    print(f"\npooled over {len(reports)} seeds: {every['nods']:.0f} nods, {every['phrase_ends']:.0f} phrase "
          "ends (longest freeze: the worst seed's)")


if __name__ == "__main__":
    main()

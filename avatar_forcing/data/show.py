"""Plot one conversation of a corpus: waveforms, turns, key blendshapes and pose of both participants,
and the labelled reaction events (each drawn with an arrow from its cause)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar_forcing.data.shards import Conversation, Corpus
from avatar_forcing.errors import InputError
from avatar_forcing.motion.vector import idx


@dataclass
class ShowConfig:
    seconds: float | None = 30.0  # plot this much from `start` (None = everything)
    start: float = 0.0
    width: float = 16.0
    dpi: int = 110
    colors: tuple[str, str] = ("tab:blue", "tab:orange")


EVENT_STYLE = {  # marker colour per event type
    "nod": "tab:green",
    "smile_mirror": "tab:pink",
    "laugh_response": "tab:red",
    "gaze_shift": "tab:gray",
    "backchannel": "tab:purple",
}
EVENT_ROW_OFFSET = {"smile_mirror": 0.25, "laugh_response": 0.25, "backchannel": -0.25}  # keep dots apart
TURN_COLORS = {"sentence": 0.8, "backchannel": 0.45, "laugh": 0.25}  # bar alpha per utterance kind


def _channels(conv: Conversation, p: int, t0: int, t1: int) -> dict[str, np.ndarray]:
    m = conv.participants[p].motion[t0:t1]
    return {
        "jawOpen": m[:, idx("jawOpen")],
        "smile": 0.5 * (m[:, idx("mouthSmileLeft")] + m[:, idx("mouthSmileRight")]),
        "blink": 0.5 * (m[:, idx("eyeBlinkLeft")] + m[:, idx("eyeBlinkRight")]),
        "pitch": np.degrees(m[:, idx("pitch")]),
        "yaw": np.degrees(m[:, idx("yaw")]),
    }


def plot_conversation(conv: Conversation, out: str | Path, cfg: ShowConfig = ShowConfig()) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fps = conv.fps
    t0 = int(cfg.start * fps)
    t1 = conv.frames if cfg.seconds is None else min(conv.frames, t0 + int(cfg.seconds * fps))
    if t1 <= t0:
        raise InputError(f"nothing to plot: conversation {conv.id} is {conv.frames / fps:.1f} s long")
    lo, hi = t0 / fps, t1 / fps
    t = np.arange(t0, t1) / fps
    rows = ["waveform", "turns", "jawOpen", "smile", "blink", "pitch", "yaw", "events"]
    heights = [1.2, 0.6, 1, 1, 0.8, 1.2, 1.2, 1.2]
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(cfg.width, 14), sharex=True, gridspec_kw={"height_ratios": heights}
    )
    names = [f"p{p} ({s.get('name', '?')})" for p, s in enumerate(conv.meta.get("speakers", [{}, {}]))]
    for p in range(2):
        c = cfg.colors[p]
        part = conv.participants[p]
        ax = axes[0]
        if part.audio is not None:
            sr = len(part.audio) // conv.frames * fps
            a = part.audio[int(lo * sr) : int(hi * sr)]
            step = max(1, len(a) // 20000)
            ax.plot(
                lo + np.arange(0, len(a), step) / sr, a[::step], color=c, lw=0.4, alpha=0.8, label=names[p]
            )
        else:  # no raw audio stored: draw loudness from the log-mel features instead
            loud = part.features[t0:t1].mean(1)
            ax.plot(t, loud, color=c, lw=0.8, label=names[p] + " (log-mel mean)")
        for u in conv.meta.get("turns", []):
            if u["speaker"] == p and u["end"] > lo and u["start"] < hi:
                axes[1].broken_barh(
                    [(u["start"], u["end"] - u["start"])],
                    (1 - p - 0.4, 0.8),
                    color=c,
                    alpha=TURN_COLORS.get(u["kind"], 0.8),
                )
                if u["kind"] != "sentence":
                    axes[1].text(max(u["start"], lo), 1 - p, u["text"], fontsize=6, va="center")
        ch = _channels(conv, p, t0, t1)
        for row, key in zip(axes[2:7], ["jawOpen", "smile", "blink", "pitch", "yaw"], strict=True):
            row.plot(t, ch[key], color=c, lw=0.9, label=names[p])
        for e in conv.meta.get("events", [[], []])[p]:
            if not lo <= e["time"] <= hi:
                continue
            y = 1 - p + EVENT_ROW_OFFSET.get(e["type"], 0.0)
            col = EVENT_STYLE.get(e["type"], "k")
            axes[7].plot(e["time"], y, "o", color=col, ms=6)
            if e["cause_time"] < e["time"]:  # arrow from the other's cue to the reaction
                axes[7].annotate(
                    "",
                    (e["time"], y),
                    (e["cause_time"], y),
                    arrowprops={"arrowstyle": "->", "color": col, "lw": 0.8},
                )
            if e["type"] == "nod":  # also mark the nod on the pitch row
                axes[5].axvline(e["time"], color=cfg.colors[p], ls=":", lw=0.8)
    axes[0].set_ylabel("audio")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[1].set_yticks([0, 1], ["p1", "p0"])
    axes[1].set_ylabel("turns")
    axes[1].set_ylim(-0.6, 1.6)
    for ax, label in zip(
        axes[2:7], ["jawOpen", "smile", "blink", "pitch (deg, +down)", "yaw (deg)"], strict=True
    ):
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[5].legend(loc="upper right", fontsize=7, title="dotted: nod labels", title_fontsize=7)
    axes[7].set_yticks([0, 1], ["p1 reacts", "p0 reacts"])
    axes[7].set_ylim(-0.6, 1.6)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=k) for k, c in EVENT_STYLE.items()]
    axes[7].legend(handles=handles, loc="upper right", fontsize=7, ncol=len(handles))
    axes[7].set_ylabel("events\n(arrow: cause)")
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(lo, hi)
    fig.suptitle(f"{conv.id} ({conv.split}, {conv.frames / fps:.1f} s; shown {lo:.0f}-{hi:.0f} s)")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=cfg.dpi)
    plt.close(fig)
    return out


def show(
    root: str | Path, out: str | Path, conversation: str | None = None, cfg: ShowConfig = ShowConfig()
) -> Path:
    """Plot ``conversation`` (default: the first held-out one, else the first) of the corpus at ``root``."""
    corpus = Corpus(root)
    refs = corpus.conversations("heldout") or corpus.conversations()
    conv = corpus.load(conversation if conversation is not None else refs[0])
    return plot_conversation(conv, out, cfg)

"""Preparation on real pixels, end to end: render a synthetic conversation onto two portraits (the
astronaut, and a mirrored crop of her as the second person) into mp4s with their audio, run `prepare`
on them, and correlate the recovered motion with the synthetic ground truth per channel."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from avatar_forcing.data.prepare import PrepareConfig, prepare
from avatar_forcing.data.shards import Corpus
from avatar_forcing.data.synth import PRESETS
from avatar_forcing.data.synth.conversation import generate
from avatar_forcing.motion.vector import idx

CHANNELS = {  # reported name -> motion channels averaged
    "jawOpen": ("jawOpen",),
    "blink": ("eyeBlinkLeft", "eyeBlinkRight"),
    "smile": ("mouthSmileLeft", "mouthSmileRight"),
    "pitch": ("pitch",),
    "yaw": ("yaw",),
}


def portraits() -> list[np.ndarray]:
    from skimage import data as skdata

    img = skdata.astronaut()
    second = np.ascontiguousarray(img[20:480, 60:460][:, ::-1])  # another crop, mirrored
    return [img, second]


def render_check(
    out: str | Path, seconds: float = 4.0, seed: int = 0, size: int = 256, workers: int = 1
) -> dict:
    """Returns {"p0": {channel: r}, "p1": {...}, "mean": {channel: r}} and writes it to out/report.json."""
    from avatar_forcing.media.video import write_video
    from avatar_forcing.motion.renderer import PortraitRenderer, RenderConfig

    out = Path(out)
    cfg = dataclasses.replace(
        PRESETS["default"],
        dialogue=dataclasses.replace(PRESETS["default"].dialogue, duration=(seconds, seconds)),
    )
    conv = generate(seed, "heldout", 0, cfg)
    frames = min(conv.frames, int(seconds * conv.fps))
    folder = out / "input" / conv.id
    folder.mkdir(parents=True, exist_ok=True)
    for p, portrait in enumerate(portraits()):
        renderer = PortraitRenderer(portrait, RenderConfig(max_side=size))
        part = conv.participants[p]  # relative motion: each speaker's rest is the photo's
        video = renderer.render_many(part.motion[:frames])
        write_video(folder / f"p{p}.mp4", video, fps=conv.fps, audio=part.audio[: frames * 640])
    prepare(out / "input", out / "corpus", PrepareConfig(min_seconds=1.0), workers=workers, progress=False)
    got = Corpus(out / "corpus").load(conv.id)
    report: dict = {"seconds": frames / conv.fps, "conversation": conv.id}
    for p in range(2):
        n = min(frames, got.frames)
        report[f"p{p}"] = {}
        for name, chans in CHANNELS.items():
            truth = conv.participants[p].motion[:n, [idx(c) for c in chans]].mean(1)
            read = got.participants[p].motion[:n, [idx(c) for c in chans]].mean(1)
            ok = truth.std() > 1e-6 and read.std() > 1e-6
            report[f"p{p}"][name] = round(float(np.corrcoef(truth, read)[0, 1]), 3) if ok else None
    report["mean"] = {
        k: round(float(np.nanmean([report[f"p{p}"][k] or np.nan for p in range(2)])), 3) for k in CHANNELS
    }
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return report

"""Prepare real conversation videos into shards (layout of the input in docs/DATA.md).

Each conversation folder holds either
  * two face videos ``p0.<ext>`` and ``p1.<ext>``, each with its own audio track, or
  * one side-by-side ``video.<ext>`` plus ``layout.json`` ({"p0": [x, y, w, h], "p1": [...]}, pixels or
    fractions of the frame), plus separated audio ``p0.wav`` / ``p1.wav`` (or mixed audio in the video
    and a separator hook).
A ``pN.wav`` always overrides the audio of ``pN``'s video. An optional ``meta.json`` may set
``"split"`` and ``"silent": ["p1"]`` (a participant with no audio at all, e.g. ViCo's listener).

Every frame is tracked (motion/tracker.py), motion is resampled to 25 fps, log-mel features computed,
and conversations are written as shards. Runs over processes, skips conversations already in OUT, and
reports broken ones without stopping (``OUT/prepare_report.json``).
"""

from __future__ import annotations

import importlib
import json
import multiprocessing as mp
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avatar_forcing.data import shards
from avatar_forcing.data.shards import Conversation, Participant
from avatar_forcing.errors import AvatarForcingError, ConfigError, InputError
from avatar_forcing.motion.neutral import rest_of_track, to_relative
from avatar_forcing.motion.vector import FPS

VIDEO_EXTS = (".mp4", ".mkv", ".avi", ".mov", ".webm")
REPORT = "prepare_report.json"

# separator(pcm (n,) float32 16 kHz, sample_rate) -> (pcm_p0, pcm_p1)
Separator = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


@dataclass
class PrepareConfig:
    heldout_percent: float = 5.0  # by a hash of the conversation id, unless meta.json says otherwise
    conversations_per_shard: int = 16
    store_audio: bool = True
    min_seconds: float = 2.0  # shorter conversations are reported and skipped
    min_tracked: float = 0.5  # share of frames with a face, per participant


def load_separator(spec: str | None) -> Separator | None:
    """'package.module:function' -> the function (see docs/DATA.md for its contract)."""
    if not spec:
        return None
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"cannot load separator {spec!r} (expected 'module:function'): {exc}") from None


def _find(folder: Path, stem: str, exts: tuple[str, ...]) -> Path | None:
    for ext in exts:
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    return None


def _crops(path: Path, box: list[float]) -> Iterator[tuple[np.ndarray, float]]:
    from avatar_forcing.media.video import read_video

    for rgb, t in read_video(path):
        h, w = rgb.shape[:2]
        x, y, bw, bh = [v * (w if i % 2 == 0 else h) if max(box) <= 1 else v for i, v in enumerate(box)]
        crop = rgb[int(y) : int(y + bh), int(x) : int(x + bw)]
        if crop.size == 0:
            raise InputError(f"layout box {box} is outside the {w}x{h} video {path}")
        yield np.ascontiguousarray(crop), t


def prepare_one(
    folder: Path, cfg: PrepareConfig, separator: Separator | None = None, split: str | None = None
) -> Conversation:
    """Track and featurize one conversation folder; raises AvatarForcingError on bad input."""
    from avatar_forcing.audio.features import log_mel
    from avatar_forcing.audio.io import load_audio
    from avatar_forcing.motion.tracker import track_video

    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    silent = set(meta.get("silent", []))
    videos = [_find(folder, f"p{i}", VIDEO_EXTS) for i in range(2)]
    tracks, audios, sources = [], [None, None], {}
    if all(videos):
        for v in videos:
            tracks.append(track_video(v))
        sources["video"] = [v.name for v in videos]
    else:
        video = _find(folder, "video", VIDEO_EXTS)
        if video is None or not (folder / "layout.json").is_file():
            raise InputError(f"{folder}: expected p0/p1 videos, or video.<ext> with layout.json")
        layout = json.loads((folder / "layout.json").read_text())
        for i in range(2):
            if f"p{i}" not in layout or len(layout[f"p{i}"]) != 4:
                raise InputError(f'{folder}/layout.json needs "p{i}": [x, y, w, h]')
            tracks.append(track_video(_crops(video, layout[f"p{i}"]), source_fps=None))
        sources["video"] = video.name
        videos = [video, video]
    frames = min(len(t) for t in tracks)
    for i, t in enumerate(tracks):
        if t.mask[:frames].mean() < cfg.min_tracked:
            raise InputError(
                f"{folder}: p{i} has a face in only {100 * t.mask[:frames].mean():.0f}% of frames"
            )
    if frames < cfg.min_seconds * FPS:
        raise InputError(f"{folder}: only {frames / FPS:.1f} s of video")

    for i in range(2):
        wav = _find(folder, f"p{i}", (".wav", ".flac", ".mp3", ".m4a"))
        if wav is not None:
            audios[i], sources[f"p{i}_audio"] = load_audio(wav), wav.name
    if any(a is None for a in audios) and videos[0] == videos[1]:  # one mixed track
        missing = [i for i in range(2) if audios[i] is None and f"p{i}" not in silent]
        if missing:
            if separator is None:
                raise InputError(f"{folder}: mixed audio needs p0.wav/p1.wav or a --separator")
            separated = separator(load_audio(videos[0]), 16000)
            for i in missing:
                audios[i], sources[f"p{i}_audio"] = np.asarray(separated[i], np.float32), "separated"
    for i in range(2):
        if audios[i] is None and f"p{i}" in silent:
            audios[i], sources[f"p{i}_audio"] = np.zeros(0, np.float32), "silent"
        elif audios[i] is None:
            audios[i], sources[f"p{i}_audio"] = load_audio(videos[i]), "video"  # InputError if none
    spf = 16000 // FPS
    parts = []
    for i in range(2):
        pcm = np.zeros(frames * spf, np.float32)
        n = min(len(audios[i]), len(pcm))
        pcm[:n] = audios[i][:n]
        t = tracks[i]
        motion, mask = t.values[:frames], t.mask[:frames]
        rest = rest_of_track(motion[mask])
        parts.append(Participant(to_relative(motion, rest), log_mel(pcm), mask, rest,
                                 pcm if cfg.store_audio else None))
    cid = folder.name
    if split is None:
        split = meta.get("split") or (
            "heldout" if zlib.crc32(cid.encode()) % 10000 < cfg.heldout_percent * 100 else "train"
        )
    meta_out = {
        "source": "prepare",
        "input": sources,
        "speakers": [{"name": f"p{i}"} for i in range(2)],
        "turns": [],
        "events": [[], []],
        **{k: v for k, v in meta.items() if k not in ("split", "silent")},
    }
    return Conversation(cid, split, parts, meta_out, FPS)


def _work(job: tuple[Path, PrepareConfig, str | None]) -> tuple[str, Conversation | None, str | None]:
    folder, cfg, separator = job
    try:
        return folder.name, prepare_one(folder, cfg, load_separator(separator)), None
    except AvatarForcingError as exc:
        return folder.name, None, str(exc)
    except Exception as exc:  # broken files surface as all kinds of decoder errors; report, go on
        return folder.name, None, f"{type(exc).__name__}: {exc}"


def prepare(
    input_dir: str | Path,
    out: str | Path,
    cfg: PrepareConfig = PrepareConfig(),
    workers: int = 1,
    separator: str | None = None,
    progress: bool = True,
) -> dict:
    """Prepare every conversation folder of ``input_dir`` into the corpus at ``out``; returns a report."""
    input_dir, out = Path(input_dir), Path(out)
    if not input_dir.is_dir():
        raise InputError(f"input folder not found: {input_dir}")
    load_separator(separator)  # fail early on a bad hook
    folders = sorted(p for p in input_dir.iterdir() if p.is_dir())
    if not folders:
        raise InputError(f"{input_dir} holds no conversation folders")
    done_infos = shards.shard_infos(out) if (out / shards.SHARD_DIR).is_dir() else {}
    done = {c["id"] for info in done_infos.values() for c in info["conversations"]}
    todo = [f for f in folders if f.name not in done]
    numbers = {
        s: 1 + max([int(n.split("-")[-1]) for n in done_infos if n.startswith(s)], default=-1)
        for s in shards.SPLITS
    }
    pending: dict[str, list[Conversation]] = {s: [] for s in shards.SPLITS}
    failed: dict[str, str] = {}

    def flush(split: str) -> None:
        shards.write_shard(out, f"{split}-{numbers[split]:05d}", pending[split])
        numbers[split] += 1
        pending[split] = []

    jobs = [(f, cfg, separator) for f in todo]
    # Children from a forkserver, not a fork: a fork copies locks held by this process's other threads.
    pool = mp.get_context("forkserver").Pool(workers) if workers > 1 and jobs else None
    try:
        results = pool.imap(_work, jobs) if pool else map(_work, jobs)
        for name, conv, error in tqdm(
            results, total=len(jobs), desc="prepare", unit="conv", disable=not progress
        ):
            if conv is None:
                failed[name] = error
                tqdm.write(f"skipped {name}: {error}")
                continue
            pending[conv.split].append(conv)
            if len(pending[conv.split]) >= cfg.conversations_per_shard:
                flush(conv.split)
        for split in shards.SPLITS:
            if pending[split]:
                flush(split)
    finally:
        if pool:
            pool.close()
            pool.join()
    report = {
        "prepared": len(todo) - len(failed),
        "skipped": len(done & {f.name for f in folders}),
        "failed": failed,
    }
    if shards.shard_infos(out) if (out / shards.SHARD_DIR).is_dir() else False:
        report["splits"] = shards.write_index(out, {"generator": "prepare", "input": str(input_dir)})[
            "splits"
        ]
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT).write_text(json.dumps(report, indent=1))
    return report

"""The on-disk conversation corpus: shards of conversations plus an index (format in docs/DATA.md).

    DIR/index.json                  format version, fps, splits, shard list, MotionStats of the train split
    DIR/shards/<split>-<n>.npz      arrays, key "<conversation id>/p<participant>/<name>"
    DIR/shards/<split>-<n>.json     metadata of the shard's conversations (+ motion sums for the stats)

Every file is written to a temporary name and renamed, so a crash never leaves half a shard; a shard
counts only once its .json exists (it is written after the .npz).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatar_forcing.audio.features import FEATURE_DIM
from avatar_forcing.errors import InputError
from avatar_forcing.motion.vector import FPS, MOTION_DIM, MOTION_NAMES, MotionStats

FORMAT_VERSION = 2  # 2: motion relative to each participant's rest (motion/neutral.py)
SAMPLE_RATE = 16000
SPLITS = ("train", "heldout")
INDEX = "index.json"
SHARD_DIR = "shards"


@dataclass
class Participant:
    motion: np.ndarray  # (T, 58) float32, relative to the participant's rest (motion/neutral.py)
    features: np.ndarray  # (T, 320) log-mel (stored float16)
    mask: np.ndarray  # (T,) bool, True where the motion was observed (not interpolated)
    rest: np.ndarray  # (58,) that rest in absolute tracker units (what a camera would add back)
    audio: np.ndarray | None = None  # (T * 640,) float32 16 kHz, optional (stored int16)


@dataclass
class Conversation:
    id: str
    split: str
    participants: list[Participant]
    meta: dict = field(default_factory=dict)  # speakers, turns, events per participant, source, ...
    fps: int = FPS

    @property
    def frames(self) -> int:
        return len(self.participants[0].motion)

    def check(self) -> None:
        """Raise InputError unless both participants have consistent, finite arrays."""
        if len(self.participants) != 2:
            raise InputError(f"conversation {self.id}: expected 2 participants, got {len(self.participants)}")
        if self.split not in SPLITS:
            raise InputError(f"conversation {self.id}: unknown split {self.split!r}")
        t = self.frames
        for i, p in enumerate(self.participants):
            shapes = {
                "motion": (p.motion.shape, (t, MOTION_DIM)),
                "features": (p.features.shape, (t, FEATURE_DIM)),
                "mask": (p.mask.shape, (t,)),
                "rest": (p.rest.shape, (MOTION_DIM,)),
            }
            for name, (got, want) in shapes.items():
                if got != want:
                    raise InputError(f"conversation {self.id} p{i}: {name} has shape {got}, expected {want}")
            if p.audio is not None and len(p.audio) != t * SAMPLE_RATE // self.fps:
                raise InputError(f"conversation {self.id} p{i}: audio length does not match {t} frames")
            if not (np.isfinite(p.motion).all() and np.isfinite(p.features).all()):
                raise InputError(f"conversation {self.id} p{i}: NaN or inf in motion or features")


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_shard(root: str | Path, name: str, conversations: list[Conversation]) -> Path:
    """Write one shard (``<name>.npz`` then ``<name>.json``) atomically; returns the .json path."""
    if not conversations:
        raise ValueError("a shard needs at least one conversation")
    split = conversations[0].split
    arrays: dict[str, np.ndarray] = {}
    entries = []
    total = np.zeros(MOTION_DIM)
    total_sq = np.zeros(MOTION_DIM)
    count = 0
    for c in conversations:
        c.check()
        if c.split != split:
            raise ValueError("all conversations of a shard must share one split")
        for i, p in enumerate(c.participants):
            key = f"{c.id}/p{i}"
            arrays[f"{key}/motion"] = p.motion.astype(np.float32)
            arrays[f"{key}/features"] = p.features.astype(np.float16)
            arrays[f"{key}/mask"] = p.mask.astype(bool)
            arrays[f"{key}/rest"] = p.rest.astype(np.float32)
            if p.audio is not None:
                arrays[f"{key}/audio"] = np.round(np.clip(p.audio, -1, 1) * 32767).astype(np.int16)
            valid = p.motion[p.mask].astype(np.float64)
            total += valid.sum(0)
            total_sq += (valid**2).sum(0)
            count += len(valid)
        entries.append(
            {
                "id": c.id,
                "frames": c.frames,
                "fps": c.fps,
                "has_audio": c.participants[0].audio is not None,
                "meta": c.meta,
            }
        )
    folder = Path(root) / SHARD_DIR
    folder.mkdir(parents=True, exist_ok=True)
    _atomic(folder / f"{name}.npz", lambda f: np.savez(f, **arrays))
    info = {
        "format_version": FORMAT_VERSION,
        "split": split,
        "conversations": entries,
        "motion_sum": total.tolist(),
        "motion_sum_sq": total_sq.tolist(),
        "motion_count": count,
    }
    path = folder / f"{name}.json"
    _atomic(path, lambda f: f.write(json.dumps(info).encode()))
    return path


def shard_infos(root: str | Path) -> dict[str, dict]:
    """Every complete shard's JSON, by shard name (shards from another format version raise)."""
    out = {}
    for path in sorted((Path(root) / SHARD_DIR).glob("*.json")):
        info = json.loads(path.read_text())
        _check_version(info.get("format_version"), path)
        out[path.stem] = info
    return out


def write_index(root: str | Path, info: dict | None = None) -> dict:
    """(Re)build ``index.json`` from the shards present: splits, shard list and train-split MotionStats."""
    root = Path(root)
    shards = shard_infos(root)
    if not shards:
        raise InputError(f"no shards in {root / SHARD_DIR}")
    sums = {s: [np.zeros(MOTION_DIM), np.zeros(MOTION_DIM), 0] for s in SPLITS}
    splits = {s: {"conversations": 0, "hours": 0.0} for s in SPLITS}
    listing = []
    for name, sh in shards.items():
        acc = sums[sh["split"]]
        acc[0] += np.asarray(sh["motion_sum"])
        acc[1] += np.asarray(sh["motion_sum_sq"])
        acc[2] += sh["motion_count"]
        splits[sh["split"]]["conversations"] += len(sh["conversations"])
        splits[sh["split"]]["hours"] += sum(c["frames"] / c["fps"] for c in sh["conversations"]) / 3600
        listing.append(
            {
                "name": name,
                "split": sh["split"],
                "conversations": [[c["id"], c["frames"]] for c in sh["conversations"]],
            }
        )
    s, sq, n = sums["train"] if sums["train"][2] else [sum(x) for x in zip(*sums.values(), strict=True)]
    mean = s / max(n, 1)
    std = np.sqrt(np.maximum(sq / max(n, 1) - mean**2, 0.0))
    stats = MotionStats(mean.astype(np.float32), np.maximum(std, MotionStats.MIN_STD).astype(np.float32))
    index = {
        "format_version": FORMAT_VERSION,
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        "feature_dim": FEATURE_DIM,
        "motion_names": list(MOTION_NAMES),
        "splits": splits,
        "shards": listing,
        "stats": stats.to_dict(),
        "info": info or {},
    }
    _atomic(root / INDEX, lambda f: f.write(json.dumps(index, indent=1).encode()))
    return index


def _check_version(version, where) -> None:
    if version != FORMAT_VERSION:
        raise InputError(
            f"{where} has shard format version {version}, this program reads version "
            f"{FORMAT_VERSION}; regenerate it with `avatar-forcing data synth` or `data prepare`"
        )


@dataclass
class ConversationRef:
    id: str
    shard: str
    split: str
    frames: int


class Corpus:
    """Read access to a shard directory: its index, statistics and conversations."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        path = self.root / INDEX
        if not path.is_file():
            raise InputError(
                f"{self.root} is not a conversation corpus (no {INDEX}); make one with "
                "`avatar-forcing data synth` or `avatar-forcing data prepare`"
            )
        try:
            self.index = json.loads(path.read_text())
        except ValueError as exc:
            raise InputError(f"cannot read {path}: {exc}") from None
        _check_version(self.index.get("format_version"), self.root)
        if self.index.get("motion_names") != list(MOTION_NAMES):
            raise InputError(f"{self.root} uses different motion channels than this version")
        self.stats = MotionStats.from_dict(self.index["stats"])
        self.refs = [
            ConversationRef(cid, sh["name"], sh["split"], frames)
            for sh in self.index["shards"]
            for cid, frames in sh["conversations"]
        ]

    def conversations(self, split: str | None = None) -> list[ConversationRef]:
        return [r for r in self.refs if split is None or r.split == split]

    def shard_names(self, split: str | None = None) -> list[str]:
        return [sh["name"] for sh in self.index["shards"] if split is None or sh["split"] == split]

    def load(self, ref: ConversationRef | str, audio: bool = True) -> Conversation:
        if isinstance(ref, str):
            found = [r for r in self.refs if r.id == ref]
            if not found:
                raise InputError(f"no conversation {ref!r} in {self.root}")
            ref = found[0]
        return self.load_shard(ref.shard, [ref.id], audio)[0]

    def load_motion(self, ref: ConversationRef) -> list[np.ndarray]:
        """The participants' motion alone (a small read: the features and audio stay on disk)."""
        path = self.root / SHARD_DIR / f"{ref.shard}.npz"
        try:
            with np.load(path, allow_pickle=False) as data:
                return [data[f"{ref.id}/p{i}/motion"] for i in range(2)]
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"cannot read the motion of {ref.id} in {path}: {exc}") from None

    def load_shard(self, name: str, ids: list[str] | None = None, audio: bool = True) -> list[Conversation]:
        """Conversations of one shard (all, or those in ``ids``, in that order)."""
        folder = self.root / SHARD_DIR
        try:
            info = json.loads((folder / f"{name}.json").read_text())
            _check_version(info.get("format_version"), folder / f"{name}.json")
            entries = {c["id"]: c for c in info["conversations"]}
            out = []
            with np.load(folder / f"{name}.npz", allow_pickle=False) as data:
                for cid in ids or list(entries):
                    e = entries[cid]
                    parts = []
                    for i in range(2):
                        key = f"{cid}/p{i}"
                        pcm = (
                            data[f"{key}/audio"].astype(np.float32) / 32767
                            if audio and e["has_audio"]
                            else None
                        )
                        parts.append(
                            Participant(
                                data[f"{key}/motion"],
                                data[f"{key}/features"].astype(np.float32),
                                data[f"{key}/mask"],
                                data[f"{key}/rest"],
                                pcm,
                            )
                        )
                    out.append(Conversation(cid, info["split"], parts, e["meta"], e["fps"]))
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"cannot read shard {name} in {folder}: {exc}") from None
        return out

"""Training and evaluation views of a conversation corpus.

A sample is one window of N frames seen from one participant (the avatar); the other participant is
the user. Each conversation therefore gives samples in both roles.

    motion (N, 58) normalized     avatar_audio (N, 320 [+ 4])     user_audio (N, 320 [+ 4])
    user_motion (N, 58) normalized    reference (58,) normalized    motion_mask, user_mask (N,) bool

Motion is relative to each participant's rest (motion/neutral.py), so the reference is the rest: zero
before normalization, as it is for every portrait at inference.

`TrainLoader` streams random windows for training: it splits conversations across DDP ranks and
DataLoader workers without duplicates, is deterministic given the seed, and resumes exactly from
`state_dict()`. `HeldoutWindows` is a fixed, map-style validation set; `heldout_conversations` gives
whole held-out conversations (with their labelled events) for evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from avatar_forcing.audio.denoise import DenoiseConfig, denoise, denoise_preroll
from avatar_forcing.audio.voice_context import VoiceContextConfig, with_voice_context
from avatar_forcing.data.augment import UserAugmentConfig, augment_audio, augment_user_motion
from avatar_forcing.data.shards import Conversation, ConversationRef, Corpus
from avatar_forcing.errors import InputError
from avatar_forcing.motion.smile_onsets import SmileOnsetConfig, smile, smile_onsets
from avatar_forcing.motion.vector import MOTION_DIM, MotionStats

SPLIT_STREAM = 0x5EED  # separates the loader's random streams from other users of the seed


@dataclass
class LoaderConfig:
    window: int = 50  # frames per sample (2 s at 25 fps)
    batch_size: int = 8
    pool: int = 8  # conversations held in memory at once; windows are shuffled within a pool
    coverage: float = 1.0  # windows per conversation and role = coverage * frames / window
    seed: int = 0
    augment: UserAugmentConfig | None = None  # webcam/microphone corruption of the user side (training)
    denoise: DenoiseConfig | None = None  # the session's noise suppression on both voices (audio/denoise.py)
    voice_context: VoiceContextConfig | None = None  # each voice's recent loudness (audio/voice_context.py)
    # Answering a smile is rare in the corpus: about one uniform window in ten holds a user's smile
    # beginning and the listener's answer. This fraction of the windows is placed so that one of the user's
    # smiles begins `onset_lead` frames after the window's start, where the window also holds the answer
    # (0.3-1.6 s later); 0 keeps the uniform windows. At 0.3 (v15) the held-out split answers more smiles,
    # real users no more often (docs/EVALUATION.md, round 10).
    onset_fraction: float = 0.0
    onset_lead: tuple[int, int] = (5, 25)
    # Windows placed at the conversation's start, where a short view is the whole past: with a loss burn-in
    # (FlowConfig.burn_in) only they teach a stream's first blocks. 0 keeps the uniform windows.
    start_fraction: float = 0.0
    smile_onset: SmileOnsetConfig = field(default_factory=SmileOnsetConfig)


@dataclass
class Plan:
    """One planned sample: conversation, avatar participant, first frame."""

    ref: ConversationRef
    avatar: int
    start: int
    key: int = 0  # seeds this sample's augmentation (drawn when planned, so resuming repeats it)


def make_sample(conv: Conversation, avatar: int, start: int, window: int, stats: MotionStats,
                augment: UserAugmentConfig | None = None, rng: np.random.Generator | None = None,
                denoise_cfg: DenoiseConfig | None = None,
                voice_context: VoiceContextConfig | None = None) -> dict[str, np.ndarray]:
    """Cut one window (zero-padded, masked past the end) from ``avatar``'s point of view; ``augment``
    (with ``rng``) corrupts the user side as a webcam and a microphone would, and sometimes the avatar's
    voice as another TTS or microphone would (data/augment.py); ``denoise_cfg`` then runs the session's
    noise suppression over both voices and ``voice_context`` appends their recent loudness, both from the
    audio before the window (as a stream would have heard it)."""
    me, you = conv.participants[avatar], conv.participants[1 - avatar]
    end = min(start + window, conv.frames)
    preroll = max(denoise_preroll(denoise_cfg) if denoise_cfg is not None else 0,
                  voice_context.preroll if voice_context is not None else 0)
    lead = min(start, preroll)
    user_motion = you.motion[start:end]
    user_audio = you.features[start - lead:end].astype(np.float32)
    avatar_audio = me.features[start - lead:end].astype(np.float32)
    if augment is not None and rng is not None:
        if rng.random() < augment.prob:
            user_motion = augment_user_motion(user_motion, rng, augment)
            user_audio = augment_audio(user_audio, rng, augment)
        if rng.random() < augment.avatar_audio_prob:
            avatar_audio = augment_audio(avatar_audio, rng, augment)
    if denoise_cfg is not None:
        user_audio, avatar_audio = (denoise(a, denoise_cfg) for a in (user_audio, avatar_audio))
    if voice_context is not None:
        user_audio, avatar_audio = (with_voice_context(a, voice_context) for a in (user_audio, avatar_audio))
    user_audio, avatar_audio = user_audio[lead:], avatar_audio[lead:]

    in_range = np.arange(window) < end - start
    ref = np.zeros(MOTION_DIM, np.float32)  # the rest
    return {
        "motion": _pad(stats.normalize(me.motion[start:end]), window),
        "avatar_audio": _pad(avatar_audio, window),
        "user_audio": _pad(user_audio, window),
        "user_motion": _pad(stats.normalize_condition(user_motion), window),
        "reference": stats.normalize(ref[None])[0],
        "motion_mask": in_range & _pad(me.mask[start:end], window).astype(bool),
        "user_mask": in_range & _pad(you.mask[start:end], window).astype(bool),
        "at_start": np.array(start == 0),  # the window's view is the conversation's whole past
    }


def _pad(x: np.ndarray, window: int) -> np.ndarray:
    out = np.zeros((window,) + x.shape[1:], x.dtype)
    out[: len(x)] = x
    return out


def _collate(samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.stack([s[k] for s in samples])) for k in samples[0]}


class TrainStream(IterableDataset):
    """Endless stream of batches (dicts of tensors with a leading batch dimension).

    Consumers (rank x DataLoader worker) each take every n-th conversation of a seeded per-epoch
    permutation, so no window of an epoch is seen twice. ``skip_batches`` / ``rotation`` are set by
    `TrainLoader` to resume exactly.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        cfg: LoaderConfig = LoaderConfig(),
        rank: int = 0,
        world_size: int = 1,
    ):
        self.corpus = Corpus(root)
        self.refs = sorted(self.corpus.conversations(split), key=lambda r: (r.shard, r.id))
        if not self.refs:
            raise InputError(f"no {split} conversations in {root}")
        self.cfg, self.rank, self.world_size, self.split = cfg, rank, world_size, split
        self.skip_batches = 0  # batches this rank already consumed (all workers together)
        self._onsets: dict[str, list[list[int]]] = {}  # conversation -> each participant's smile onsets

    def _worker(self) -> tuple[int, int]:
        """(logical worker id, number of workers); logical ids are rotated so a resumed DataLoader,
        which always asks worker 0 first, continues the round-robin where it stopped."""
        info = get_worker_info()
        w, nw = (info.id, info.num_workers) if info else (0, 1)
        return (w + self.skip_batches) % nw, nw

    def plans(self, consumer: int, consumers: int):
        """Endless planned samples of one consumer, in order (only motion is read here, for the smile
        onsets, and only with ``onset_fraction``)."""
        if len(self.refs) < consumers:
            raise InputError(
                f"{len(self.refs)} {self.split} conversations cannot feed {consumers} loader "
                "processes (ranks x workers) without repeats; use fewer workers or more data"
            )
        cfg = self.cfg
        epoch = 0
        while True:
            order = np.random.default_rng([cfg.seed, SPLIT_STREAM, epoch]).permutation(len(self.refs))
            mine = [self.refs[i] for i in order[consumer::consumers]]
            for p0 in range(0, len(mine), cfg.pool):
                rng = np.random.default_rng([cfg.seed, SPLIT_STREAM, epoch, consumer, p0])
                pool: list[Plan] = []
                for ref in mine[p0 : p0 + cfg.pool]:
                    count = max(1, round(cfg.coverage * ref.frames / cfg.window))
                    last = max(ref.frames - cfg.window, 0)
                    for avatar in (0, 1):
                        onsets = self.user_smile_onsets(ref, avatar) if cfg.onset_fraction > 0 else []
                        for _ in range(count):
                            if onsets and rng.random() < cfg.onset_fraction:
                                onset = onsets[int(rng.integers(len(onsets)))]
                                start = min(max(onset - int(rng.integers(*cfg.onset_lead, endpoint=True)), 0),
                                            last)
                            elif cfg.start_fraction > 0 and rng.random() < cfg.start_fraction:
                                start = 0
                            else:
                                start = int(rng.integers(0, last + 1))
                            pool.append(Plan(ref, avatar, start, int(rng.integers(2**62))))
                for i in rng.permutation(len(pool)):
                    yield pool[i]
            epoch += 1

    def user_smile_onsets(self, ref: ConversationRef, avatar: int) -> list[int]:
        """Frames where the user of ``avatar`` (the other participant) begins a smile (read once)."""
        if ref.id not in self._onsets:
            motion = self.corpus.load_motion(ref)
            self._onsets[ref.id] = [[t for t, _ in smile_onsets(smile(m), self.cfg.smile_onset)]
                                    for m in motion]
        return self._onsets[ref.id][1 - avatar]

    def __iter__(self):
        logical, nw = self._worker()
        consumer, consumers = self.rank * nw + logical, self.world_size * nw
        skip = math.ceil((self.skip_batches - logical) / nw) if self.skip_batches > logical else 0
        bs = self.cfg.batch_size
        plans = self.plans(consumer, consumers)
        for _ in range(skip * bs):  # fast-forward without reading data
            next(plans)
        cache: dict[str, Conversation] = {}
        batch = []
        for plan in plans:
            if plan.ref.id not in cache:
                if len(cache) >= 2 * self.cfg.pool:
                    cache.pop(next(iter(cache)))
                self._load_pool(plan.ref, cache)
            batch.append(
                make_sample(
                    cache[plan.ref.id],
                    plan.avatar,
                    plan.start,
                    self.cfg.window,
                    self.corpus.stats,
                    self.cfg.augment,
                    np.random.default_rng([self.cfg.seed, SPLIT_STREAM, plan.key]),
                    self.cfg.denoise,
                    self.cfg.voice_context,
                )
            )
            if len(batch) == bs:
                yield _collate(batch)
                batch = []

    def _load_pool(self, ref: ConversationRef, cache: dict[str, Conversation]) -> None:
        for conv in self.corpus.load_shard(ref.shard, [ref.id], audio=False):
            cache[conv.id] = conv


class TrainLoader:
    """A DataLoader over `TrainStream` that counts consumed batches, for exact resume."""

    def __init__(
        self,
        root: str | Path,
        cfg: LoaderConfig = LoaderConfig(),
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        split: str = "train",
    ):
        self.dataset = TrainStream(root, split, cfg, rank, world_size)
        self.num_workers = num_workers
        self.batches = 0

    @property
    def stats(self) -> MotionStats:
        return self.dataset.corpus.stats

    def __iter__(self):
        self.dataset.skip_batches = self.batches
        # Workers start from a fresh interpreter ("forkserver"), not a fork of this one: a fork copies
        # whatever locks the parent's threads hold at that moment, and its workers can hang on them.
        loader = DataLoader(
            self.dataset, batch_size=None, num_workers=self.num_workers, persistent_workers=False,
            multiprocessing_context="forkserver" if self.num_workers else None,
        )
        for batch in loader:
            self.batches += 1
            yield batch

    def state_dict(self) -> dict:
        return {"batches": self.batches, "seed": self.dataset.cfg.seed}

    def load_state_dict(self, state: dict) -> None:
        if state.get("seed") != self.dataset.cfg.seed:
            raise InputError(
                f"loader state was saved with seed {state.get('seed')}, "
                f"this loader uses {self.dataset.cfg.seed}"
            )
        self.batches = int(state["batches"])


class HeldoutWindows(Dataset):
    """Fixed validation windows: every participant of every held-out conversation, stride = window,
    reference = the rest. Items are dicts of tensors without a batch dimension."""

    def __init__(
        self,
        root: str | Path,
        window: int = 50,
        split: str = "heldout",
        max_conversations: int | None = None,
        denoise: DenoiseConfig | None = None,
        voice_context: VoiceContextConfig | None = None,
    ):
        self.corpus = Corpus(root)
        self.denoise, self.voice_context = denoise, voice_context
        refs = sorted(self.corpus.conversations(split), key=lambda r: r.id)[:max_conversations]
        if not refs:
            raise InputError(f"no {split} conversations in {root}")
        self.window = window
        self.items = [
            (r, a, s) for r in refs for a in (0, 1) for s in range(0, max(r.frames - window, 0) + 1, window)
        ]
        self._cache: dict[str, Conversation] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ref, avatar, start = self.items[i]
        if ref.id not in self._cache:
            self._cache.clear()  # items are ordered by conversation: keep just the current one
            self._cache[ref.id] = self.corpus.load(ref, audio=False)
        s = make_sample(self._cache[ref.id], avatar, start, self.window, self.corpus.stats,
                        denoise_cfg=self.denoise, voice_context=self.voice_context)
        return {k: torch.from_numpy(v) for k, v in s.items()}


def heldout_conversations(
    root: str | Path, limit: int | None = None, audio: bool = True, split: str = "heldout"
) -> list[Conversation]:
    """Whole held-out conversations (physical-unit motion, features, audio, meta with events)."""
    corpus = Corpus(root)
    refs = sorted(corpus.conversations(split), key=lambda r: r.id)[:limit]
    return [corpus.load(r, audio=audio) for r in refs]

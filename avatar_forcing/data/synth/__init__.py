"""The synthetic dyadic conversation corpus: eSpeak NG speech, rule-based talking and listening motion,
labelled reactions. `generate_corpus` writes it as shards; `conversation.generate` makes one."""

from __future__ import annotations

import math
import multiprocessing as mp
import resource
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avatar_forcing.data import shards
from avatar_forcing.data.synth.config import PRESETS, SynthConfig
from avatar_forcing.data.synth.conversation import SPLIT_CODES, generate
from avatar_forcing.errors import InputError

__all__ = ["generate", "generate_fresh", "generate_corpus", "plan_corpus", "PRESETS", "SynthConfig"]


def plan_corpus(hours: float, seed: int, cfg: SynthConfig) -> list[tuple[str, int]]:
    """(split, index) of every conversation: train ones until their planned length reaches ``hours``,
    plus ``heldout_fraction`` as many held-out ones. Planned lengths come from each conversation's own
    generator, so the plan is deterministic."""
    lo, hi = cfg.dialogue.duration
    n_train, total = 0, 0.0
    while total < hours * 3600:
        rng = np.random.default_rng([seed, SPLIT_CODES["train"], n_train])
        total += rng.uniform(lo, hi)  # the first draw of `generate` is its planned duration
        n_train += 1
    n_held = max(1, math.ceil(n_train * cfg.heldout_fraction)) if cfg.heldout_fraction > 0 else 0
    return [("train", i) for i in range(n_train)] + [("heldout", i) for i in range(n_held)]


def _fresh_pool(workers: int):
    """Worker processes that each make ONE conversation and exit.

    eSpeak NG keeps static state across calls (its output for a sentence depends on what it spoke
    before, even after re-initialisation), so a conversation is only a pure function of its seed when
    it is synthesized in a process that has spoken nothing else. The children come from a forkserver,
    which never runs eSpeak either; a plain fork of the parent could copy a lock one of its threads
    holds and hang (it did in the full test suite).
    """
    return mp.get_context("forkserver").Pool(workers, maxtasksperchild=1)


def generate_fresh(
    seed: int, split: str, index: int, cfg: SynthConfig = SynthConfig()
) -> shards.Conversation:
    """`generate` in a fresh process: the same conversation on every call and every machine."""
    with _fresh_pool(1) as pool:
        return pool.apply(_work, ((seed, split, index, cfg),))


def _work(job: tuple[int, str, int, SynthConfig]) -> shards.Conversation:
    seed, split, index, cfg = job
    keep = cfg.store_audio == "all" or (cfg.store_audio == "heldout" and split == "heldout")
    return generate(seed, split, index, cfg, keep_audio=keep)


def generate_corpus(
    out: str | Path,
    hours: float,
    seed: int = 0,
    cfg: SynthConfig = SynthConfig(),
    workers: int = 1,
    progress: bool = True,
) -> dict:
    """Write a corpus of ``hours`` of train conversations (+ held-out) to ``out``; returns a report."""
    out = Path(out)
    if (out / shards.INDEX).exists() or any((out / shards.SHARD_DIR).glob("*.json")):
        raise InputError(f"{out} already holds a corpus; choose an empty directory")
    if cfg.store_audio not in ("all", "heldout", "none"):
        raise InputError(f"store_audio must be all, heldout or none, got {cfg.store_audio!r}")
    plan = plan_corpus(hours, seed, cfg)
    jobs = [(seed, split, i, cfg) for split, i in plan]
    t0, cpu0 = time.time(), _cpu_seconds()
    seconds = 0.0
    pending: dict[str, list] = {"train": [], "heldout": []}
    counts = {"train": 0, "heldout": 0}

    def flush(split: str) -> None:
        shards.write_shard(out, f"{split}-{counts[split]:05d}", pending[split])
        counts[split] += 1
        pending[split] = []

    pool = _fresh_pool(max(1, workers))
    try:
        results = pool.imap(_work, jobs)
        for conv in tqdm(results, total=len(jobs), desc="synth", unit="conv", disable=not progress):
            seconds += conv.frames / conv.fps
            pending[conv.split].append(conv)
            if len(pending[conv.split]) >= cfg.conversations_per_shard:
                flush(conv.split)
        for split in pending:
            if pending[split]:
                flush(split)
    finally:
        pool.close()
        pool.join()
    wall = time.time() - t0
    cpu = _cpu_seconds() - cpu0  # this process + its (joined) workers
    index = shards.write_index(
        out, {"generator": "synth", "seed": seed, "hours": hours, "config": asdict(cfg)}
    )
    return {
        "conversations": len(jobs),
        "seconds": seconds,
        "wall_s": wall,
        "cpu_s": cpu,
        "workers": workers,
        "splits": index["splits"],
        "hours_per_cpu_minute": seconds / 3600 / max(cpu / 60, 1e-9),
    }


def _cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

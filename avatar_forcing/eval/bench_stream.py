"""`avatar-forcing bench stream`: speed, latency, speedup, real-time factor, memory and long-run stability
of the streaming engine, all measured in one run on this machine.

Definitions (docs/STREAMING.md):
- motion time per block: StreamingGenerator.step at `nfe` (3 CFG branches batched, cache write included),
  conditions precomputed (the paper's definition);
- baseline: the INFP*-like bidirectional sampler (75-frame window + 10 context frames, no cache), same net;
- speedup: first-frame latency of the baseline (75 frames of input + one window's compute) over ours (B
  frames of input + one block's compute), the paper's 3.4 s / 0.5 s; the per-frame compute ratio is
  printed beside it;
- pipeline RTF at 512^2: audio features + tracking a user video + DFoT + rendering + H.264 encoding,
  frames per second of wall time, with capture/tracking, generation/rendering and encoding on three
  threads as a live front end runs them;
- algorithmic latency: B frames (a block is due when its last input frame is in) = B / 25 s worst case;
  end to end: user audio pushed in real time in 20 ms chunks by a thread; for every chunk, the time from
  its arrival to the moment the rendered 512^2 frame holding it is ready; mean and worst;
- long run: a simulated session faster than real time (no rendering), resident memory and per-block time
  at 1, 10, 30 minutes, and per-minute motion statistics (plot);
- paper backend (with the `paper` preset): the parts of a converted official checkpoint beside the DFoT,
  with random full-size weights (no files needed): LIA portrait encoding, user-frame encoding and decoding
  per 512^2 frame, and causal wav2vec2-base features per block (one audio stream).
Only `--preset paper`: the paper figures alone (the tiny pipeline, latency and long run need `tiny`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from avatar_forcing.motion.vector import FPS, MotionStats, idx

SR = 16000
FRAME = SR // FPS


@dataclass
class BenchConfig:
    presets: tuple[str, ...] = ("tiny", "paper")
    nfe: int = 10
    blocks: int = 25  # timed blocks per measurement (after `warmup`), as in `bench model`
    warmup: int = 5
    paper_blocks: int = 3  # the paper preset is slow on a CPU
    paper_frames: int = 3  # LIA frames decoded/encoded at 512^2 (about a second each on 2 cores)
    pipeline_seconds: float = 8.0
    latency_seconds: float = 6.0
    chunk_ms: int = 20
    long_minutes: tuple[int, ...] = (1, 10, 30)
    long_nfe: int = 2  # the long run checks constancy, not absolute speed
    long_paired_blocks: int = 60  # blocks timed side by side with a one-minute-old session at each mark
    threads: int = 2  # torch threads for the paper preset
    tiny_threads: int = 1  # for tiny: one core generates, the other tracks and encodes
    size: int = 512
    plot: str = "docs/images/long_session.png"
    checkpoint: str | None = None
    results: dict = field(default_factory=dict)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise bursts with a syllable-like envelope (4 Hz) and pauses: a deterministic voice stand-in."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t) + 0.3 * np.sin(2 * np.pi * 0.23 * t), 0, None)
    return (rng.normal(0, 0.2, n) * envelope).astype(np.float32)


def make_model(preset: str, checkpoint: str | None):
    from avatar_forcing.model.config import model_preset
    from avatar_forcing.model.dfot import DFoT

    if checkpoint and preset == "tiny":
        from avatar_forcing.model.checkpoint import load_checkpoint

        model, _, stats = load_checkpoint(checkpoint)
        return model.eval(), stats, True
    torch.manual_seed(0)
    model = DFoT(model_preset(preset)).eval()
    with torch.no_grad():  # non-zero output layers, so the numbers flow like a trained net's
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model, MotionStats(), False


def time_generator(model, nfe: int, blocks: int, warmup: int, block_size: int | None = None) -> float:
    """Median ms per streaming block with precomputed conditions."""
    from avatar_forcing.model.config import SamplerConfig
    from avatar_forcing.model.streaming import StreamingGenerator
    from avatar_forcing.stream.session import with_block_size

    model = with_block_size(model, block_size)
    cfg = model.cfg
    gen = StreamingGenerator(model, SamplerConfig(nfe=nfe, first_block="short"), torch.zeros(cfg.motion_dim))
    rng = torch.Generator().manual_seed(0)
    n = cfg.block_size
    times = []
    for i in range(warmup + blocks):
        conds = (
            torch.randn(n, cfg.audio_dim, generator=rng),
            torch.randn(n, cfg.audio_dim, generator=rng),
            torch.randn(n, cfg.user_motion_dim, generator=rng),
        )
        start = time.perf_counter()
        gen.step(*conds)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def time_baseline(model, nfe: int, windows: int) -> float:
    """Median ms per bidirectional window (75 + 10 frames)."""
    from avatar_forcing.model.config import SamplerConfig
    from avatar_forcing.stream.baseline import BaselineConfig, BidirectionalSampler

    bcfg, cfg = BaselineConfig(), model.cfg
    sampler = BidirectionalSampler(model, bcfg, SamplerConfig(nfe=nfe))
    frames = bcfg.window + bcfg.context
    rng = torch.Generator().manual_seed(0)
    times = []
    for i in range(windows + 1):
        conds = (
            torch.randn(frames, cfg.audio_dim, generator=rng),
            torch.randn(frames, cfg.audio_dim, generator=rng),
            torch.randn(frames, cfg.user_motion_dim, generator=rng),
        )
        start = time.perf_counter()
        sampler.sample_window(
            torch.zeros(bcfg.context, cfg.motion_dim),
            *conds,
            torch.zeros(cfg.motion_dim),
            torch.randn(bcfg.window, cfg.motion_dim, generator=rng),
        )
        if i >= 1:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_motion(bc: BenchConfig) -> dict:
    from avatar_forcing.stream.baseline import BaselineConfig

    out = {}
    bcfg = BaselineConfig()
    for preset in bc.presets:
        torch.set_num_threads(bc.tiny_threads if preset == "tiny" else bc.threads)
        model, _, trained = make_model(preset, bc.checkpoint)
        blocks = bc.blocks if preset == "tiny" else bc.paper_blocks
        ours = time_generator(model, bc.nfe, blocks, 1 if preset != "tiny" else bc.warmup)
        base = time_baseline(model, bc.nfe, 1 if preset != "tiny" else 3)
        B = model.cfg.block_size
        ours_latency = B / FPS + ours / 1000
        base_latency = bcfg.window / FPS + base / 1000
        out[preset] = {
            "parameters": model.num_parameters(),
            "trained": trained,
            "block_frames": B,
            "motion_ms_per_block": round(ours, 2),
            "baseline_ms_per_window": round(base, 1),
            "first_frame_latency_s": round(ours_latency, 3),
            "baseline_first_frame_latency_s": round(base_latency, 3),
            "speedup": round(base_latency / ours_latency, 2),
            "compute_ms_per_frame": round(ours / B, 2),
            "baseline_compute_ms_per_frame": round(base / bcfg.window, 2),
        }
        print(
            f"  {preset}: {ours:.1f} ms/block, baseline {base:.0f} ms/window, "
            f"speedup {out[preset]['speedup']}x"
        )
    return out


def bench_paper_backend(bc: BenchConfig) -> dict:
    """The LIA motion auto-encoder at 512^2 and wav2vec2-base features, random full-size weights."""
    from avatar_forcing.motion.lia.backend import LiaBackend
    from avatar_forcing.motion.lia.generator import LIA_PRESETS, Generator
    from avatar_forcing.motion.renderer import default_portrait

    torch.manual_seed(0)
    backend = LiaBackend(Generator(LIA_PRESETS["paper"]))
    portrait = default_portrait()
    start = time.perf_counter()
    identity = backend.encode_portrait(portrait)
    portrait_ms = (time.perf_counter() - start) * 1000
    rng = np.random.default_rng(0)
    encode, decode = [], []
    for k in range(bc.paper_frames + 1):  # the first of each is a warm-up
        start = time.perf_counter()
        backend.encode_frames([np.roll(portrait, 4 * k, axis=1)])
        encode.append((time.perf_counter() - start) * 1000)
        motion = identity.reference_motion + rng.normal(0, 0.05, identity.reference_motion.shape)
        start = time.perf_counter()
        backend.decode(identity, motion.astype(np.float32)[None])
        decode.append((time.perf_counter() - start) * 1000)
    out = {
        "lia_parameters": sum(p.numel() for p in backend.generator.parameters()),
        "lia_size": backend.size,
        "lia_portrait_encode_ms": round(portrait_ms, 1),
        "lia_encode_ms_per_frame": round(statistics.median(encode[1:]), 1),
        "lia_decode_ms_per_frame": round(statistics.median(decode[1:]), 1),
        "wav2vec2_ms_per_block": bench_wav2vec2(bc),
    }
    print(f"  LIA {out['lia_size']}^2: decode {out['lia_decode_ms_per_frame']} ms/frame, encode "
          f"{out['lia_encode_ms_per_frame']} ms/frame; wav2vec2 {out['wav2vec2_ms_per_block']} ms/block")
    return out


def bench_wav2vec2(bc: BenchConfig) -> float:
    """Median ms of one causal streaming wav2vec2-base push of a block (random weights, one stream)."""
    import transformers

    from avatar_forcing.audio.wav2vec import Wav2Vec2Features, Wav2Vec2Stream
    from avatar_forcing.model.config import model_preset

    block = model_preset("paper").block_size
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)  # Wav2Vec2Config() is the wav2vec2-base architecture
        model = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config())
        model.save_pretrained(tmp, safe_serialization=True)
        stream = Wav2Vec2Stream(Wav2Vec2Features(tmp))
    pcm = speech_like(bc.paper_blocks * 2 * block / FPS + 3.0, 6)
    times = []
    for i in range(len(pcm) // (block * FRAME)):
        start = time.perf_counter()
        stream.push(pcm[i * block * FRAME : (i + 1) * block * FRAME])
        times.append((time.perf_counter() - start) * 1000)
    steady = int(stream.features.cfg.lookback_s * FPS) // block  # once the look-back window is full
    return round(statistics.median(times[steady:]), 1)


def make_user_video(path: Path, seconds: float, size: int) -> None:
    """A moving face video: the astronaut, panned and zoomed a little (real face, deterministic)."""
    import cv2

    from avatar_forcing.media.video import VideoWriter
    from avatar_forcing.motion.renderer import default_portrait

    photo = default_portrait()
    with VideoWriter(path, fps=FPS) as writer:
        for k in range(int(seconds * FPS)):
            a = 0.04 * np.sin(2 * np.pi * k / 50)
            m = cv2.getRotationMatrix2D((256, 200), 8 * a * 25, 1.0 + a)
            writer.write(cv2.resize(cv2.warpAffine(photo, m, (512, 512)), (size, size)))


def bench_renderer_and_pipeline(bc: BenchConfig, model, stats) -> dict:
    """Renderer fps, and the whole pipeline on a user video + two audio tracks, encoded to H.264.

    The pipeline runs as a live front end would on two cores: a capture thread decodes the user's video,
    tracks each frame (MediaPipe) and pushes it with its audio; the main thread steps the session (audio
    features, DFoT, rendering); an encoder thread writes H.264 as live output would (`LIVE_ENCODER`).
    MediaPipe, OpenCV, PyAV and torch release the GIL, so the stages overlap."""
    try:
        from avatar_forcing.motion.renderer import PortraitRenderer  # noqa: F401
    except ImportError as exc:
        print(f"  renderer unavailable ({exc}): render fps and pipeline RTF not measured")
        return {"renderer_fps": None, "pipeline": None}
    from avatar_forcing.media.video import LIVE_ENCODER, BackgroundVideoWriter, read_video
    from avatar_forcing.stream.generate import frames_at_fps
    from avatar_forcing.stream.options import SessionOptions
    from avatar_forcing.stream.session import AvatarSession

    session = AvatarSession(
        portrait=None, options=SessionOptions(output_size=bc.size, nfe=bc.nfe), model=model, stats=stats
    )
    motion = np.tile(session.reference_motion, (50, 1))
    session.renderer.render_many(motion[:5])
    start = time.perf_counter()
    session.renderer.render_many(motion)
    renderer_fps = len(motion) / (time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "user.mp4"
        make_user_video(video, bc.pipeline_seconds, 480)
        frames = frames_at_fps(read_video(video))
        avatar, user = speech_like(bc.pipeline_seconds, 1), speech_like(bc.pipeline_seconds, 2)
        total = int(bc.pipeline_seconds * FPS)
        parts = {"features_ms": 0.0, "dfot_ms": 0.0, "render_ms": 0.0, "track_ms": 0.0}
        failure: list[BaseException] = []

        def capture() -> None:
            try:
                for k in range(total):  # the frame first: its block is due only once it is tracked
                    session.push_user_frame(next(frames), k / FPS)
                    session.push_user_audio(user[k * FRAME : (k + 1) * FRAME], SR)
                    session.push_avatar_audio(avatar[k * FRAME : (k + 1) * FRAME], SR)
            except BaseException as exc:  # noqa: BLE001 (re-raised by the main thread)
                failure.append(exc)

        start = time.perf_counter()
        thread = threading.Thread(target=capture, name="capture", daemon=True)
        thread.start()
        written = 0
        with BackgroundVideoWriter(
            Path(tmp) / "out.mp4", fps=FPS, audio=avatar, cfg=LIVE_ENCODER
        ) as writer:
            while written < total:
                if failure:
                    raise failure[0]
                block = session.step()
                if block is None:
                    time.sleep(0.002)
                    continue
                for name in parts:
                    parts[name] += getattr(block.timings, name)
                for rgb in block.frames:
                    writer.write(rgb)
                written += len(block.frames)
        elapsed = time.perf_counter() - start
        thread.join()
        parts["encode_ms"] = writer.encode_ms
    session.close()
    fps = total / elapsed
    print(f"  renderer {renderer_fps:.0f} fps; pipeline {fps:.1f} fps at {bc.size}^2 (RTF {fps / FPS:.2f})")
    return {
        "renderer_fps": round(renderer_fps, 1),
        "pipeline": {
            "fps": round(fps, 2),
            "realtime_factor": round(fps / FPS, 3),
            "size": bc.size,
            "ms_per_frame": {k: round(v / total, 2) for k, v in parts.items()},
        },
    }


def bench_latency(bc: BenchConfig, model, stats, block_size: int) -> dict:
    """Real-time end-to-end latency at `bc.size`: a thread pushes user audio every `chunk_ms`, the main
    loop steps the session and renders each block's frames in order; for every chunk, the time from its
    arrival to the moment the rendered frame that holds its end is ready."""
    from avatar_forcing.stream.options import SessionOptions
    from avatar_forcing.stream.session import AvatarSession, resize_frames

    session = AvatarSession(
        options=SessionOptions(nfe=bc.nfe, block_size=block_size, render=False, output_size=bc.size),
        model=model,
        stats=stats,
    )
    backend, identity = session.backend, session.identity
    backend.decode(identity, np.tile(session.reference_motion, (2, 1)))  # warm-up
    chunk = SR * bc.chunk_ms // 1000
    pcm = speech_like(bc.latency_seconds, 3)
    arrivals: list[tuple[int, float]] = []  # (frame completed by this chunk, wall time)
    done = threading.Event()
    t0 = time.perf_counter()

    def feeder() -> None:
        for i in range(len(pcm) // chunk):
            target = t0 + (i + 1) * bc.chunk_ms / 1000
            time.sleep(max(0.0, target - time.perf_counter()))
            session.push_user_audio(pcm[i * chunk : (i + 1) * chunk], SR)
            arrivals.append((((i + 1) * chunk - 1) // FRAME, time.perf_counter()))
        done.set()

    thread = threading.Thread(target=feeder, daemon=True)
    thread.start()
    shown: dict[int, float] = {}  # frame -> wall time its rendered image is ready
    compute_ms = []
    while not done.is_set() or session.ready():
        start = time.perf_counter()
        block = session.step()
        if block is None:
            time.sleep(0.001)
            continue
        for i, m in enumerate(block.motion):  # a front end shows each frame as soon as it is rendered
            resize_frames(backend.decode(identity, m[None]), bc.size)
            shown[block.start_frame + i] = time.perf_counter()
        compute_ms.append((time.perf_counter() - start) * 1000)
    thread.join()
    session.close()
    latencies = [shown[frame] - arrival for frame, arrival in arrivals if frame in shown]
    return {
        "block_frames": block_size,
        "algorithmic_s": round(block_size / FPS, 3),
        "compute_ms_per_block": round(statistics.median(compute_ms), 1),
        "e2e_mean_s": round(float(np.mean(latencies)), 3),
        "e2e_max_s": round(float(np.max(latencies)), 3),
    }


def mouth_speech_corr(jaw: np.ndarray, pcm: np.ndarray) -> float:
    energy = np.sqrt((pcm[: len(jaw) * FRAME].reshape(-1, FRAME) ** 2).mean(1))
    if jaw.std() < 1e-8 or energy.std() < 1e-8:
        return 0.0
    return float(np.corrcoef(jaw, energy)[0, 1])


def bench_long(bc: BenchConfig, model, stats) -> dict:
    """A simulated session (faster than real time, no rendering): memory, block time, motion statistics.

    Block time drifts are measured side by side: at every mark, `long_paired_blocks` blocks of the long
    session alternate with blocks of a reference session that has run for only one minute, and the drift
    is the median of the paired time ratios. Absolute per-minute medians are kept too, but on a shared
    machine they follow its load, not the session."""
    from avatar_forcing.stream.options import SessionOptions
    from avatar_forcing.stream.session import AvatarSession

    def new_session() -> AvatarSession:
        # the default portrait's tracked motion as the reference: an all-zero one is not a face, and a
        # trained model spends minutes drifting away from it
        return AvatarSession(options=SessionOptions(nfe=bc.long_nfe, render=False), model=model, stats=stats)

    session, reference = new_session(), new_session()
    B = session.block_size
    block_s = B / FPS
    per_minute = int(60 / block_s)
    n_blocks = int(max(bc.long_minutes) * 60 / block_s)
    voice = speech_like(60.0, 4)  # one minute of the avatar's voice, looped
    user = speech_like(60.0, 5)
    jaw = idx("jawOpen")

    def timed_step(s: AvatarSession, i: int):
        lo = (i % per_minute) * B * FRAME
        s.push_avatar_audio(voice[lo : lo + B * FRAME], SR)
        s.push_user_audio(user[lo : lo + B * FRAME], SR)
        start = time.perf_counter()
        block = s.step()
        return block, (time.perf_counter() - start) * 1000

    for i in range(per_minute):  # the reference: one minute old
        timed_step(reference, i)
    ref_i = per_minute
    minute_motion, minute_pcm, block_ms, marks, curve = [], [], [], {}, []
    for i in tqdm(range(n_blocks), desc="long session", unit="block"):
        block, ms = timed_step(session, i)
        block_ms.append(ms)
        minute_motion.append(block.motion)
        minute_pcm.append(block.avatar_audio)
        if (i + 1) % per_minute:
            continue
        m, p = np.concatenate(minute_motion), np.concatenate(minute_pcm)
        curve.append(
            {
                "minute": (i + 1) // per_minute,
                "mean": float(m.mean()),
                "var": float(m.var(0).mean()),
                "jaw_mean": float(m[:, jaw].mean()),
                "mouth_speech_corr": mouth_speech_corr(m[:, jaw], p),
            }
        )
        minute_motion, minute_pcm = [], []
        if curve[-1]["minute"] not in bc.long_minutes:
            continue
        ratios = []  # long session / one-minute reference, alternating so both see the same machine load
        for _ in range(bc.long_paired_blocks):
            _, ref_ms = timed_step(reference, ref_i)
            ref_i += 1
            # the long session's inputs continue where they were; these extra blocks (24 s per mark at
            # the defaults) are not in the per-minute statistics
            i_pair = i + 1 + len(ratios)
            _, ms = timed_step(session, i_pair)
            ratios.append(ms / ref_ms)
        marks[curve[-1]["minute"]] = {
            "rss_mb": round(rss_mb(), 1),
            "block_ms": round(statistics.median(block_ms[-per_minute:]), 2),
            "paired_ratio": round(statistics.median(ratios), 3),
            "buffers": session.buffer_sizes(),
        }
    session.close()
    reference.close()
    first, last = marks[min(marks)], marks[max(marks)]
    drift = {
        "rss_pct": round(100 * (last["rss_mb"] / first["rss_mb"] - 1), 2),
        "block_ms_pct": round(100 * (last["paired_ratio"] / first["paired_ratio"] - 1), 2),
        "block_ms_unpaired_pct": round(100 * (last["block_ms"] / first["block_ms"] - 1), 2),
    }
    plot_long(curve, bc.plot)
    print(f"  long run: {marks}; drift {drift}")
    return {
        "nfe": bc.long_nfe,
        "render": False,
        "marks": marks,
        "drift": drift,
        "per_minute": curve,
        "plot": bc.plot,
    }


def plot_long(curve: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [c["minute"] for c in curve]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for ax, key, title in zip(
        axes,
        ("mean", "var", "mouth_speech_corr"),
        (
            "motion mean (all 58 channels)",
            "motion variance (mean over channels)",
            "jawOpen vs speech-energy correlation",
        ),
        strict=True,
    ):
        values = [c[key] for c in curve]
        ax.plot(minutes, values, marker="o", ms=3)
        # Absolute scales, so a flat line means no drift (autoscaling would magnify noise).
        top = 1.0 if key == "mouth_speech_corr" else 1.5 * max(abs(v) for v in values) + 1e-6
        ax.set_ylim(-top if key != "var" else 0.0, top)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("session minute")
        ax.grid(alpha=0.3)
    fig.suptitle("Long-session stability: per-minute motion statistics over a simulated session")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bench_stream(bc: BenchConfig) -> dict:
    res: dict = {"machine": machine(), "config": {k: v for k, v in bc.__dict__.items() if k != "results"}}
    print("motion generation and baseline")
    res["motion"] = bench_motion(bc)
    if "paper" in bc.presets:
        torch.set_num_threads(bc.threads)
        print("paper backend: LIA motion auto-encoder and wav2vec2 (random full-size weights)")
        res["paper_backend"] = bench_paper_backend(bc)
    if "tiny" not in bc.presets:
        return res
    torch.set_num_threads(bc.tiny_threads)
    model, stats, trained = make_model("tiny", bc.checkpoint)
    res["tiny_trained"] = trained
    print("renderer and pipeline")
    res.update(bench_renderer_and_pipeline(bc, model, stats))
    print("latency")
    res["latency"] = [bench_latency(bc, model, stats, b) for b in (10, 5)]
    for row in res["latency"]:
        print(
            f"  B={row['block_frames']}: algorithmic {row['algorithmic_s']} s, "
            f"compute {row['compute_ms_per_block']} ms/block, e2e mean {row['e2e_mean_s']} s, "
            f"max {row['e2e_max_s']} s"
        )
    if bc.long_minutes:
        print("long session")
        res["long"] = bench_long(bc, model, stats)
    return res


def machine() -> dict:
    import os
    import platform

    cpu = platform.processor()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
    }


def print_table(res: dict) -> None:
    rows = []
    for preset, m in res["motion"].items():
        rows.append(
            (
                f"motion per {m['block_frames']}-frame block, {res['config']['nfe']} NFE ({preset})",
                f"{m['motion_ms_per_block']} ms",
            )
        )
        rows.append((f"baseline per 75+10 window ({preset})", f"{m['baseline_ms_per_window']} ms"))
        rows.append(
            (
                f"speedup, first-frame latency ({preset})",
                f"{m['speedup']}x ({m['baseline_first_frame_latency_s']} s / {m['first_frame_latency_s']} s)",
            )
        )
    if "paper_backend" in res:
        pb = res["paper_backend"]
        rows.append((f"LIA decode per {pb['lia_size']}^2 frame (paper)",
                     f"{pb['lia_decode_ms_per_frame']} ms"))
        rows.append((f"LIA encode per {pb['lia_size']}^2 user frame (paper)",
                     f"{pb['lia_encode_ms_per_frame']} ms"))
        rows.append(("wav2vec2-base features per block, one stream (paper)",
                     f"{pb['wav2vec2_ms_per_block']} ms"))
    if res.get("renderer_fps") is not None:
        rows.append(("renderer", f"{res['renderer_fps']} fps"))
        p = res["pipeline"]
        rows.append((f"whole pipeline at {p['size']}^2", f"{p['fps']} fps (RTF {p['realtime_factor']})"))
    for row in res.get("latency", []):
        rows.append(
            (
                f"latency, {row['block_frames']}-frame blocks (algorithmic / e2e mean / max)",
                f"{row['algorithmic_s']} / {row['e2e_mean_s']} / {row['e2e_max_s']} s",
            )
        )
    if "long" in res:
        for minute, mark in res["long"]["marks"].items():
            rows.append(
                (
                    f"minute {minute}: RSS, block time (nfe {res['long']['nfe']}, no render), "
                    "vs a 1-minute session",
                    f"{mark['rss_mb']} MB, {mark['block_ms']} ms, x{mark['paired_ratio']}",
                )
            )
    width = max(len(r[0]) for r in rows)
    print(f"\n{res['machine']['cpu']} ({res['machine']['cores']} cores), torch {res['machine']['torch']}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def bench_stream_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        choices=("tiny", "paper"),
        action="append",
        help="model preset(s) for the motion timing (default: both)",
    )
    parser.add_argument("--checkpoint", help="a trained tiny checkpoint (default: random weights)")
    parser.add_argument("--json", help="write all results here")
    parser.add_argument(
        "--long-minutes",
        type=int,
        nargs="*",
        default=list(BenchConfig.long_minutes),
        help="marks of the simulated long session (empty: skip it)",
    )
    parser.add_argument("--plot", default=BenchConfig.plot)


def bench_stream_run(args: argparse.Namespace) -> int:
    bc = BenchConfig(
        presets=tuple(args.preset or BenchConfig.presets),
        checkpoint=args.checkpoint,
        long_minutes=tuple(args.long_minutes),
        plot=args.plot,
    )
    res = bench_stream(bc)
    print_table(res)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0

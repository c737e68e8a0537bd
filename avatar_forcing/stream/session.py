"""AvatarSession: the streaming engine behind every front end (CLI, WebRTC server, Python API).

    session = AvatarSession(checkpoint_dir, portrait_rgb, SessionOptions())
    session.push_user_audio(pcm, 48000)           # any chunk size, rate, channel count
    session.push_user_frame(rgb, timestamp_s)     # webcam, tracked inside
    session.push_avatar_audio(pcm, 24000)         # the avatar's own speech (TTS, agent)
    while (block := session.step()) is not None:  # a block as soon as its inputs are in
        show(block.frames); play(block.avatar_audio)
    session.close()

How time advances (see docs/STREAMING.md). The session timeline counts 25 fps frames from the start.
A block of B frames is generated once the session *clock* has passed its last frame:
  * when any user stream is active (mic, webcam or pushed motion), the clock is the furthest user
    input: the user is the real-time source. The avatar's audio is a queue played from "now": what is
    queued goes with the next frames, the rest of a block is silence (the avatar listens);
  * with no user at all (talking only), the clock is the end of the queued avatar audio;
  * ``advance_to(t)`` moves the clock to at least t seconds (a wall clock), so a session with no input
    at all, or a stalled input, still produces frames (null conditions);
  * ``finish()`` declares the end of input: the remaining partial block is generated, padded.
Whatever a frame lacks when its block is generated is a null condition: silent audio, absent user
motion, or, for a block with no user input at all, the user condition dropped (talking-only).

The checkpoint decides the motion backend (motion/backend.py: the 58-d rig by default, the paper's LIA
latents for a converted official checkpoint) and the audio features (stream/features.py: log-mel or
wav2vec2); the session only talks to their interfaces. On a GPU (device "auto") the DFoT runs under
bfloat16 autocast and the LIA decoder in bfloat16.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import threading
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from avatar_forcing.audio.io import StreamingResampler
from avatar_forcing.errors import CheckpointError, InputError
from avatar_forcing.motion.backend import (
    FrameEncoder,
    MotionBackend,
    PortraitIdentity,
    RigBackend,
    RigBackendConfig,
    backend_from_record,
    check_motion,
)
from avatar_forcing.motion.neutral import OnlineRest, clip_relative
from avatar_forcing.motion.vector import FPS, MotionStats
from avatar_forcing.stream.features import LOG_MEL, AudioFeatures, FeatureStream, audio_features_for
from avatar_forcing.stream.inputs import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AudioInput,
    MotionInput,
    check_sample_rate,
    check_timestamp,
    to_mono_float,
)
from avatar_forcing.stream.options import SessionOptions, resolve_device, resolve_dtype
from avatar_forcing.stream.settle import Settle, SettleConfig

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "default_model"
IDLE_SKIP_S = 2.0  # a stretch with no input at all longer than this is skipped, not generated
PRIME_SLACK_FRAMES = 2  # the causal features complete a frame a little after its samples: push a little more


@dataclass
class BlockTimings:
    """Milliseconds spent on one block; `track_ms` = webcam tracking done at push time since the last one."""

    features_ms: float = 0.0
    dfot_ms: float = 0.0
    render_ms: float = 0.0
    track_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.features_ms + self.dfot_ms + self.render_ms + self.track_ms


@dataclass
class Block:
    start_frame: int                # on the session timeline (25 fps from the start)
    motion: np.ndarray              # (n, D) the backend's units (rig: 58-d relative to rest, clipped)
    frames: np.ndarray | None       # (n, H, W, 3) uint8 (the portrait's framing), None when not rendering
    avatar_audio: np.ndarray        # (n * 640,) float32 16 kHz: what the avatar says during these frames
    timings: BlockTimings = field(default_factory=BlockTimings)
    has_user: bool = True           # False: talking-only block (no user input in it)

    def __len__(self) -> int:
        return len(self.motion)

    @property
    def start_time(self) -> float:
        return self.start_frame / FPS


@dataclass
class Conditions:
    """What a run of frames gives the model, fixed once committed: features, the user's normalized motion,
    whether the user was there (per frame), and the avatar's audio samples."""

    avatar_feats: np.ndarray    # (n, audio_dim)
    user_feats: np.ndarray      # (n, audio_dim)
    user_motion: np.ndarray     # (n, motion_dim)
    user_present: np.ndarray    # (n,) bool
    avatar_pcm: np.ndarray      # (n * 640,)

    def __add__(self, later: Conditions) -> Conditions:
        pairs = zip(self.fields(), later.fields(), strict=True)
        return Conditions(*(np.concatenate(pair) for pair in pairs))

    def fields(self) -> tuple[np.ndarray, ...]:
        return self.avatar_feats, self.user_feats, self.user_motion, self.user_present, self.avatar_pcm

    def frames(self, a: int, b: int) -> Conditions:
        *per_frame, pcm = self.fields()
        return Conditions(*(x[a:b] for x in per_frame), pcm[a * FRAME_SAMPLES: b * FRAME_SAMPLES])


@dataclass
class TimedFrame:
    index: int                      # frame on the session timeline
    time: float                     # seconds on the session timeline
    motion: np.ndarray              # (D,)
    image: np.ndarray | None        # (H, W, 3) uint8
    audio: np.ndarray               # (640,) the avatar audio of this frame


@dataclass
class LoadedModel:
    model: torch.nn.Module
    stats: MotionStats
    extra: dict = field(default_factory=dict)  # the checkpoint's free-form record (motion backend, audio...)
    directory: Path | None = None              # where relative paths in `extra` point


def identity_stats(dim: int) -> MotionStats:
    """No normalization (mean 0, std 1): converted official checkpoints take raw LIA latents."""
    return MotionStats(np.zeros(dim, np.float32), np.ones(dim, np.float32))


def load_engine_model(checkpoint: str | Path | None, model: torch.nn.Module | None,
                      stats: MotionStats | None, options: SessionOptions) -> LoadedModel:
    """A checkpoint directory, an in-memory model, the installed default model, or (explicitly) random."""
    if model is not None:
        if stats is None:
            raise CheckpointError("a model passed in memory needs its MotionStats (stats=...)")
        return LoadedModel(model, stats)
    if checkpoint is None and not options.random_init and (DEFAULT_CHECKPOINT / "config.json").is_file():
        checkpoint = DEFAULT_CHECKPOINT
    if checkpoint is not None:
        from avatar_forcing.model.checkpoint import load_checkpoint, read_config

        loaded_model, cfg, loaded_stats = load_checkpoint(checkpoint, device=resolve_device(options.device))
        if loaded_stats is None:  # a checkpoint trained on unnormalized motion
            loaded_stats = identity_stats(cfg.motion_dim)
        extra = read_config(checkpoint).get("extra") or {}
        return LoadedModel(loaded_model, loaded_stats, extra, Path(checkpoint))
    if not options.random_init:
        raise CheckpointError(
            f"no checkpoint given and no default model installed in {DEFAULT_CHECKPOINT}; pass a checkpoint "
            "directory (for example from `avatar-forcing train`), or SessionOptions(random_init=True) for an "
            "untrained model (tests and benchmarks only: its motion is noise)")
    from avatar_forcing.model.config import model_preset
    from avatar_forcing.model.dfot import DFoT

    warnings.warn("AvatarSession is running an UNTRAINED tiny model (random_init=True): its motion is "
                  "meaningless", stacklevel=3)
    torch.manual_seed(options.seed)
    return LoadedModel(DFoT(model_preset("tiny")).eval(), MotionStats())


def with_block_size(model: torch.nn.Module, block_size: int | None) -> torch.nn.Module:
    """The same weights streamed with another block size (a view sharing parameters).

    With the default frame-lookahead mask the network's computation does not depend on B at all, so
    B is a streaming choice: smaller blocks = lower latency, more passes per second."""
    if block_size is None or block_size == model.cfg.block_size:
        return model
    view = copy.copy(model)  # shallow: the same submodules and parameters
    view.cfg = replace(model.cfg, block_size=block_size).validate()
    return view


def make_backend(record: dict | None, directory: Path | None, options: SessionOptions,
                 device: torch.device, dtype: torch.dtype) -> MotionBackend:
    """The checkpoint's motion backend, placed on the session's device (rig: the portrait's own framing,
    its longer side at most output_size)."""
    if (record or {}).get("backend", "rig") == "rig":
        return RigBackend(RigBackendConfig(max_side=options.output_size))
    backend = backend_from_record(record, directory)
    from avatar_forcing.motion.lia.backend import LiaBackend

    if isinstance(backend, LiaBackend):  # the record loads on the CPU in float32: move it
        dtype_name = str(dtype).removeprefix("torch.")
        backend = LiaBackend(backend.generator, replace(backend.cfg, device=str(device), dtype=dtype_name))
    return backend


def load_portrait(portrait: str | Path | np.ndarray | None) -> np.ndarray:
    if portrait is None:
        from avatar_forcing.motion.renderer import default_portrait

        return default_portrait()
    if isinstance(portrait, (str, Path)):
        from avatar_forcing.media.image import load_image

        return load_image(portrait)
    return np.asarray(portrait)


def resize_frames(frames: np.ndarray, size: int | None) -> np.ndarray:
    """(T, S, S, 3) -> (T, size, size, 3): a backend with a native square frame size (LIA) meets
    output_size (None: as the backend renders)."""
    if size is None or frames.shape[1] == size:
        return frames
    import cv2

    interp = cv2.INTER_AREA if frames.shape[1] > size else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])


class _AudioStream:
    """One audio input: resampler (per incoming rate) + timeline buffer + streaming features."""

    def __init__(self, name: str, features: AudioFeatures) -> None:
        self.name = name
        self.buffer = AudioInput()
        self.features: FeatureStream = features.stream()
        self.rate: int | None = None
        self.resampler: StreamingResampler | None = None

    def reset(self) -> None:
        self.buffer.reset()
        self.features.reset()
        self.rate, self.resampler = None, None

    def resample(self, pcm: np.ndarray, rate: int) -> np.ndarray:
        if rate != self.rate:
            tail = self.flush()
            self.rate = rate
            self.resampler = None if rate == SAMPLE_RATE else StreamingResampler(rate, SAMPLE_RATE)
            pcm = np.concatenate([tail, self.resampler.push(pcm) if self.resampler else pcm])
            return pcm
        return self.resampler.push(pcm) if self.resampler else pcm

    def flush(self) -> np.ndarray:
        """The resampler's held-back tail (at a rate change or the end of input)."""
        return self.resampler.flush() if self.resampler is not None else np.zeros(0, np.float32)


class AvatarSession:
    """Setup -> push_* / step -> close. Not thread-safe for concurrent `step` calls; pushes may come
    from another thread than `step` (a lock guards the buffers)."""

    def __init__(self, checkpoint: str | Path | None = None, portrait: str | Path | np.ndarray | None = None,
                 options: SessionOptions | None = None, *, model: torch.nn.Module | None = None,
                 stats: MotionStats | None = None, reference_motion: np.ndarray | None = None,
                 backend: MotionBackend | None = None, audio_features: AudioFeatures | None = None):
        """`model` + `stats`: an in-memory model instead of a checkpoint. `reference_motion` (D,): skip the
        portrait's encoding (only with ``render=False``; tests and motion-only front ends; for the rig it
        is the rest, zero). `backend` and
        `audio_features` override what the checkpoint asks for (default for an in-memory model: the rig and
        log-mel)."""
        from avatar_forcing.model.config import SamplerConfig
        from avatar_forcing.model.streaming import StreamingGenerator

        self.options = opts = (options or SessionOptions()).validate()
        if opts.threads is not None:
            torch.set_num_threads(opts.threads)
        self.device = resolve_device(opts.device)
        self.dtype = resolve_dtype(opts.dtype, self.device)
        loaded = load_engine_model(checkpoint, model, stats, opts)
        self.model = with_block_size(loaded.model.to(self.device).eval(), opts.block_size)
        self.stats = loaded.stats
        self.block_size = self.model.cfg.block_size
        self.backend = backend or make_backend(loaded.extra.get("motion"), loaded.directory, opts,
                                               self.device, self.dtype)
        self._check_dims()
        if audio_features is None:  # log-mel unless the checkpoint names another
            audio_features = audio_features_for(loaded.extra, self.model.cfg.audio_dim, loaded.directory,
                                                opts.wav2vec, self.device)
        elif audio_features.dim != self.model.cfg.audio_dim:
            raise CheckpointError(f"the model takes {self.model.cfg.audio_dim} audio numbers per frame but "
                                  f"{audio_features.name} features have {audio_features.dim}")
        self.audio_features = audio_features
        self.identity: PortraitIdentity | None = None
        if opts.render or reference_motion is None:
            self.identity = self.backend.encode_portrait(load_portrait(portrait))  # raises NoFaceError (rig)
            reference_motion = self.identity.reference_motion  # rig: the rest (zero), never the photo's own
        self.reference_motion = check_motion(reference_motion, self.motion_dim, "reference motion")[0]
        reference = torch.as_tensor(self.stats.normalize(self.reference_motion), device=self.device)
        schedule = (loaded.extra.get("sampler") or {}).get("schedule", "uniform")  # "official" if converted
        sampler = SamplerConfig(nfe=opts.nfe, w_audio=opts.cfg_audio, w_user=opts.cfg_user,
                                pose_guidance=opts.pose_guidance, first_block=opts.first_block,
                                schedule=schedule,
                                history_noise=opts.history_noise,
                                clean_context=opts.clean_context, overlap=opts.overlap,
                                guidance_interval=tuple(opts.guidance_interval),
                                guidance_form=opts.guidance_form)
        self.generator = StreamingGenerator(self.model, sampler, reference, seed=opts.seed)
        self._encoder: FrameEncoder | None = None  # created on the first webcam frame
        # the head settles in long silences: the rig's head pose, heard through log-mel features
        settles = isinstance(self.backend, RigBackend) and self.audio_features.name == LOG_MEL
        self.settle = (Settle(SettleConfig(opts.settle_after_s, opts.settle_time_constant_s))
                       if settles and opts.settle_after_s is not None else None)
        self._lock = threading.Lock()
        self._closed = False
        self.reset()

    def _check_dims(self) -> None:
        cfg, dim = self.model.cfg, self.backend.motion_dim
        sizes = {"the model's motion": cfg.motion_dim, "the model's user motion": cfg.user_motion_dim,
                 "the normalization stats": len(np.atleast_1d(self.stats.mean))}
        for what, size in sizes.items():
            if size != dim:
                raise CheckpointError(f"the {self.backend.name} motion backend has {dim} numbers per frame "
                                      f"but {what} has {size}: checkpoint and backend do not belong together")

    def render(self, motion: np.ndarray) -> np.ndarray:
        """(n, D) motion in the backend's units -> (n, H, W, 3) frames, as `step` renders them."""
        if self.identity is None:
            raise InputError("this session has no portrait to render (it was made with render=False)")
        return resize_frames(self.backend.decode(self.identity, motion), None if isinstance(
            self.backend, RigBackend) else self.options.output_size)

    @property
    def frame_shape(self) -> tuple[int, int] | None:
        """(height, width) of the rendered frames (None without a portrait)."""
        if self.identity is None:
            return None
        if isinstance(self.backend, RigBackend) or self.options.output_size is None:
            return self.identity.size
        return self.options.output_size, self.options.output_size

    @property
    def renderer(self):
        """The rig's PortraitRenderer (None for other backends or without a portrait); kept for callers
        written before the backend interface."""
        if self.identity is None or not isinstance(self.backend, RigBackend):
            return None
        return self.identity.state

    def _autocast(self):
        """bfloat16 autocast around the DFoT: matmuls in bf16, the sampler's Euler updates stay float32."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    # --- lifecycle ----------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to time 0 with empty inputs and a fresh cache (same portrait, model and seed)."""
        with self._lock:
            self.user_audio = _AudioStream("user audio", self.audio_features)
            self.avatar_audio = _AudioStream("avatar audio", self.audio_features)
            self.user_motion = MotionInput(self.options.max_gap_s, self.motion_dim)
            # the rig's user motion is relative to the user's own resting face, estimated online
            self.user_rest = OnlineRest() if isinstance(self.backend, RigBackend) else None
            # and the avatar's head is rendered relative to its own running rest (motion/neutral.py)
            recentre = isinstance(self.backend, RigBackend) and self.options.recentre_pose
            self.avatar_rest = OnlineRest() if recentre else None
            if self.settle is not None:
                self.settle.reset()
            self.next_frame = 0          # first frame of the next block on the session timeline
            self.committed = 0           # conditions are fixed up to here
            self.ahead: Conditions | None = None  # those of frames [next_frame, committed): the overlap
            self.advanced_frames = 0     # the clock set by advance_to
            self.finished = False        # finish() called: no more input
            self.skipped_frames = 0      # idle stretches skipped
            self.blocks = 0
            self._track_ms = 0.0
            self._last_frame_time: float | None = None
            self.generator.reset()
            if self.options.start_at_rest and isinstance(self.backend, RigBackend):
                self._prime_at_rest()
            if self._encoder is not None:
                self._encoder.close()
                self._encoder = None

    def _prime_at_rest(self) -> None:
        """One block of the resting face (relative zero), silent and with no user, as the generated past: the
        avatar starts as the photo is. It occupies positions before the session's frame 0 (RoPE positions are
        relative, so the timeline is unchanged)."""
        n = self.generator.condition_frames
        samples = (n + PRIME_SLACK_FRAMES) * FRAME_SAMPLES
        quiet = self.audio_features.stream().push(np.zeros(samples, np.float32))
        silence = torch.as_tensor(quiet[:n], dtype=torch.float32, device=self.device)[None]
        kept = self.generator.frames_needed
        rest = torch.as_tensor(self.stats.normalize(np.zeros((kept, self.motion_dim), np.float32)),
                               device=self.device)[None]
        with self._autocast():
            self.generator.step(silence, silence, silence.new_zeros(1, n, self.motion_dim),
                                has_avatar_audio=True, has_user=False, given=rest)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._encoder is not None:
                self._encoder.close()
                self._encoder = None

    def __enter__(self) -> AvatarSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise InputError("this session is closed")
        if self.finished:
            raise InputError("finish() was called: this session takes no more input (reset() to reuse it)")

    # --- input --------------------------------------------------------------------------------------

    def push_user_audio(self, pcm: np.ndarray, sample_rate: int, timestamp: float | None = None) -> None:
        """The user's microphone. `timestamp` (seconds on the session timeline) places the chunk; without
        one the chunk continues the stream."""
        self._push_audio(self.user_audio, pcm, sample_rate, timestamp)

    def push_avatar_audio(self, pcm: np.ndarray, sample_rate: int) -> None:
        """The avatar's own speech, queued: it plays from the next frames not yet generated."""
        self._push_audio(self.avatar_audio, pcm, sample_rate, None)

    def _push_audio(self, stream: _AudioStream, pcm, sample_rate, timestamp) -> None:
        mono = to_mono_float(pcm, stream.name)
        rate = check_sample_rate(sample_rate, stream.name)
        at = None if timestamp is None else round(check_timestamp(timestamp, stream.name) * SAMPLE_RATE)
        with self._lock:
            self._check_open()
            if at is not None and stream.resampler is not None:
                at = None if abs(at - stream.buffer.end) <= FRAME_SAMPLES else at
                if at is not None:  # a jump: restart the resampler so no old samples leak across it
                    stream.resampler.reset()
            stream.buffer.push(stream.resample(mono, rate), at)

    def push_user_frame(self, rgb: np.ndarray, timestamp: float) -> None:
        """A webcam frame at `timestamp` seconds on the session timeline; encoded here by the backend's frame
        encoder (rig: MediaPipe in video mode; LIA: its motion encoder). Frames out of order or already in
        the past are ignored (counted in `dropped_user_frames`)."""
        t = check_timestamp(timestamp, "user frame")
        arr = np.asarray(rgb)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise InputError(f"user frames must be RGB uint8 arrays (H, W, 3), got {arr.shape} {arr.dtype}")
        self._check_open()
        last = self.user_motion.last_time
        if (last is not None and t <= last) or t < self.committed / FPS:
            with self._lock:
                self.user_motion.dropped += 1
            return
        if self._encoder is None:
            self._encoder = self.backend.frame_encoder()
        start = time.perf_counter()
        motion = self._encoder.encode(arr, int(round(t * 1000)))
        with self._lock:
            self._track_ms += (time.perf_counter() - start) * 1000
            if motion is not None and self.user_rest is not None:
                motion = self.user_rest.update(motion)
            self.user_motion.add(t, motion, self.committed)

    def push_user_motion(self, motion: np.ndarray, timestamp: float | None = None) -> None:
        """The user's motion (n, motion_dim) at 25 fps (an avatar, a 3D face tracker, a motion file),
        continuing the stream or starting at `timestamp` seconds. Rig: relative to the user's rest, as
        `avatar-forcing track` writes it (motion/neutral.py)."""
        t = None if timestamp is None else check_timestamp(timestamp, "user motion")
        with self._lock:
            self._check_open()
            self.user_motion.add_rows(motion, t, self.committed)

    def silence_avatar_audio(self) -> float:
        """Turn the avatar speech queued for frames not yet generated into silence (a barge-in: the avatar
        stops talking at once and listens); later pushes keep their place. Returns the seconds silenced."""
        with self._lock:
            silenced = 0
            for chunk in self.avatar_audio.buffer.chunks:
                silenced += len(chunk.pcm)
                chunk.pcm = np.zeros_like(chunk.pcm)
        return silenced / SAMPLE_RATE

    def advance_to(self, t: float) -> None:
        """Move the session clock to at least `t` seconds (a wall clock): blocks up to t become due even
        if inputs are missing; what is missing is a null condition."""
        frames = int(np.floor(check_timestamp(t, "clock") * FPS + 1e-9))
        with self._lock:
            self.advanced_frames = max(self.advanced_frames, frames)

    def finish(self) -> None:
        """No more input: `step` now also generates the last, partial block (padded with null conditions)."""
        with self._lock:
            for stream in (self.user_audio, self.avatar_audio):
                stream.buffer.push(stream.flush())
            self.finished = True

    # --- clock --------------------------------------------------------------------------------------

    @property
    def has_user(self) -> bool:
        return self.user_audio.buffer.active or self.user_motion.active

    def clock_frames(self) -> int:
        """Frames of the timeline whose inputs are in (see the module docstring)."""
        if self.has_user:
            ends = [self.user_audio.buffer.end_frame if self.user_audio.buffer.active else 0,
                    self.user_motion.end_frame]
            clock = max(ends)
        else:
            clock = self.avatar_audio.buffer.end_frame
        if self.finished:
            ceil = -(-max(self.user_audio.buffer.end, self.avatar_audio.buffer.end) // FRAME_SAMPLES)
            clock = max(clock, ceil)
        return max(clock, self.advanced_frames)

    def _next_data_frame(self) -> int | None:
        starts = [s // FRAME_SAMPLES for s in (self.user_audio.buffer.first_data_sample(),
                                               self.avatar_audio.buffer.first_data_sample()) if s is not None]
        motion_start = self.user_motion.first_data_frame()
        if motion_start is not None:
            starts.append(motion_start)
        return min(starts) if starts else None

    def _skip_idle(self) -> None:
        """Jump over a long stretch with no input at all (e.g. a paused stream resumed much later)."""
        nxt = self._next_data_frame()
        if nxt is None or nxt - self.next_frame <= IDLE_SKIP_S * FPS:
            return
        if self.advanced_frames > self.next_frame:  # a wall clock drives the session: idle time is real
            return
        target = nxt - self.block_size
        self.skipped_frames += target - self.next_frame
        self.next_frame = self.committed = target
        self.ahead = None
        for stream in (self.user_audio, self.avatar_audio):
            stream.buffer.skip_to(target)

    # --- output -------------------------------------------------------------------------------------

    def ready(self) -> bool:
        """Whether `step` would generate a block now."""
        with self._lock:
            return self._due() is not None

    def _due(self) -> int | None:
        """Frames of the next block if it is due (its own and the overlap's inputs are in), else None."""
        if self._closed:
            return None
        n = self.generator.frames_needed
        clock = self.clock_frames()
        if self.finished:
            return n if self.next_frame < clock else None
        return n if self.next_frame + self.generator.condition_frames <= clock else None

    def step(self) -> Block | None:
        """Generate the next block if its inputs are in, else return None at once."""
        timings = BlockTimings()
        with self._lock:
            self._skip_idle()
            n = self._due()
            if n is None:
                return None
            start = time.perf_counter()
            end = self.next_frame + self.generator.condition_frames
            conds = self._commit(self.committed, end)
            if self.ahead is not None:
                conds = self.ahead + conds
            self.ahead = conds.frames(n, end - self.next_frame)
            pose_keep = pose_rest = None
            if self.settle is not None:
                pose_keep = torch.as_tensor(
                    self.settle.keep(conds.avatar_feats, conds.user_feats, self._user_relative(conds), n))
                if self.avatar_rest is not None and self.avatar_rest.rest is not None:
                    # the head is rendered relative to its running rest, so that is where it settles
                    pose_rest = torch.as_tensor(self.stats.normalize(self.avatar_rest.rest))
            timings.features_ms = (time.perf_counter() - start) * 1000
            timings.track_ms, self._track_ms = self._track_ms, 0.0
            block_start = self.next_frame
            self.next_frame += n
        has_user = bool(conds.user_present.any())
        avatar_pcm = conds.frames(0, n).avatar_pcm

        start = time.perf_counter()
        with self._autocast():
            to = lambda x: torch.as_tensor(np.asarray(x, np.float32), device=self.device)
            motion = self.generator.step(to(conds.avatar_feats), to(conds.user_feats), to(conds.user_motion),
                                         has_avatar_audio=True, has_user=has_user, pose_keep=pose_keep,
                                         pose_rest=pose_rest)
        motion = self.stats.denormalize(motion[0].float().cpu().numpy())
        if isinstance(self.backend, RigBackend):  # physical units with hard limits
            motion = clip_relative(motion)
        if self.avatar_rest is not None:
            motion = self.avatar_rest.relative_pose(motion)
        timings.dfot_ms = (time.perf_counter() - start) * 1000

        frames = None
        if self.options.render and self.identity is not None:
            start = time.perf_counter()
            frames = self.render(motion)
            timings.render_ms = (time.perf_counter() - start) * 1000
        self.blocks += 1
        return Block(block_start, motion, frames, avatar_pcm, timings, has_user)

    def _user_relative(self, conds: Conditions) -> np.ndarray:
        """The user's motion relative to their rest, as the model was given it (zeros where there is none)."""
        present = conds.user_motion.any(axis=1, keepdims=True)
        return np.where(present, self.stats.denormalize(conds.user_motion), 0.0)

    def _commit(self, a: int, b: int) -> Conditions:
        """Fix the conditions of frames [a, b): features, normalized user motion, presence."""
        avatar_pcm, _ = self.avatar_audio.buffer.take(a, b)
        user_pcm, user_cover = self.user_audio.buffer.take(a, b)
        raw_motion, motion_present = self.user_motion.take(a, b)
        self.committed = b
        user_motion = np.where(motion_present[:, None], self.stats.normalize_condition(raw_motion), 0.0)
        present = (user_cover >= self.options.min_audio_coverage) | motion_present
        return Conditions(self.avatar_audio.features.push(avatar_pcm),
                          self.user_audio.features.push(user_pcm), user_motion, present, avatar_pcm)

    async def frames(self, wall_clock: bool = False) -> AsyncIterator[TimedFrame]:
        """Timestamped frames as blocks complete (the computation runs in a worker thread).

        ``wall_clock=True`` advances the clock with real time (minus `wall_clock_slack_s`), so frames keep
        coming when inputs stall. The iterator ends after `finish()` once everything is generated, or
        when the session is closed."""
        t0 = time.monotonic()
        while not self._closed:
            if wall_clock:
                self.advance_to(max(0.0, time.monotonic() - t0 - self.options.wall_clock_slack_s))
            block = await asyncio.to_thread(self.step)
            if block is None:
                if self.finished:
                    return
                await asyncio.sleep(self.options.poll_interval_s)
                continue
            for i in range(len(block)):
                index = block.start_frame + i
                yield TimedFrame(index, index / FPS, block.motion[i],
                                 None if block.frames is None else block.frames[i],
                                 block.avatar_audio[i * FRAME_SAMPLES: (i + 1) * FRAME_SAMPLES])

    # --- introspection ------------------------------------------------------------------------------

    def buffer_sizes(self) -> dict[str, int]:
        """Sizes of everything that could grow with session length (constant in a steady session)."""
        gen = self.generator
        cache = 0 if gen.self_kv is None else sum(k.numel() + v.numel() for k, v in gen.self_kv)
        cross = 0 if gen.cross_kv is None else sum(k.numel() + v.numel() for k, v in gen.cross_kv)
        return {
            "user_audio_samples": sum(len(c.pcm) for c in self.user_audio.buffer.chunks),
            "avatar_audio_samples": sum(len(c.pcm) for c in self.avatar_audio.buffer.chunks),
            "user_motion_observations": len(self.user_motion.times),
            "self_cache_values": cache,
            "cross_cache_values": cross,
            "cached_frames": len(gen.self_frames),
            "max_position": int(gen.self_frames.max() - gen.self_frames.min()) if len(gen.self_frames) else 0,
        }

    @property
    def dropped_user_frames(self) -> int:
        return self.user_motion.dropped

    @property
    def motion_dim(self) -> int:
        return self.backend.motion_dim

"""Offline generation on the streaming engine: audio files in, an MP4 (and motion curves) out.

Everything is pushed into one `AvatarSession` up front and drained block by block, so offline output is
exactly what a live session would have produced from the same inputs. Frames are encoded as they come, on
an encoder thread that overlaps generation: memory does not grow with the length of the video. The
checkpoint's motion backend is used throughout (the rig, or the LIA latents of a converted official
checkpoint): for the user's video, the user's motion and the side-by-side panel alike.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avatar_forcing.errors import InputError
from avatar_forcing.motion.backend import MotionBackend, RigBackend
from avatar_forcing.motion.renderer import default_portrait
from avatar_forcing.motion.vector import BLENDSHAPE_NAMES, FPS, POSE_NAMES, MotionTrack
from avatar_forcing.stream.inputs import FRAME_SAMPLES, SAMPLE_RATE
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession

# ARKit's curve names: MediaPipe's `_neutral` is not an ARKit blendshape; the head pose goes along.
EXPORT_NAMES: tuple[str, ...] = BLENDSHAPE_NAMES[1:] + POSE_NAMES
EXPORT_SLICE = slice(1, None)


@dataclass
class GenerateResult:
    path: Path
    frames: int
    seconds: float
    motion: np.ndarray  # (frames, D) the avatar's motion in the backend's units (58-d for the rig)
    exported: tuple[Path, ...] = ()


def export_motion(prefix: str | Path, motion: np.ndarray, fps: float = FPS) -> tuple[Path, Path]:
    """Write ARKit-named curves as `<prefix>.json` ({fps, names, curves: {name: [...]}}) and `<prefix>.csv`
    (time then one column per curve). Pose: radians, face widths, log scale (see motion/vector.py)."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    values = np.asarray(motion, np.float32)[:, EXPORT_SLICE]
    json_path, csv_path = prefix.with_name(prefix.name + ".json"), prefix.with_name(prefix.name + ".csv")
    curves = {name: [round(float(v), 5) for v in values[:, i]] for i, name in enumerate(EXPORT_NAMES)}
    json_path.write_text(json.dumps({"fps": fps, "frames": len(values), "names": list(EXPORT_NAMES),
                                     "curves": curves}))
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["time", *EXPORT_NAMES])
        for k, row in enumerate(values):
            writer.writerow([f"{k / fps:.4f}", *(f"{v:.5f}" for v in row)])
    return json_path, csv_path


def mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum two mono tracks (padded to the longer), scaled down only if the sum would clip."""
    out = np.zeros(max(len(a), len(b)), np.float32)
    out[: len(a)] += a
    out[: len(b)] += b
    peak = float(np.abs(out).max()) if len(out) else 0.0
    return out / peak if peak > 1.0 else out


def frames_at_fps(frames: Iterator[tuple[np.ndarray, float]], fps: float = FPS) -> Iterator[np.ndarray]:
    """Resample timestamped frames to a constant rate (latest frame at or before each output time);
    the last frame repeats forever, so callers take as many as they need."""
    current, pending = None, None
    k = 0
    for rgb, t in frames:
        if current is None:
            current = rgb
            continue
        pending = (rgb, t)
        while k / fps < pending[1]:
            yield current
            k += 1
        current = pending[0]
    if current is None:
        raise InputError("the user video has no frames")
    while True:
        yield current


def generate(portrait: str | Path | np.ndarray | None, avatar_audio: str | Path | np.ndarray,
             output: str | Path, *, user_audio: str | Path | np.ndarray | None = None,
             user_video: str | Path | None = None,
             user_motion: str | Path | MotionTrack | np.ndarray | None = None,
             checkpoint: str | Path | None = None,
             options: SessionOptions | None = None, side_by_side: bool = False,
             user_portrait: np.ndarray | None = None, export_prefix: str | Path | None = None,
             progress: bool = True, model=None, stats=None) -> GenerateResult:
    """Generate an avatar video. Audio arrays are mono float32 at 16 kHz; paths are decoded with PyAV.

    The video lasts as long as the avatar audio. `user_video` is encoded into the user's motion by the
    backend (and gives the user's audio when `user_audio` is not given); `user_motion` is a (T, D) array,
    or for the rig a motion file. `side_by_side` puts the user on the left: their video, or their motion
    rendered on `user_portrait` (default: the astronaut, mirrored). `export_prefix` writes ARKit curves
    (rig only)."""
    from avatar_forcing.audio.io import load_audio
    from avatar_forcing.media.video import BackgroundVideoWriter

    if user_video is not None and user_motion is not None:
        raise InputError("give the user as a video or as a motion file, not both")
    options = options or SessionOptions()
    avatar_pcm = _audio(avatar_audio, "avatar audio", load_audio)
    if len(avatar_pcm) < FRAME_SAMPLES:
        raise InputError("the avatar audio is shorter than one video frame (40 ms)")
    user_pcm = None if user_audio is None else _audio(user_audio, "user audio", load_audio)
    if user_video is not None and user_pcm is None:
        from avatar_forcing.media.video import read_audio

        user_pcm = read_audio(user_video)
    total = -(-len(avatar_pcm) // FRAME_SAMPLES)

    session = AvatarSession(checkpoint, portrait, options, model=model, stats=stats)
    output = Path(output)
    motion, written = [], 0
    try:
        is_rig = isinstance(session.backend, RigBackend)
        if export_prefix is not None and not is_rig:
            raise InputError(f"motion export writes ARKit blendshape curves; the {session.backend.name} "
                             "motion backend of this checkpoint has none")
        user_values = None
        if user_video is not None:
            user_values = _encode_video(session, user_video, progress)
        elif user_motion is not None:
            if not is_rig and isinstance(user_motion, (str, Path, MotionTrack)):
                raise InputError(f"motion files hold rig motion; the {session.backend.name} backend of this "
                                 "checkpoint takes the user as a video or a (frames, D) array")
            user_values = _motion(user_motion).values if is_rig else np.asarray(user_motion)
        left = None
        if side_by_side:
            left = _user_panel(session.backend, user_video, user_values, user_portrait,
                               session.frame_shape[0])
        audio = avatar_pcm if not (side_by_side and user_pcm is not None) else mix(avatar_pcm, user_pcm)
        session.push_avatar_audio(avatar_pcm, SAMPLE_RATE)
        if user_pcm is not None and len(user_pcm):
            session.push_user_audio(user_pcm, SAMPLE_RATE)
        if user_values is not None:
            session.push_user_motion(user_values)
        session.finish()
        with BackgroundVideoWriter(output, fps=FPS, audio=audio[: total * FRAME_SAMPLES]) as writer, \
                tqdm(total=total, unit="frame", desc="generate", disable=not progress) as bar:
            while written < total and (block := session.step()) is not None:
                n = min(len(block), total - written)
                motion.append(block.motion[:n])
                for i in range(n):
                    frame = block.frames[i]
                    writer.write(frame if left is None else np.concatenate([next(left), frame], axis=1))
                written += n
                bar.update(n)
    finally:
        session.close()
    motion_all = np.concatenate(motion)
    exported = export_motion(export_prefix, motion_all) if export_prefix is not None else ()
    return GenerateResult(output, written, written / FPS, motion_all, exported)


def _audio(source, what: str, load_audio) -> np.ndarray:
    if isinstance(source, (str, Path)):
        return load_audio(source)
    from avatar_forcing.stream.inputs import to_mono_float

    return to_mono_float(source, what)


def _motion(source) -> MotionTrack:
    from avatar_forcing.motion.vector import load_motion

    if isinstance(source, MotionTrack):
        return source
    if isinstance(source, (str, Path)):
        track = load_motion(source)
    else:
        track = MotionTrack(np.asarray(source))
    if abs(track.fps - FPS) > 1e-3:
        raise InputError(f"user motion is at {track.fps} fps; this engine runs at {FPS} fps")
    return track


def _encode_video(session: AvatarSession, path: str | Path, progress: bool) -> np.ndarray:
    """The user's video -> (T, D) motion at 25 fps with the session's backend (the rig tracks it with
    MediaPipe and fills gaps; other backends encode every frame)."""
    if isinstance(session.backend, RigBackend):  # relative to the user's rest over the whole clip
        from avatar_forcing.motion.neutral import rest_of_track, to_relative
        from avatar_forcing.motion.tracker import track_video

        values = track_video(path, progress=progress).values
        return to_relative(values, rest_of_track(values))
    from avatar_forcing.media.video import read_video

    times = np.array([t for _, t in read_video(path)])  # a first pass for the length (decoding is cheap)
    if len(times) == 0:
        raise InputError(f"the user video {path} has no frames")
    last = times[-1] + (float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / FPS)
    frames = frames_at_fps(read_video(path))
    bar = tqdm(range(max(1, round(last * FPS))), desc="encode user video", unit="frame", disable=not progress)
    return session.backend.encode_frames(next(frames) for _ in bar)


def _user_panel(backend: MotionBackend, user_video, user_values: np.ndarray | None, user_portrait,
                height: int) -> Iterator[np.ndarray]:
    """The left half of a side-by-side video (scaled to the avatar's height), one frame per output frame."""
    from avatar_forcing.media.image import fit_height

    if user_video is not None:
        from avatar_forcing.media.video import read_video

        return (fit_height(rgb, height) for rgb in frames_at_fps(read_video(user_video)))
    if isinstance(backend, RigBackend):  # the user's photo at its own size, then scaled to the avatar's
        backend = RigBackend()
    identity = backend.encode_portrait(default_portrait(mirrored=True) if user_portrait is None
                                       else user_portrait)
    values = user_values if user_values is not None else identity.reference_motion[None]

    def panel() -> Iterator[np.ndarray]:
        k = 0
        while True:  # the user's motion ends: hold the last pose
            yield fit_height(backend.decode(identity, values[min(k, len(values) - 1)][None])[0], height)
            k += 1

    return panel()

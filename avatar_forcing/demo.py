"""The built-in demo: the default model plays the sample conversation, side by side with its user.

The avatar (right) greets the user (left), listens while the user speaks and laughs, then answers. Its
motion comes from the streaming engine (`AvatarSession`), fed exactly as a live session would be: the
avatar's speech, the user's voice and the user's motion. The user is shown as their motion rendered on
the mirrored astronaut. Captions under the panels say who is speaking and what; a dot marks the speaker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from avatar_forcing.errors import InputError
from avatar_forcing.media.image import fit_height
from avatar_forcing.motion.vector import FPS, load_motion
from avatar_forcing.stream.inputs import FRAME_SAMPLES, SAMPLE_RATE
from avatar_forcing.stream.options import SessionOptions

DEMO_DIR = Path(__file__).resolve().parent / "assets" / "demo"
Color = tuple[int, int, int]


@dataclass
class CaptionStyle:
    """Layout of the captions, relative to the panel size so that every output size looks alike."""

    bar_fraction: float = 0.22        # caption bar height / panel size
    font_fraction: float = 0.0016     # cv2 font scale per pixel of panel size
    margin_fraction: float = 0.03
    dot_fraction: float = 0.035       # speaking-indicator radius / panel size
    hold_s: float = 0.3               # a caption stays this long after its line ends
    background: Color = (24, 24, 28)
    text: Color = (235, 235, 235)
    colors: dict[str, Color] = field(
        default_factory=lambda: {"user": (90, 170, 255), "avatar": (255, 170, 60)})
    names: dict[str, str] = field(default_factory=lambda: {"user": "USER", "avatar": "AVATAR"})

    def bar_height(self, size: int) -> int:
        """Even, so an even panel size gives an even frame (H.264 yuv420p needs even sizes)."""
        return 2 * round(size * self.bar_fraction / 2)


@dataclass
class DemoConfig:
    """Sizes chosen so the whole demo generates in well under 2 minutes on 2 CPU cores."""

    size: int = 384                   # the longer side of each panel
    nfe: int = 6                      # Euler steps per block (the paper uses 10; 6 keeps the demo < 2 min)
    seconds: float | None = None      # cut the conversation short (None = all of it, about 19 s)
    seed: int = 0
    threads: int | None = None        # torch threads (None = torch's default)
    # moments shown by `--frames` (seconds): avatar talking, listening, the user's laugh, the answer
    snapshot_times: tuple[float, ...] = (1.2, 6.6, 8.5, 12.9, 13.8, 15.2)
    snapshot_scale: float = 0.5
    style: CaptionStyle = field(default_factory=CaptionStyle)


@dataclass
class Turn:
    speaker: str                      # "avatar" | "user"
    start: float
    end: float
    kind: str                         # "sentence" | "laugh" | "backchannel"
    text: str


@dataclass
class DemoInputs:
    avatar_audio: np.ndarray          # (n,) float32 16 kHz
    user_audio: np.ndarray
    user_motion: np.ndarray           # (T, 58) at 25 fps
    turns: list[Turn]
    avatar_events: list[dict] = field(default_factory=list)  # what the reaction rules would do (labels)

    @property
    def frames(self) -> int:
        return -(-len(self.avatar_audio) // FRAME_SAMPLES)


@dataclass
class DemoResult:
    path: Path
    frames: int
    seconds: float                    # of video
    generate_s: float                 # wall time from the first input pushed to the file closed
    model_s: float                    # of which the DFoT (motion generation)
    motion: np.ndarray                # (frames, 58) the avatar's motion

    @property
    def real_time_factor(self) -> float:
        """Generation time / video time: below 1 is faster than real time."""
        return self.generate_s / max(self.seconds, 1e-9)


def load_demo_inputs(seconds: float | None = None, directory: Path = DEMO_DIR) -> DemoInputs:
    from avatar_forcing.audio.io import load_audio

    if seconds is not None and seconds * FPS < 1:
        raise InputError(f"--seconds must be at least one frame (0.04 s), got {seconds}")
    script = json.loads((directory / "script.json").read_text())
    turns = [Turn(t["speaker"], t["start"], t["end"], t["kind"], t["text"]) for t in script["turns"]]
    avatar, user = load_audio(directory / "avatar.wav"), load_audio(directory / "user.wav")
    motion = load_motion(directory / "user_motion.npz").values
    if seconds is not None:
        frames = int(round(seconds * FPS))
        samples = frames * FRAME_SAMPLES
        avatar, user, motion = avatar[:samples], user[:samples], motion[:frames]
    return DemoInputs(avatar, user, motion, turns, script.get("events", {}).get("avatar", []))


def active_turn(turns: list[Turn], t: float, hold_s: float) -> Turn | None:
    """The line being spoken at time t (the latest started one; held briefly after it ends)."""
    current = [u for u in turns if u.start <= t <= u.end + hold_s]
    return max(current, key=lambda u: u.start) if current else None


def _wrap(text: str, width: int, scale: float, thickness: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and cv2.getTextSize(candidate, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] > width:
            lines.append(line)
            candidate = word
        line = candidate
    return lines + [line] if line else lines


def compose(user: np.ndarray, avatar: np.ndarray, turn: Turn | None, style: CaptionStyle) -> np.ndarray:
    """[user | avatar] over a caption bar; the speaker's panel gets a coloured frame and a dot. The avatar
    keeps its portrait's framing: the user's panel is scaled to its height."""
    size = avatar.shape[0]
    user = fit_height(user, size)
    widths = {"user": user.shape[1], "avatar": avatar.shape[1]}
    total_w = user.shape[1] + avatar.shape[1]
    bar = style.bar_height(size)
    canvas = np.empty((size + bar, total_w, 3), np.uint8)
    canvas[:size, : widths["user"]], canvas[:size, widths["user"]:] = user, avatar
    canvas[size:] = style.background
    scale = size * style.font_fraction
    thick = max(1, round(scale * 2))
    margin = int(round(size * style.margin_fraction))
    radius = max(2, int(round(size * style.dot_fraction)))
    speaker = turn.speaker if turn is not None else None
    for role, x0 in (("user", 0), ("avatar", widths["user"])):
        color = style.colors[role]
        label = f"{style.names[role]}: {'speaking' if role == speaker else 'listening'}"
        (w, h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        origin = (x0 + margin + 2 * radius + margin // 2, margin + radius + h // 2)
        # a dark label box keeps the text readable on any photo
        pad = margin // 2
        box = (origin[0] + w + pad, origin[1] + h // 2 + pad)
        cv2.rectangle(canvas, (x0 + pad, pad), box, style.background, -1)
        cv2.putText(canvas, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)
        centre = (x0 + margin + radius, margin + radius)
        if role == speaker:
            cv2.circle(canvas, centre, radius, color, -1, cv2.LINE_AA)
            cv2.rectangle(canvas, (x0 + 1, 1), (x0 + widths[role] - 2, size - 2), color, max(2, thick + 1))
        else:
            cv2.circle(canvas, centre, radius, color, max(1, thick), cv2.LINE_AA)
    if turn is not None:
        text = "(laughs)" if turn.kind == "laugh" else turn.text
        caption = f"{style.names[turn.speaker]}: {text}"
        line_h = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][1] * 2
        for k, line in enumerate(_wrap(caption, total_w - 2 * margin, scale, thick)[:2]):
            y = size + margin + line_h * (k + 1) - line_h // 3
            cv2.putText(canvas, line, (margin, y), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        style.colors[turn.speaker] if k == 0 else style.text, thick, cv2.LINE_AA)
    return canvas


def _user_frames(renderer, motion: np.ndarray) -> Iterator[np.ndarray]:
    """The user's panel: their motion on the mirrored astronaut; the last pose holds if motion runs out."""
    k = 0
    while True:
        yield renderer.render(motion[min(k, len(motion) - 1)])
        k += 1


def run_demo(output: str | Path = "out/demo.mp4", portrait: str | Path | np.ndarray | None = None,
             cfg: DemoConfig | None = None, checkpoint: str | Path | None = None, progress: bool = True,
             model=None, stats=None, frames_png: str | Path | None = None) -> DemoResult:
    """Generate the demo video. `portrait`: the avatar's photo (default: the astronaut); raises NoFaceError
    when it has no face. `model` + `stats`: an in-memory model (tests) instead of the default checkpoint.
    `frames_png`: also save the frames at `cfg.snapshot_times` as one picture."""
    from avatar_forcing.media.video import VideoWriter
    from avatar_forcing.motion.renderer import PortraitRenderer, RenderConfig, default_portrait
    from avatar_forcing.stream.generate import mix
    from avatar_forcing.stream.session import AvatarSession

    cfg = cfg or DemoConfig()
    inputs = load_demo_inputs(cfg.seconds)
    options = SessionOptions(output_size=cfg.size, nfe=cfg.nfe, seed=cfg.seed, threads=cfg.threads,
                             random_init=model is not None)
    # Set-up (not timed): the model, the avatar's portrait and the user's mirrored portrait.
    session = AvatarSession(checkpoint, portrait, options, model=model, stats=stats)
    user_renderer = PortraitRenderer(default_portrait(mirrored=True), RenderConfig(max_side=cfg.size))
    user_panel = _user_frames(user_renderer, inputs.user_motion)
    total = inputs.frames
    audio = mix(inputs.avatar_audio, inputs.user_audio)[: total * FRAME_SAMPLES]
    output = Path(output)
    motion, written, model_s = [], 0, 0.0
    wanted = {int(round(t * FPS)) for t in cfg.snapshot_times} if frames_png is not None else set()
    snapshots: list[np.ndarray] = []
    start = time.perf_counter()
    try:
        session.push_avatar_audio(inputs.avatar_audio, SAMPLE_RATE)
        session.push_user_audio(inputs.user_audio, SAMPLE_RATE)
        session.push_user_motion(inputs.user_motion)
        session.finish()
        with VideoWriter(output, fps=FPS, audio=audio) as writer, \
                tqdm(total=total, unit="frame", desc="demo", disable=not progress) as bar:
            while written < total and (block := session.step()) is not None:
                model_s += block.timings.dfot_ms / 1000
                n = min(len(block), total - written)
                motion.append(block.motion[:n])
                for i in range(n):
                    turn = active_turn(inputs.turns, (written + i) / FPS, cfg.style.hold_s)
                    frame = compose(next(user_panel), block.frames[i], turn, cfg.style)
                    writer.write(frame)
                    if written + i in wanted:
                        snapshots.append(stamp(frame, (written + i) / FPS, cfg.snapshot_scale))
                written += n
                bar.update(n)
    finally:
        session.close()
    elapsed = time.perf_counter() - start
    if frames_png is not None and snapshots:
        save_sheet(snapshots, frames_png)
    return DemoResult(output, written, written / FPS, elapsed, model_s, np.concatenate(motion))


def stamp(frame: np.ndarray, t: float, scale: float) -> np.ndarray:
    """A downscaled copy of a frame with its time written in the corner."""
    small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    corner = (small.shape[1] - 110, small.shape[0] - 10)
    cv2.putText(small, f"t = {t:.1f} s", corner, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (235, 235, 235), 1,
                cv2.LINE_AA)
    return small


def save_sheet(frames: list[np.ndarray], path: str | Path, columns: int = 2) -> Path:
    """Frames in a grid (row by row), as a PNG."""
    rows = -(-len(frames) // columns)
    blank = np.zeros_like(frames[0])
    cells = frames + [blank] * (rows * columns - len(frames))
    grid = np.concatenate([np.concatenate(cells[r * columns:(r + 1) * columns], axis=1) for r in range(rows)])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return path


def plot_motion(motion: np.ndarray, inputs: DemoInputs, path: str | Path) -> Path:
    """The avatar's head pitch, jaw and smile over the conversation, with who speaks shaded and the
    reactions the rules would produce marked: the quickest way to see whether it nods and smiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from avatar_forcing.motion.vector import idx

    t = np.arange(len(motion)) / FPS
    curves = [("head pitch (rad, down +)", motion[:, idx("pitch")]), ("jawOpen", motion[:, idx("jawOpen")]),
              ("smile", motion[:, [idx("mouthSmileLeft"), idx("mouthSmileRight")]].mean(1))]
    fig, axes = plt.subplots(len(curves), 1, figsize=(11, 6), sharex=True)
    colors = {role: np.asarray(c) / 255 for role, c in CaptionStyle().colors.items()}
    for ax, (name, values) in zip(axes, curves, strict=True):
        for turn in inputs.turns:
            ax.axvspan(turn.start, turn.end, color=colors[turn.speaker], alpha=0.15, lw=0)
        for e in inputs.avatar_events:
            if e["type"] in ("nod", "smile_mirror", "laugh_response"):
                ax.axvline(e["time"], color="k", ls=":", lw=0.8)
        ax.plot(t, values, color="k", lw=1.2)
        ax.set_ylabel(name, fontsize=8)
    axes[0].set_title("avatar motion (shaded: orange = avatar speaks, blue = user speaks; dotted: a reaction "
                      "the rules would make)", fontsize=9)
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

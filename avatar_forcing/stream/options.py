"""Options of a streaming session: everything a front end may choose, with its defaults in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from avatar_forcing.errors import ConfigError

# "short": the first block is B frames like every other (first motion after 0.4 s, the live default);
# "full": the first block denoises a whole training window (50 frames, 2 s) as the authors' sampler does.
FirstBlock = Literal["short", "full"]
# "auto": bfloat16 on a GPU (as the authors run their model), float32 on a CPU (bf16 is slow there).
DType = Literal["auto", "float32", "bfloat16"]


@dataclass
class SessionOptions:
    block_size: int | None = None   # frames per block; None = the checkpoint's trained block size
    nfe: int = 10                   # Euler steps per block (the paper's 10 NFE)
    cfg_audio: float = 2.0          # w_a: guidance towards the avatar's own audio
    # w_u: guidance towards the user (audio + motion). The paper's default is 1; 3 is the project's: a model
    # trained on synthetic users answers a real person's smile only when it is broad at 2 (model v11: a user
    # smiling 0.5 got 0.08 back at 2, 0.24 at 3), and on the real videos its re-tracked smile range was
    # 0.14 at 2 and 0.24-0.29 at 3 (docs/EVALUATION.md, "Real users, round 5")
    cfg_user: float = 3.0
    # Share of that guidance the head pose gets (SamplerConfig.pose_guidance): 1 = all of it (the paper).
    pose_guidance: float = 1.0
    # Flow time of the generated past in the cache (SamplerConfig.history_noise): a slightly noisy past keeps
    # the avatar answering the user in long sessions instead of continuing its own history, and keeps a
    # silent avatar at its rest (model v7, 40 s of silence: roll drifted to +0.17 rad with a clean past and
    # stayed within +-0.03 at 0.2; docs/STREAMING.md). 0 = the authors' sampler.
    history_noise: float = 0.2
    # The frames a block continues from enter it clean (SamplerConfig.clean_context), so the head does not
    # jump at every block boundary.
    clean_context: bool = True
    # Frames sampled past each block and dropped (SamplerConfig.overlap), so that a block's last frames see
    # ahead as in training: the head no longer slows before each boundary. Adds as many frames of latency;
    # not served (docs/EVALUATION.md, round 14).
    overlap: int = 0
    # Flow times of the Euler steps that get the guidance weights (SamplerConfig.guidance_interval); the
    # others take every weight 1. (0, 1) = all steps, the paper.
    guidance_interval: tuple[float, float] = (0.0, 1.0)
    # Which velocities the guidance combines (SamplerConfig.guidance_form): "paper" or "joint".
    guidance_form: str = "paper"
    # Rig: once neither voice has been heard and the user's head has rested for this long (s), the head
    # pose settles back to the rest (stream/settle.py: the corpus' lull rule, which the models do not
    # learn; 607 of its 610 held-out nods start within 1.5 s of a voice). None: off, the head as generated.
    settle_after_s: float | None = 1.5
    # Rig: how fast it settles (time constant, s).
    settle_time_constant_s: float = 0.25
    # Rig: the session starts from a block at rest in the cache (the photo as it is), so the first generated
    # blocks continue a resting face instead of sampling a head pose from nothing (docs/STREAMING.md).
    start_at_rest: bool = True
    # Rig: the generated head pose is rendered relative to its own running rest (the estimate the user's
    # webcam gets), so a model's drift or resting bias never moves the face off the portrait's pose
    # (motion/neutral.py; model v11's silent head rests raised by up to 1.7 deg).
    recentre_pose: bool = True
    # Rig: frames keep the portrait's framing, scaled down once so the longer side is at most this;
    # None = the photo's own size. LIA: frames are output_size squared (None: its native size).
    output_size: int | None = None
    render: bool = True             # False: motion only (benchmarks, 3D-engine front ends)
    seed: int = 0                   # noise of every block comes from one generator seeded here
    device: str = "auto"            # "auto": the GPU when there is one, else the CPU; or "cpu", "cuda:1"...
    dtype: DType = "auto"           # DFoT under autocast in this dtype; the LIA decoder is cast to it
    wav2vec: str | None = None      # local wav2vec2 folder; overrides the one a converted checkpoint records
    threads: int | None = None      # torch intra-op threads for this process; None = leave as is
    # A user input is trusted for this long after its last observation (held), then it counts as
    # absent (a null condition): a frozen webcam or a dropped mic never stalls or misleads the avatar.
    max_gap_s: float = 0.5
    # Frames with less than this fraction of real (pushed) audio are a null condition.
    min_audio_coverage: float = 0.5
    first_block: FirstBlock = "short"
    # `frames(wall_clock=True)` lets the session clock run this far behind the wall clock, so late
    # network packets still arrive in time; more slack = more latency.
    wall_clock_slack_s: float = 0.1
    poll_interval_s: float = 0.005  # how often `frames()` looks for a ready block when idle
    random_init: bool = False       # tests/benchmarks only: an untrained model when no checkpoint is given

    def validate(self) -> SessionOptions:
        if self.block_size is not None and self.block_size < 1:
            raise ConfigError(f"block_size must be >= 1, got {self.block_size}")
        if self.nfe < 1:
            raise ConfigError(f"nfe must be >= 1, got {self.nfe}")
        if self.output_size is not None and not 16 <= self.output_size <= 4096:
            raise ConfigError(f"output_size must be None or in [16, 4096], got {self.output_size}")
        if not 0.0 <= self.pose_guidance <= 1.0:
            raise ConfigError(f"pose_guidance must be in [0, 1], got {self.pose_guidance}")
        if self.overlap < 0:
            raise ConfigError(f"overlap must be >= 0, got {self.overlap}")
        if self.settle_after_s is not None and self.settle_after_s < 0:
            raise ConfigError(f"settle_after_s must be None or >= 0, got {self.settle_after_s}")
        if self.settle_time_constant_s <= 0:
            raise ConfigError(f"settle_time_constant_s must be > 0, got {self.settle_time_constant_s}")
        if self.max_gap_s < 0:
            raise ConfigError(f"max_gap_s must be >= 0, got {self.max_gap_s}")
        if not 0.0 <= self.min_audio_coverage <= 1.0:
            raise ConfigError(f"min_audio_coverage must be in [0, 1], got {self.min_audio_coverage}")
        if self.first_block not in ("short", "full"):
            raise ConfigError(f"first_block must be 'short' or 'full', got {self.first_block!r}")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise ConfigError(f"dtype must be 'auto', 'float32' or 'bfloat16', got {self.dtype!r}")
        resolve_device(self.device)
        return self


def settle_after(text: str) -> float | None:
    """Command-line value of `settle_after_s`: seconds, or "off"."""
    if text.lower() == "off":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected seconds or 'off', got {text!r}") from None


def resolve_device(name: str) -> torch.device:
    """A torch device; "auto" is the first GPU if torch sees one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {name!r} (use 'auto', 'cpu', 'cuda' or 'cuda:N')") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for but torch sees no GPU (use 'auto' or 'cpu')")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)

"""DFoT configurations: the model (`ModelConfig`), its training objective (`FlowConfig`) and sampling
(`SamplerConfig`), with presets.

Presets
- ``tiny``: our CPU model (58-d rig motion, 320-d log-mel audio), 1.5M parameters, frame-local conditions,
  the user's motion also in the input tokens, of the user's motion only the listener's cues.
- ``paper``: the authors' size (512-d LIA latents, 9216-d wav2vec2 features), loads `flow_transformer.pth`.
- ``conformance_small``: the authors' code in its smallest configuration, for the numeric test vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal, get_args

from avatar_forcing.errors import ConfigError
from avatar_forcing.motion.vector import MOTION_NAMES

MaskKind = Literal["frame_lookahead", "block_causal", "lookahead_in_block", "motion_lookahead_in_block"]

# What a listener answers in the user's face: the smile and the turn and tilt of the head (the listening
# rules of docs/DATA.md react to these and to the voice, and nothing else). The other blendshapes and the
# head's place in the frame move with each person's face, camera and tracker far more than any synthetic
# corpus covers: fed all 58 channels, model v8 smiled back at a real smile's two smile channels (asked
# range 0.69) but not at the same smile with the rest of the real face (0.02; issue 16).
LISTENER_CUES: tuple[str, ...] = ("mouthSmileLeft", "mouthSmileRight", "pitch", "yaw", "roll")


@dataclass(frozen=True)
class ModelConfig:
    motion_dim: int = 58  # generated motion (and reference) per frame
    user_motion_dim: int = 58  # the user's motion, input of the dual motion encoder
    audio_dim: int = 320  # raw audio features per frame (log-mel 320, or wav2vec2 12x768 = 9216)
    cond_dim: int = 128  # width of the dual motion encoder (the authors' dim_a = dim_w)
    cond_heads: int = 4  # the authors' condition attention has 4 fixed heads
    width: int = 128  # transformer width (dim_h); 128 x 4 keeps a 10-NFE CFG block under 50 ms on a CPU core
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    time_embed_dim: int = 256  # sinusoidal frequency embedding size of the flow time
    time_scale: float = 1000.0  # the flow time enters the embedding on the 0..1000 scale
    block_size: int = 10  # B: frames generated per streaming block (0.4 s at 25 fps)
    lookahead: int = 2  # l: frames of look-ahead in self-attention
    cross_window: int = 2  # w: each frame sees condition frames within +-w
    # Attention inside the dual motion encoder: -1 = the whole window (the authors'), k >= 0 = only the
    # k frames before each frame and itself. Its attention has no positions, so with the whole window a
    # token is a position-free summary of the window, and windows differ between training (50 frames) and
    # streaming (context + B); a local window keeps each token about its own moment, in both.
    cond_window: int = -1
    # The user's motion also enters every frame's input token (a linear projection added to it), beside the
    # dual motion encoder. Through the encoder alone, fused with the avatar's audio into one cross-attention
    # token, the tiny model never learned to answer a user's smile (issue 16: a user smiling 0.9 for 5 s got
    # a 0.006 smile back); in the input token, self-attention over the avatar's past frames sees the user's
    # recent motion directly, which is what a lagged reaction needs. Not in the authors' model (False).
    user_motion_input: bool = False
    # Names of the user's motion channels the model sees (the others are zeroed, in both user paths);
    # empty: all of them (the authors', whose user motion is a latent without named channels).
    user_channels: tuple[str, ...] = ()
    window: int = 50  # N: training window and first streaming window (frames)
    context: int = 2  # clean "offset" frames carried from one streaming block into the next
    mask: MaskKind = "frame_lookahead"
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6  # affine-free LayerNorms of the transformer blocks
    cond_norm_eps: float = 1e-5  # LayerNorms of the condition encoder and audio head

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def cond_history(self) -> int:
        """Condition frames before a streaming window that its tokens depend on: the encoder stacks two
        attentions over `cond_window` frames each (0 for the whole-window encoder, which only ever sees its
        own window)."""
        return 2 * max(self.cond_window, 0)

    @property
    def cache_frames(self) -> int:
        """Past frames kept in the streaming self-attention cache (38 for the paper's 50/10/2)."""
        return self.window - self.block_size - self.context

    def validate(self) -> ModelConfig:
        checks = [
            (self.width % self.heads == 0, f"width {self.width} is not divisible by heads {self.heads}"),
            (self.head_dim % 2 == 0, f"head_dim {self.head_dim} must be even for RoPE"),
            (
                self.cond_dim % self.cond_heads == 0,
                f"cond_dim {self.cond_dim} not divisible by {self.cond_heads}",
            ),
            (
                self.window % self.block_size == 0,
                f"window {self.window} is not a multiple of B={self.block_size}",
            ),
            (0 <= self.context < self.block_size, f"context {self.context} must be in [0, B)"),
            (self.cache_frames >= 0, "window must hold at least one block plus its context"),
            (self.lookahead >= 0 and self.cross_window >= 0, "lookahead and cross_window must be >= 0"),
            (self.cond_window >= -1, f"cond_window {self.cond_window} must be -1 (whole window) or >= 0"),
            (self.mask in get_args(MaskKind), f"unknown mask {self.mask!r}"),
            (
                not self.user_channels
                or (self.user_motion_dim == len(MOTION_NAMES)
                    and set(self.user_channels) <= set(MOTION_NAMES)),
                f"user_channels {self.user_channels} must name channels of a {len(MOTION_NAMES)}-d motion",
            ),
            (min(self.motion_dim, self.user_motion_dim, self.audio_dim, self.depth) > 0, "sizes must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"invalid model config: {message}")
        return self


@dataclass(frozen=True)
class FlowConfig:
    """Diffusion forcing with flow matching: x_t = (1 - s) x0 + s eps, target eps - x0, L1 or L2 loss."""

    p_drop_avatar: float = 0.1  # avatar audio dropped (for CFG)
    p_drop_user: float = 0.1  # user audio + user motion dropped together, independently
    sigma_min: float = 0.0  # per-block flow time s ~ U(sigma_min, sigma_max)
    sigma_max: float = 1.0
    # "l1": the paper's loss. Its minimizer is the conditional *median* of the velocity, not the mean the
    # flow ODE needs, so whatever a condition makes only sometimes happen (a listener's smile back, a nod)
    # is pulled to "never": trained with L1, the model's x0 estimate of a listening avatar's smile while
    # the user smiles was 0.07 against 0.17 in the data (issue 16). "l2": the conditional mean.
    loss: Literal["l1", "l2"] = "l1"
    # (motion channel, weight) pairs: those channels count this many times in the loss, the others once.
    channel_weights: tuple[tuple[str, float], ...] = ()
    # Share of windows given the streaming sampler's noise pattern: the blocks before a random block carry
    # a nearly clean past (s ~ U(0, streamed_past_max), the served history noise is 0.2). With every block's
    # s drawn independently, all four blocks before the last are that clean in under 1 % of windows, so the
    # model rarely learns what to do from the past it always has when it streams (0: the paper; 0.5 did
    # not make a silent avatar rest, round 12).
    streamed_fraction: float = 0.0
    streamed_past_max: float = 0.3
    # Frames at a window's start that are context only (no loss), unless the window begins its conversation:
    # streaming, a block always has a full cache before it, while a frame near a window's start sees little
    # past. 40 (the loss on the last block only) made the pretrained model answer more smiles and nods, but
    # did not make it rest in long silences (docs/EVALUATION.md, round 13). 0: the paper.
    burn_in: int = 0


@dataclass(frozen=True)
class SamplerConfig:
    nfe: int = 10
    # "uniform": nfe Euler steps on an even s grid, every pass updates.
    # "official": the authors' list of nfe-1 timesteps from 1000 to 0 with their 1000-entry s table; the last
    #   pass (t = 0 -> 0) changes nothing. Needed to reproduce their checkpoints bit for bit.
    schedule: Literal["uniform", "official"] = "uniform"
    w_audio: float = 2.0  # w_a, avatar-audio guidance
    w_user: float = 1.0  # w_u, user guidance
    # "full": the first block denoises a whole window (50 frames) as the authors do (2 s before the first
    #   frame in a live session). "short": the first block is B frames, so a live session starts after 0.4 s.
    first_block: Literal["full", "short"] = "full"
    sigma_table_size: int = 1000  # the authors' scheduler table
    # Flow time at which the generated past enters the cache (0: clean, as the authors do). Diffusion forcing
    # trains every block at its own noise level, so a spotless past is rare in training; a streaming past
    # that is always spotless makes the model follow its own history and ignore the user (issue 16).
    history_noise: float = 0.0
    # The `context` frames that a block continues from enter it clean (flow time 0), the older cache at
    # history_noise. With them noised too, each block starts from a guess at where the last one ended: the
    # head jumps at every block boundary, 2.5 times a second (docs/EVALUATION.md, round 12).
    clean_context: bool = False
    # Share of the guidance the head pose gets: its weights become 1 + pose_guidance * (w - 1). The
    # guidance that makes the face answer (w_a 2, w_u 3) also moves the head a quarter faster than the
    # corpus', but without it the head stops following the user (docs/EVALUATION.md, round 13). 1: the
    # paper, every channel guided alike.
    pose_guidance: float = 1.0
    # Frames sampled past each block and thrown away (they are sampled again, with their sound, as the next
    # block's first frames). In training every frame sees `lookahead` frames ahead (and its sound w frames
    # ahead); streaming block by block, a block's last frames see nothing ahead, and the head slows down
    # there (docs/EVALUATION.md, round 14). overlap = lookahead gives every kept frame its training-time
    # view, for `overlap` frames of latency. 0: the authors' sampler.
    overlap: int = 0
    # Flow times s (1 = noise, 0 = clean) of the Euler steps that get the guidance weights; the steps outside
    # take w_a = w_u = 1 (the conditions composed without extrapolation), as in Kynkaenniemi et al., 2024.
    # Here the head's extra speed and the answers to the user are both decided in the first steps
    # (docs/EVALUATION.md, round 14). (0, 1): every step, the paper.
    guidance_interval: tuple[float, float] = (0.0, 1.0)
    # "paper": v = v(0,0) + w_a (v(a,0) - v(0,0)) + w_u (v(0,u) - v(0,0)): no branch sees both conditions, so
    # at w = 1 it is a product of experts, not the velocity given both. "joint": v = v(a,u)
    # + (w_a - 1)(v(a,u) - v(0,u)) + (w_u - 1)(v(a,u) - v(a,0)), which is v(a,u) itself at w = 1.
    guidance_form: Literal["paper", "joint"] = "paper"

    def validate(self) -> SamplerConfig:
        if self.nfe < (3 if self.schedule == "official" else 1):
            raise ConfigError(f"nfe {self.nfe} is too small for the {self.schedule} schedule")
        if not 0.0 <= self.history_noise < 1.0:
            raise ConfigError(f"history_noise {self.history_noise} must be in [0, 1)")
        if not 0.0 <= self.pose_guidance <= 1.0:
            raise ConfigError(f"pose_guidance {self.pose_guidance} must be in [0, 1]")
        lo, hi = self.guidance_interval
        if not 0.0 <= lo <= hi <= 1.0:
            raise ConfigError(f"guidance_interval {self.guidance_interval} must satisfy 0 <= lo <= hi <= 1")
        if self.overlap < 0:
            raise ConfigError(f"overlap {self.overlap} must be >= 0")
        if self.guidance_form not in ("paper", "joint"):
            raise ConfigError(f"guidance_form must be 'paper' or 'joint', got {self.guidance_form!r}")
        if self.first_block not in ("full", "short") or self.schedule not in ("uniform", "official"):
            raise ConfigError(f"unknown sampler option in {self}")
        return self


MODEL_PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(cond_window=0, user_motion_input=True, user_channels=LISTENER_CUES),
    "paper": ModelConfig(
        motion_dim=512, user_motion_dim=512, audio_dim=9216, cond_dim=512, width=1024, depth=8, heads=8
    ),
    "conformance_small": ModelConfig(
        motion_dim=32, user_motion_dim=32, audio_dim=9216, cond_dim=32, width=64, depth=2, heads=4
    ),
}


def model_preset(name: str, **changes) -> ModelConfig:
    if name not in MODEL_PRESETS:
        raise ConfigError(f"unknown model preset {name!r}; choose from {sorted(MODEL_PRESETS)}")
    unknown = set(changes) - {f.name for f in fields(ModelConfig)}
    if unknown:
        raise ConfigError(f"unknown ModelConfig fields {sorted(unknown)}")
    return replace(MODEL_PRESETS[name], **changes).validate()

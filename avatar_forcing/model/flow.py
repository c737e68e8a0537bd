"""Flow matching for diffusion forcing.

Convention (the authors' code): x_s = (1 - s) x0 + s eps, s = 1 is pure noise, s = 0 clean data; the model
predicts the velocity v = eps - x0, so x0 = x_s - s v and an Euler step is x <- x + (s_next - s) v.
Diffusion forcing: every B-frame block of a training window draws its own flow time s.
"""

from __future__ import annotations

import torch

from avatar_forcing.model.config import FlowConfig, SamplerConfig
from avatar_forcing.motion.vector import idx


def sigma_table(size: int) -> torch.Tensor:
    """The authors' scheduler table: s_k = linspace(1, 0, size) in float32, timestep_k = 1000 s_k."""
    return torch.linspace(1.0, 0.0, size, dtype=torch.float32)


def official_sigmas(timesteps: torch.Tensor, table_size: int) -> torch.Tensor:
    """s for timesteps on the 0..1000 scale: the table entry whose timestep is closest (ties to the lower
    index, i.e. the larger s), exactly 0 at t = 0. Returns float64."""
    table = sigma_table(table_size)
    table_t = (table * 1000.0).double()
    distance = (table_t[None, :] - timesteps.double()[:, None]).abs()
    k = distance.argmin(dim=1)  # argmin returns the first (lowest) index among ties
    sigmas = table[k].double()
    return torch.where(timesteps == 0, torch.zeros_like(sigmas), sigmas)


def sampling_schedule(cfg: SamplerConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(times, sigmas) in float64: times (S,) in [0, 1] go into the model; sigmas (S + 1,) drive Euler,
    step i moving from sigmas[i] to sigmas[i + 1]."""
    cfg.validate()
    if cfg.schedule == "official":
        timesteps = torch.linspace(1000.0, 0.0, cfg.nfe - 1, dtype=torch.float64)
        sigmas = official_sigmas(timesteps, cfg.sigma_table_size)
        return timesteps / 1000.0, torch.cat((sigmas, sigmas.new_zeros(1)))
    grid = torch.linspace(1.0, 0.0, cfg.nfe + 1, dtype=torch.float64)
    return grid[:-1], grid


def block_sigmas(
    batch: int, frames: int, block_size: int, cfg: FlowConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per-frame flow times (batch, frames), constant inside each B-frame block, independent across blocks;
    in a `streamed_fraction` of the windows the blocks before a random block get a nearly clean past."""
    blocks = -(-frames // block_size)
    s = torch.rand(batch, blocks, generator=generator) * (cfg.sigma_max - cfg.sigma_min) + cfg.sigma_min
    if cfg.streamed_fraction > 0 and blocks > 1:  # no draws otherwise: the paper's recipe stays bit for bit
        streamed = torch.rand(batch, generator=generator) < cfg.streamed_fraction
        current = torch.randint(1, blocks, (batch,), generator=generator)
        past = streamed[:, None] & (torch.arange(blocks)[None, :] < current[:, None])
        s = torch.where(past, torch.rand(batch, blocks, generator=generator) * cfg.streamed_past_max, s)
    return s.repeat_interleave(block_size, dim=1)[:, :frames]


def interpolate(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    s = sigma[..., None].to(x0.dtype)
    return (1 - s) * x0 + s * noise


def velocity(
    model,
    x_t: torch.Tensor,
    t: torch.Tensor,
    conds: dict[str, torch.Tensor],
    drop_avatar: torch.Tensor | None = None,
    drop_user: torch.Tensor | None = None,
) -> torch.Tensor:
    """v_theta(x_t, t | conds) with a batch dict's keys avatar_audio, user_audio, user_motion, reference."""
    return model(
        x_t, t, conds["avatar_audio"], conds["user_audio"], conds["user_motion"], conds["reference"],
        drop_avatar, drop_user,
    )  # fmt: skip


def channel_weights(cfg: FlowConfig, dim: int) -> torch.Tensor:
    """(dim,) loss weight per motion channel: 1, or FlowConfig.channel_weights' value for the named ones."""
    weights = torch.ones(dim)
    for name, weight in cfg.channel_weights:
        weights[idx(name)] = weight
    return weights


def loss_mask(frames: int, cfg: FlowConfig, at_start: torch.Tensor) -> torch.Tensor:
    """(B, N) 1 where a frame counts in the loss: past the `burn_in`, or anywhere in a window that begins
    its conversation (at_start (B,) bool), where a short view is the whole past."""
    past_burn_in = torch.arange(frames, device=at_start.device)[None, :] >= cfg.burn_in
    return (past_burn_in | at_start[:, None]).float()


def diffusion_forcing_loss(
    model, batch: dict[str, torch.Tensor], cfg: FlowConfig, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Flow-matching loss (L1 or L2: FlowConfig.loss) with per-block flow times and independent condition
    dropout.

    batch: motion (B, N, D), avatar_audio (B, N, A), user_audio (B, N, A), user_motion (B, N, D),
    reference (B, D), all normalized. All randomness comes from `generator` (on the CPU)."""
    x0 = batch["motion"]
    n, frames = x0.shape[:2]
    sigma = block_sigmas(n, frames, model.cfg.block_size, cfg, generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
    drop_avatar = (torch.rand(n, generator=generator) < cfg.p_drop_avatar).to(x0.device)
    drop_user = (torch.rand(n, generator=generator) < cfg.p_drop_user).to(x0.device)
    v = velocity(model, interpolate(x0, noise, sigma), sigma, batch, drop_avatar, drop_user)
    err = v.float() - (noise - x0).float()
    per_element = err.abs() if cfg.loss == "l1" else err.square()
    weights = channel_weights(cfg, x0.shape[-1]).to(per_element.device)
    if cfg.burn_in > 0:
        mask = loss_mask(frames, cfg, batch["at_start"].to(x0.device))
        loss = (per_element * weights * mask[..., None]).sum() / (weights.sum() * mask.sum())
    else:  # the paper's plain mean, bit for bit
        loss = (per_element * weights).mean() / weights.mean()
    stats = {
        "loss": loss.item(),
        "drop_avatar": drop_avatar.float().mean().item(),
        "drop_user": drop_user.float().mean().item(),
    }
    return loss, stats

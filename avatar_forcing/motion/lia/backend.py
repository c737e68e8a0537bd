"""The paper's learned motion space behind the MotionBackend interface.

* portrait -> identity: appearance latent s_r and feature maps; reference motion r_s = Q fc(s_r);
* user frames -> motion r = Q fc(E(frame)) (style_dim numbers, 512 for the released model);
* motion r_d -> frames: D(s_r + r_d, feature maps of the portrait).

Decoding the portrait's own r_s re-renders the portrait. Images are squared by a centre crop and resized
to the model's size; the released model expects face-centred crops like its training videos.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from avatar_forcing.motion.backend import FrameEncoder, PortraitIdentity, check_frame, check_motion
from avatar_forcing.motion.lia.generator import Generator, load_generator


@dataclass(frozen=True)
class LiaBackendConfig:
    batch_size: int = 8  # frames per encoder/decoder call (bounds memory at 512 px)
    device: str = "cpu"
    dtype: str = "float32"  # "bfloat16" on a GPU, as the authors run it


@dataclass
class LiaIdentity:
    latent: torch.Tensor  # (1, style_dim) appearance latent s_r
    feats: list[torch.Tensor]  # encoder feature maps, coarse to fine, batch 1


def center_square(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return rgb[top : top + side, left : left + side]


def frames_to_tensor(frames: list[np.ndarray], size: int) -> torch.Tensor:
    """RGB uint8 frames -> (B, 3, size, size) float32 in [-1, 1]."""
    out = []
    for rgb in frames:
        square = center_square(check_frame(rgb))
        if square.shape[0] != size:
            interp = cv2.INTER_AREA if square.shape[0] > size else cv2.INTER_CUBIC
            square = cv2.resize(square, (size, size), interpolation=interp)
        out.append(square)
    x = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def tensor_to_frames(x: torch.Tensor) -> np.ndarray:
    """(B, 3, S, S) in [-1, 1] -> (B, S, S, 3) uint8."""
    x = ((x.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


class _LiaFrameEncoder:
    def __init__(self, backend: LiaBackend):
        self.backend = backend

    def encode(self, rgb: np.ndarray, timestamp_ms: int) -> np.ndarray | None:
        return self.backend.encode_frames([rgb])[0]

    def close(self) -> None:
        pass


class LiaBackend:
    name = "lia"

    def __init__(self, generator: Generator, cfg: LiaBackendConfig = LiaBackendConfig()):
        self.cfg = cfg
        self.dtype = getattr(torch, cfg.dtype)
        self.generator = generator.to(cfg.device, self.dtype).eval()
        self.size = generator.cfg.size
        self.motion_dim = generator.cfg.style_dim

    @classmethod
    def from_checkpoint(cls, path: str | Path, cfg: LiaBackendConfig = LiaBackendConfig()) -> LiaBackend:
        return cls(load_generator(path), cfg)

    def _input(self, frames: list[np.ndarray]) -> torch.Tensor:
        return frames_to_tensor(frames, self.size).to(self.cfg.device, self.dtype)

    @torch.no_grad()
    def encode_portrait(self, rgb: np.ndarray) -> PortraitIdentity:
        latent, feats = self.generator.encode(self._input([check_frame(rgb, "portrait")]))
        reference = self.generator.motion(latent)[0].float().cpu().numpy()
        return PortraitIdentity(reference, (self.size, self.size), LiaIdentity(latent, feats))

    @torch.no_grad()
    def encode_frames(self, frames: Iterable[np.ndarray]) -> np.ndarray:
        frames = list(frames)
        rows = [np.zeros((0, self.motion_dim), np.float32)]
        for i in range(0, len(frames), self.cfg.batch_size):
            latent, _ = self.generator.encode(self._input(frames[i : i + self.cfg.batch_size]))
            rows.append(self.generator.motion(latent).float().cpu().numpy())
        return np.concatenate(rows)

    def frame_encoder(self) -> FrameEncoder:
        return _LiaFrameEncoder(self)

    @torch.no_grad()
    def decode(self, identity: PortraitIdentity, motion: np.ndarray) -> np.ndarray:
        motion = check_motion(motion, self.motion_dim)
        state: LiaIdentity = identity.state
        out = [np.zeros((0, self.size, self.size, 3), np.uint8)]
        for i in range(0, len(motion), self.cfg.batch_size):
            r_d = torch.from_numpy(motion[i : i + self.cfg.batch_size]).to(self.cfg.device, self.dtype)
            n = len(r_d)
            image, _ = self.generator.decode(
                state.latent + r_d, [f.expand(n, -1, -1, -1) for f in state.feats]
            )
            out.append(tensor_to_frames(image))
        return np.concatenate(out)

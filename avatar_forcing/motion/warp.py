"""Backward piecewise-affine warp through a precomputed sparse barycentric map on a coarse grid.

The control points' rest triangulation is fixed, so each coarse grid point's triangle and barycentric
weights are computed once: the forward displacement field of a frame is one sparse product
``weights @ displacement``. The backward map (output pixel -> source pixel) is that field's inverse,
found by a few fixed-point steps ``s = q - d(s)`` on the coarse grid, then upsampled for ``cv2.remap``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import sparse
from scipy.spatial import Delaunay


@dataclass(frozen=True)
class WarpConfig:
    grid_cells: int = 128  # coarse grid resolution per side (4 px cells at 512^2)
    inverse_iterations: int = 6  # fixed-point steps of the backward map
    border_points: int = 8  # fixed control points per image side
    fold_iterations: int = 6  # local smoothing passes that undo folded (flipped) triangles


class MeshWarper:
    def __init__(self, rest_points: np.ndarray, size: int, cfg: WarpConfig = WarpConfig()):
        self.cfg = cfg
        self.size = size
        border = np.linspace(0, size - 1, cfg.border_points)
        frame = np.concatenate(
            [
                np.stack([border, np.zeros_like(border)], 1),
                np.stack([border, np.full_like(border, size - 1)], 1),
                np.stack([np.zeros_like(border), border], 1),
                np.stack([np.full_like(border, size - 1), border], 1),
            ]
        )
        self.num_free = len(rest_points)
        self.points = np.concatenate([np.asarray(rest_points, np.float64), np.unique(frame, axis=0)])
        tri = Delaunay(self.points)
        self.triangles = tri.simplices

        self.step = (size - 1) / (cfg.grid_cells - 1)
        axis = np.arange(cfg.grid_cells) * self.step
        gx, gy = np.meshgrid(axis, axis)
        grid = np.stack([gx.ravel(), gy.ravel()], 1)
        simplex = tri.find_simplex(grid)
        simplex[simplex < 0] = (
            0  # points on the hull edge (numerically outside) use any triangle: d = 0 there
        )
        transform = tri.transform[simplex]
        bary = np.einsum("nij,nj->ni", transform[:, :2], grid - transform[:, 2])
        bary = np.concatenate([bary, 1 - bary.sum(1, keepdims=True)], 1)
        rows = np.repeat(np.arange(len(grid)), 3)
        self.weights = sparse.csr_matrix(
            (bary.ravel(), (rows, tri.simplices[simplex].ravel())), shape=(len(grid), len(self.points))
        )
        self.grid_xy = np.stack([gx, gy], -1).astype(np.float32)
        # Full-resolution pixel coordinates expressed in coarse-grid units, for bilinear upsampling.
        px = np.arange(size, dtype=np.float32) / self.step
        self.fine_x, self.fine_y = np.meshgrid(px, px)
        self.pixel_x, self.pixel_y = np.meshgrid(
            np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32)
        )

    def full_displacement(self, free: np.ndarray) -> np.ndarray:
        """Displacement of every control point; the image-border points stay fixed."""
        disp = np.zeros_like(self.points)
        disp[: self.num_free] = free
        return disp

    def unfold(self, disp: np.ndarray) -> np.ndarray:
        """Pull flipped triangles back toward their local mean displacement (keeps the map one-to-one)."""
        tris = self.triangles
        for _ in range(self.cfg.fold_iterations):
            a, b, c = (self.points + disp)[tris].transpose(1, 0, 2)
            rest_a, rest_b, rest_c = self.points[tris].transpose(1, 0, 2)
            area = _cross(b - a, c - a)
            rest_area = _cross(rest_b - rest_a, rest_c - rest_a)
            flipped = np.sign(area) != np.sign(rest_area)
            if not flipped.any():
                break
            for t in tris[flipped]:
                disp[t] = 0.5 * (disp[t] + disp[t].mean(0))
            disp[self.num_free :] = 0.0
        return disp

    def backward_map(self, disp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.cfg.grid_cells
        forward = (self.weights @ disp).astype(np.float32).reshape(n, n, 2)
        offset = -forward
        for _ in range(self.cfg.inverse_iterations):
            sample = (self.grid_xy + offset) / self.step
            offset = -cv2.remap(
                forward,
                sample[..., 0],
                sample[..., 1],
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
        fine = cv2.remap(offset, self.fine_x, self.fine_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return self.pixel_x + fine[..., 0], self.pixel_y + fine[..., 1]

    def warp(self, image: np.ndarray, disp: np.ndarray) -> np.ndarray:
        map_x, map_y = self.backward_map(disp)
        return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]

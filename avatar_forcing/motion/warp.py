"""Backward piecewise-affine warp through a precomputed sparse barycentric map on a coarse grid.

The control points' rest triangulation is fixed, so each coarse grid point's triangle and barycentric
weights are computed once: the forward displacement field of a frame is one sparse product
``weights @ displacement``. The backward map (output pixel -> source pixel) is that field's inverse,
found by a few damped fixed-point steps ``s = q - d(s)`` on the coarse grid, then upsampled with
``cv2.resize`` (the coarse grid sits at a bilinear resize's sample positions, so the upsampling is exact)
and applied with ``cv2.remap``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import sparse
from scipy.spatial import Delaunay


@dataclass(frozen=True)
class WarpConfig:
    cells_per_face: float = 48.0  # coarse grid cells across a face width (lips and lids are a few cells tall)
    min_cell: int = 2  # output pixels; a smaller cell only costs time
    inverse_iterations: int = 8  # fixed-point steps of the backward map
    inverse_damping: float = 0.5  # share of each step taken: converges where a turned face compresses
    border_points: int = 8  # fixed control points per image side
    fold_iterations: int = 10  # local smoothing passes that undo folded (flipped) triangles
    fold_step: float = 0.7  # share of the way to the triangles' mean taken per pass


class MeshWarper:
    """Warps an (height, width) image region whose border stays fixed."""

    def __init__(self, rest_points: np.ndarray, shape: tuple[int, int], face_width: float,
                 cfg: WarpConfig = WarpConfig()):
        self.cfg = cfg
        self.height, self.width = height, width = shape
        xs = np.linspace(0, width - 1, cfg.border_points)
        ys = np.linspace(0, height - 1, cfg.border_points)
        frame = np.concatenate(
            [
                np.stack([xs, np.zeros_like(xs)], 1),
                np.stack([xs, np.full_like(xs, height - 1)], 1),
                np.stack([np.zeros_like(ys), ys], 1),
                np.stack([np.full_like(ys, width - 1), ys], 1),
            ]
        )
        self.num_free = len(rest_points)
        self.points = np.concatenate([np.asarray(rest_points, np.float64), np.unique(frame, axis=0)])
        tri = Delaunay(self.points)
        self.triangles = tri.simplices
        a, b, c = self.points[self.triangles].transpose(1, 0, 2)
        self._rest_sign = np.sign(_cross(b - a, c - a))
        # Coarse sample j sits where cv2.resize (bilinear, n -> size) samples it: (j + 0.5) * step - 0.5.
        cell = max(cfg.min_cell, int(face_width / cfg.cells_per_face))
        self.cells = (max(height // cell, 2), max(width // cell, 2))  # rows, columns
        self.step = np.array([width / self.cells[1], height / self.cells[0]], np.float32)  # x, y
        gx, gy = np.meshgrid((np.arange(self.cells[1]) + 0.5) * self.step[0] - 0.5,
                             (np.arange(self.cells[0]) + 0.5) * self.step[1] - 0.5)
        grid = np.stack([gx.ravel(), gy.ravel()], 1)
        simplex = tri.find_simplex(grid)
        simplex[simplex < 0] = 0  # outside the hull (never, the corners are control points): any triangle
        transform = tri.transform[simplex]
        bary = np.einsum("nij,nj->ni", transform[:, :2], grid - transform[:, 2])
        bary = np.concatenate([bary, 1 - bary.sum(1, keepdims=True)], 1)
        rows = np.repeat(np.arange(len(grid)), 3)
        self.weights = sparse.csr_matrix(
            (bary.ravel(), (rows, tri.simplices[simplex].ravel())), shape=(len(grid), len(self.points))
        )
        self.grid_xy = np.stack([gx, gy], -1).astype(np.float32)
        self.pixel_xy = np.stack(np.meshgrid(np.arange(width, dtype=np.float32),
                                             np.arange(height, dtype=np.float32)), -1)  # identity map

    def full_displacement(self, free: np.ndarray) -> np.ndarray:
        """Displacement of every control point; the image-border points stay fixed."""
        disp = np.zeros_like(self.points)
        disp[: self.num_free] = free
        return disp

    def flipped(self, disp: np.ndarray) -> np.ndarray:
        """Mask of triangles whose orientation the displacement reverses (a fold-over)."""
        a, b, c = (self.points + disp)[self.triangles].transpose(1, 0, 2)
        return np.sign(_cross(b - a, c - a)) != self._rest_sign

    def unfold(self, disp: np.ndarray) -> np.ndarray:
        """Pull the vertices of flipped triangles toward their flipped triangles' mean displacement, a
        few passes: undoes the folds where a turned head compresses its far side in the dense mesh (a
        backward warp cannot show occlusion). Residual folds are sliver triangles a pixel wide."""
        disp = disp.copy()
        n = len(self.points)
        for _ in range(self.cfg.fold_iterations):
            flipped = self.flipped(disp)
            if not flipped.any():
                break
            tris = self.triangles[flipped]
            total = np.zeros_like(disp)
            np.add.at(total, tris.ravel(), np.repeat(disp[tris].mean(1), 3, axis=0))
            count = np.bincount(tris.ravel(), minlength=n)
            hit = np.flatnonzero(count[: self.num_free])  # the image border stays put
            disp[hit] += self.cfg.fold_step * (total[hit] / count[hit, None] - disp[hit])
        return disp

    def folded_area(self, disp: np.ndarray) -> float:
        """Total area of flipped triangles, pixels (0 = the map is one-to-one)."""
        a, b, c = (self.points + disp)[self.triangles].transpose(1, 0, 2)
        return float(np.abs(_cross(b - a, c - a))[self.flipped(disp)].sum() / 2)

    def backward_map(self, disp: np.ndarray) -> np.ndarray:
        """(height, width, 2) float32 source coordinates for every output pixel."""
        forward = (self.weights @ disp).astype(np.float32).reshape(*self.cells, 2)
        offset = -forward
        for _ in range(self.cfg.inverse_iterations):
            sample = (self.grid_xy + offset + 0.5) / self.step - 0.5  # coarse-grid index coordinates
            step = -cv2.remap(
                forward, sample[..., 0], sample[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
            )
            offset += self.cfg.inverse_damping * (step - offset)
        fine = cv2.resize(offset, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        fine += self.pixel_xy
        return fine

    def warp(self, image: np.ndarray, disp: np.ndarray) -> np.ndarray:
        source = self.backward_map(disp)
        return cv2.remap(image, source, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]

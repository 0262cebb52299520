"""A spatial smoothness prior on the parts, inside the S×S statistics.

With L the Laplacian of the H×W grid (4-neighbours: xᵀ L x = Σ over adjacent positions
(x_s − x_t)²) the penalised objective is

    f(A, P) + λ tr(Pᵀ L P).

For PandA's tied core f = c − 2 tr(Pᵀ K1 P) + tr(Pᵀ K2 P PᵀP), so the prior only replaces
K1 by K1 − (λ/2) L: every update rule and the exact line search work unchanged on the
shifted statistic, and L X is a stencil on the grid (no S×S matrix, no extra pass).

λ is set relative to the data: ``smoothness`` = λ S / Σ_i ‖Z_i‖². A unit-norm part that
is a checkerboard has pᵀ L p up to 8, a flat blob of m positions about (its perimeter)/m;
so ``smoothness = 1`` charges a roughness of 1 the energy of one average position, the same
at every layer and every scale of the data.
"""

from __future__ import annotations

import numpy as np
import tensorly as tl

from . import _backend as B


def penalty_weight(smoothness: float, sq_norm: float, n_positions: int) -> float:
    """λ = smoothness · Σ_i ‖Z_i‖² / S."""
    return smoothness * sq_norm / n_positions


def grid_laplacian(spatial_shape: tuple) -> np.ndarray:
    """The S×S Laplacian of a 1-D or 2-D grid with 4-neighbours (for tests and figures)."""
    S = int(np.prod(spatial_shape))
    with tl.backend_context("numpy"):
        return laplacian_times(np.eye(S), spatial_shape)


def laplacian_times(X, spatial_shape: tuple):
    """L X for X (S×R) on the grid ``spatial_shape`` ((H, W) or (S,)), row-major positions:
    each row becomes its number of neighbours times itself minus the sum of its neighbours."""
    H, W = (spatial_shape[0], 1) if len(spatial_shape) == 1 else spatial_shape
    R = tl.shape(X)[1]
    grid = tl.reshape(X, (H, W, R))
    total = tl.zeros_like(grid)
    for axis, n in ((0, H), (1, W)):
        if n < 2:
            continue
        front, back = _slices(axis, 1, n), _slices(axis, 0, n - 1)
        diff = grid[front] - grid[back]  # x_{t+1} − x_t along the axis
        zero = tl.zeros_like(grid[_slices(axis, 0, 1)])
        # (L x)_t gets (x_t − x_{t+1}) from its next neighbour and (x_t − x_{t−1}) from its
        # previous one
        total = total - tl.concatenate([diff, zero], axis=axis)
        total = total + tl.concatenate([zero, diff], axis=axis)
    return tl.reshape(total, (H * W, R))


def _slices(axis: int, start: int, stop: int) -> tuple:
    return (slice(None),) * axis + (slice(start, stop),)


class SmoothedOperator:
    """An operator whose first statistic is K1 − (λ/2) L: the tied objective plus
    λ tr(Pᵀ L P). K2 is the wrapped operator's (K1 itself when it is shared)."""

    shared = False

    def __init__(self, op, weight: float, spatial_shape: tuple):
        self.op, self.weight, self.spatial_shape = op, weight, tuple(spatial_shape)
        self.streamed = op.streamed

    def products(self, X):
        """(K1 X − (λ/2) L X, K2 X)."""
        K1X, K2X = self.op.products(X)
        return K1X - (self.weight / 2) * laplacian_times(X, self.spatial_shape), K2X


def roughness(P, spatial_shape: tuple) -> float:
    """tr(Pᵀ L P): the summed squared differences of each part between neighbours."""
    return B.scalar(tl.sum(P * laplacian_times(P, spatial_shape)))

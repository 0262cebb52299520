"""Helpers shared by the tests: planted data, congruence, backend conversion."""

from __future__ import annotations

import numpy as np
import tensorly as tl

from tensorpanda.benchmarks.planted import Planted

# Tolerances per dtype: float32 objectives carry rounding of ~1e-7 × Σ‖Z‖².
RTOL = {"float32": 1e-4, "float64": 1e-9}
# Largest relative increase of the objective that counts as "did not increase".
MONOTONE_SLACK = {"float32": 1e-6, "float64": 1e-12}


def planted(
    n=300,
    channels=24,
    height=6,
    width=8,
    n_parts=4,
    n_appearances=None,
    noise=0.01,
    seed=0,
    dtype="float64",
):
    """Samples Z_i = A G_i Pᵀ + noise (:class:`tensorpanda.benchmarks.planted.Planted`):
    parts as vertical stripes, a random orthonormal A, core scales from 3 down to 1.

    Returns (Z as a numpy array (N, C, H, W), A, P), A and P in float64.
    """
    model = Planted(
        channels, (height, width), n_parts, n_appearances, layout="columns",
        core_scales=np.linspace(3, 1, n_parts), noise=noise, seed=np.random.RandomState(seed),
        dtype="float64",
    )
    Z = model.sample(n).reshape(n, channels, height, width).astype(dtype)
    return Z, model.A, model.P


def congruence(X, Y) -> float:
    """Smallest |cosine| between matched columns of X and Y (Hungarian matching)."""
    from scipy.optimize import linear_sum_assignment

    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    X = X / np.linalg.norm(X, axis=0)
    Y = Y / np.linalg.norm(Y, axis=0)
    M = np.abs(X.T @ Y)
    rows, cols = linear_sum_assignment(-M)
    return float(M[rows, cols].min())


def to_backend(array):
    """A numpy array as a tensor of the active backend (same dtype)."""
    return tl.tensor(array, dtype=getattr(tl, str(array.dtype)))


def host(x) -> np.ndarray:
    return np.asarray(tl.to_numpy(x))

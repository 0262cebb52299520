"""Helpers shared by the tests: planted data, congruence, backend conversion."""

from __future__ import annotations

import numpy as np
import tensorly as tl

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
    """Samples Z_i = A G_i Pᵀ + noise with disjoint non-negative parts P (unit columns, as
    blocks of columns of the H×W grid), a random orthonormal A and Gaussian cores.

    Returns (Z as a numpy array (N, C, H, W), A, P).
    """
    rng = np.random.RandomState(seed)
    S = height * width
    n_appearances = n_appearances or channels
    labels = np.repeat(np.arange(n_parts), int(np.ceil(S / n_parts)))[:S]
    grid = labels.reshape(width, height).T.reshape(-1)  # vertical stripes of the image
    P = np.zeros((S, n_parts))
    for k in range(n_parts):
        P[grid == k, k] = rng.uniform(0.5, 1.5, size=(grid == k).sum())
    P /= np.linalg.norm(P, axis=0)
    A = np.linalg.qr(rng.standard_normal((channels, n_appearances)))[0]
    G = rng.standard_normal((n, n_appearances, n_parts)) * np.linspace(3, 1, n_parts)
    Z = np.einsum("cr,nrk,sk->ncs", A, G, P) + noise * rng.standard_normal((n, channels, S))
    return Z.reshape(n, channels, height, width).astype(dtype), A, P


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

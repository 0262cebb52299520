"""Initial factors.

- ``"svd"``: A from the top eigenvectors of the channel scatter Σ Z_i Z_iᵀ (the HOSVD start
  of the original code); P from the magnitudes of the top eigenvectors of the spatial Gram
  Σ Z_iᵀ Z_i.
- ``"nndsvd"``: like ``"svd"``, but each eigenvector contributes its larger signed part
  (positive or negative section, after Boutsidis & Gallopoulos' NNDSVD); zeros are filled
  with a small value so that multiplicative updates can still move them.
- ``"random"``: A orthonormalised Gaussian, P uniform on [0, 1); columns of unit norm.
- a pair ``(A, P)``: user-given factors (either may be None to use ``"svd"`` for it).

Non-negative factors start with columns of unit norm, the scale at which PandA's P Pᵀ acts
as a projector.
"""

from __future__ import annotations

import numpy as np
import tensorly as tl

from . import _backend as B

INITS = ("svd", "nndsvd", "random")


def _unit_columns(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=0)
    return X / np.where(norms > 0, norms, 1.0)


def nonneg_from_eigenvectors(U: np.ndarray, method: str) -> np.ndarray:
    """Non-negative columns from eigenvectors (host arrays), as described in the module."""
    if method == "svd":
        return _unit_columns(np.abs(U))
    pos, neg = np.maximum(U, 0), np.maximum(-U, 0)
    X = np.where(np.linalg.norm(pos, axis=0) >= np.linalg.norm(neg, axis=0), pos, neg)
    X = _unit_columns(X)
    fill = X[X > 0].mean() / 100 if (X > 0).any() else 1.0 / np.sqrt(X.shape[0])
    return np.where(X > 0, X, fill)


def random_nonneg(shape: tuple, rng: np.random.RandomState) -> np.ndarray:
    return _unit_columns(rng.uniform(size=shape))


def random_orthonormal(shape: tuple, rng: np.random.RandomState) -> np.ndarray:
    Q, R = np.linalg.qr(rng.standard_normal(shape))
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


def parts_from_gram(method: str, K, shape: tuple, rng, context: dict):
    """Initial P (S×R_S): from the top eigenvectors of the spatial Gram, or random.

    ``K`` is the S×S Gram as a matrix, an operator with ``apply`` (streamed statistics: the
    eigenvectors then come from a randomized subspace iteration, a few passes), or None.
    """
    S, rank = shape
    if method == "random" or K is None:
        return B.tensor(random_nonneg(shape, rng).astype(_np_dtype(context)), context)
    U = top_eigenvectors(K, S, rank, rng, context)
    P = nonneg_from_eigenvectors(tl.to_numpy(U).astype(np.float64), method)
    return B.tensor(P.astype(_np_dtype(context)), context)


def top_eigenvectors(K, n: int, rank: int, rng, context: dict, power_iterations: int = 2):
    """Top eigenvectors of a symmetric PSD n×n K given as a matrix or as an operator.

    For an operator (K applied by passes over the data) this is a randomized subspace
    iteration (Halko, Martinsson & Tropp, 2011): ``power_iterations + 2`` applications.
    """
    if not hasattr(K, "apply"):
        return B.top_eigh(K, rank)[1]
    width = min(n, rank + 8)  # oversampling makes the top ``rank`` directions accurate
    Y = K.apply(B.tensor(rng.standard_normal((n, width)).astype(_np_dtype(context)), context))[0]
    for _ in range(power_iterations):
        Y = K.apply(B.orthonormal_basis(Y))[0]
    Q = B.orthonormal_basis(Y)
    _, V = B.top_eigh(tl.dot(tl.transpose(Q), K.apply(Q)[0]), rank)
    return B.fix_signs(tl.dot(Q, V))


def appearances_from_scatter(method: str, scatter, shape: tuple, nonneg: bool, rng, context):
    """Initial A (C×R_C) from the channel scatter (or random when ``scatter`` is None)."""
    C, rank = shape
    dtype = _np_dtype(context)
    if method == "random" or scatter is None:
        A = random_nonneg(shape, rng) if nonneg else random_orthonormal(shape, rng)
        return B.tensor(A.astype(dtype), context)
    _, U = B.top_eigh(scatter, rank)
    if not nonneg:
        return U
    A = nonneg_from_eigenvectors(tl.to_numpy(U).astype(np.float64), method)
    return B.tensor(A.astype(dtype), context)


def _np_dtype(context: dict):
    return np.dtype(B.dtype_name(context))


def check_user_factor(
    name: str, X, shape: tuple, nonneg: bool, context: dict, orthonormal: bool = False
):
    """Validate a user-given initial factor and move it into the solver's context."""
    host = B.to_host(X)
    if host.ndim != 2 or tuple(host.shape) != tuple(shape):
        raise ValueError(
            f"the initial {name} has shape {tuple(host.shape)}, expected {tuple(shape)} "
            f"({'C × R_C' if name == 'A' else 'S × R_S'})"
        )
    if not np.isfinite(host).all():
        raise ValueError(f"the initial {name} contains NaN or inf")
    if nonneg and (host < 0).any():
        raise ValueError(
            f"the initial {name} has negative entries but must be non-negative: pass "
            f"numpy.abs({name}) or numpy.maximum({name}, 0)"
        )
    if orthonormal:
        gap = np.abs(host.T @ host - np.eye(shape[1])).max()
        if gap > 1e-4:
            raise ValueError(
                f"the initial {name} is not orthonormal (max |AᵀA − I| = {gap:.2g}) but "
                "appearances='orthonormal': orthonormalise it (numpy.linalg.qr(A)[0]) or "
                "pass appearances='free'"
            )
    return B.to_backend(host.astype(_np_dtype(context)), context)

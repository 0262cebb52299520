"""Initial factors.

- ``"svd"``: A from the top eigenvectors of the channel scatter Σ Z_i Z_iᵀ (HOSVD), P from the
  magnitudes of the top eigenvectors of the spatial Gram Σ Z_iᵀ Z_i.
- ``"spa"`` (the default): A as for ``"svd"``; P by successive projections on the rows of
  the spatial Gram's top eigenvectors (`separable_columns`). When parts are (nearly)
  disjoint, every row of that eigenbasis is a multiple of one of R_S directions, one per
  part, whatever the mixing of the eigenvectors; SPA finds one row per direction.
- ``"nndsvd"``: as ``"svd"``, but each eigenvector keeps its larger signed part (NNDSVD,
  Boutsidis & Gallopoulos), zeros filled with a small value so multiplicative updates can move.
- ``"random"``: A orthonormalised Gaussian, P uniform on [0, 1).
- a pair ``(A, P)``: the user's factors (either may be None: that one starts as for ``"spa"``).

Non-negative factors start with unit-norm columns, the scale at which P Pᵀ acts as a projector.
"""

from __future__ import annotations

import numpy as np
import tensorly as tl

from . import _backend as B

INITS = ("spa", "svd", "nndsvd", "random")
# Held Grams up to this many rows get a full eigendecomposition, larger ones a subspace
# iteration.
FULL_EIGH_MAX = 1024


def _unit_columns(X: np.ndarray) -> np.ndarray:
    """X with columns of unit norm (zero columns left as they are)."""
    norms = np.linalg.norm(X, axis=0)
    return X / np.where(norms > 0, norms, 1.0)


def nonneg_from_eigenvectors(U: np.ndarray, method: str) -> np.ndarray:
    """Non-negative unit-norm columns from host eigenvectors U: |u| for ``"svd"``, SPA for
    ``"spa"`` (`separable_columns`), else NNDSVD.

    NNDSVD keeps the larger in norm of max(u, 0) and max(−u, 0). SPA and NNDSVD raise their
    entries to at least a hundredth of the mean entry (a zero entry is locked under
    multiplicative updates).
    """
    if method == "svd":
        return _unit_columns(np.abs(U))
    if method == "spa":
        return _fill_zeros(_unit_columns(separable_columns(U)))
    pos, neg = np.maximum(U, 0), np.maximum(-U, 0)
    X = np.where(np.linalg.norm(pos, axis=0) >= np.linalg.norm(neg, axis=0), pos, neg)
    return _fill_zeros(_unit_columns(X))


def _fill_zeros(X: np.ndarray) -> np.ndarray:
    """X with its entries raised to at least a hundredth of its mean entry: no zero (locked
    under multiplicative updates), and a start that depends continuously on the data (an
    entry rounding to +1e-17 or to 0 gives the same start)."""
    fill = X.mean() / 100 if X.any() else 1.0 / np.sqrt(X.shape[0])
    return np.maximum(X, fill)


def successive_projections(U: np.ndarray) -> list[int]:
    """R row indices of U (n×R) chosen by the successive projection algorithm (Araújo et al.
    2001; Gillis & Vavasis 2014): take the row of largest norm, project every row onto the
    orthogonal complement of it, repeat. For U = W M with W ≥ 0 separable (each row of W a
    multiple of one unit vector e_k), it returns one row per k, robustly to noise."""
    residual, chosen = U.copy(), []
    for _ in range(U.shape[1]):
        norms = np.einsum("ij,ij->i", residual, residual)
        norms[chosen] = -1.0  # a row once chosen has residual 0 (up to rounding)
        j = int(np.argmax(norms))
        chosen.append(j)
        u = residual[j] / np.sqrt(max(norms[j], np.finfo(float).tiny))
        residual -= np.outer(residual @ u, u)
    return chosen


def separable_columns(U: np.ndarray) -> np.ndarray:
    """W ≥ 0 (n×R) with U ≈ W U[J]: each row of U in terms of the SPA rows J, clipped at 0.

    If the parts are disjoint, U = P T for an invertible T, the rows of U lie on R rays (one
    per part) and W recovers P up to column scales, whichever rotation of the subspace
    eigh returned. Each column has its pure row J_k at 1, so no column is zero."""
    J = successive_projections(U)
    W = U @ np.linalg.pinv(U[J])
    return np.maximum(W, 0.0)


def random_nonneg(shape: tuple, rng: np.random.RandomState) -> np.ndarray:
    """A random non-negative host factor: entries uniform on [0, 1), columns of unit norm."""
    return _unit_columns(rng.uniform(size=shape))


def random_orthonormal(shape: tuple, rng: np.random.RandomState) -> np.ndarray:
    """A random host factor with orthonormal columns: Q of a Gaussian's QR, Haar-distributed."""
    Q, R = np.linalg.qr(rng.standard_normal(shape))
    # QR's signs are arbitrary; a positive diagonal of R makes Q uniform (Haar)
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


def parts_from_gram(method: str, K, shape: tuple, rng, context: dict):
    """Initial P (S×R_S): the top eigenvectors of the spatial Gram K made non-negative, or random.

    K is a matrix, an operator (streamed statistics) or None (random P).
    """
    S, rank = shape
    if method == "random" or K is None:
        return B.tensor(random_nonneg(shape, rng).astype(_np_dtype(context)), context)
    U = top_eigenvectors(K, S, rank, rng, context)
    P = nonneg_from_eigenvectors(tl.to_numpy(U).astype(np.float64), method)
    return B.tensor(P.astype(_np_dtype(context)), context)


def top_eigenvectors(K, n: int, rank: int, rng, context: dict, power_iterations: int = 2):
    """Top ``rank`` eigenvectors (decreasing, signs fixed) of a symmetric PSD K, matrix or operator.

    An operator costs a pass over the data per product, so it gets a randomized subspace
    iteration (Halko, Martinsson & Tropp, 2011): ``power_iterations + 2`` products.
    """
    if hasattr(K, "top_eigenvectors"):  # a sketch that knows its own, exactly
        return K.top_eigenvectors(rank)
    if not hasattr(K, "products"):
        if n <= FULL_EIGH_MAX:
            return B.top_eigh(K, rank)[1]
        # a held S×S Gram of a large map: products cost S²·R, a full eigh S³ (7.9 s at
        # S = 64×64), so iterate on the subspace, with more power steps than streamed; a
        # fixed draw keeps the start of a held Gram independent of random_state
        K, power_iterations, rng = _Held(K), 6, np.random.RandomState(0)
    width = min(n, rank + 8)  # oversampling makes the top ``rank`` directions accurate
    Y = K.products(B.tensor(rng.standard_normal((n, width)).astype(_np_dtype(context)), context))[0]
    for _ in range(power_iterations):
        Y = K.products(B.orthonormal_basis(Y))[0]
    Q = B.orthonormal_basis(Y)
    _, V = B.top_eigh(tl.dot(tl.transpose(Q), K.products(Q)[0]), rank)
    return B.fix_signs(tl.dot(Q, V))


class _Held:
    """A held matrix seen as an operator (``products`` as the streamed ones have it)."""

    def __init__(self, K):
        self.K = K

    def products(self, X):
        return (tl.dot(self.K, X),)


def appearances_from_scatter(method: str, scatter, shape: tuple, nonneg: bool, rng, context):
    """Initial A (C×R_C): the scatter's top eigenvectors (made non-negative if asked), or random."""
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
    """The numpy dtype of a backend context (host arrays are built in it, then moved)."""
    return np.dtype(B.dtype_name(context))


def _check_not_zero(name: str, host: np.ndarray, nonneg: bool) -> None:
    """Refuse a factor that is all zeros, or a non-negative one with an all-zero column.

    Zero is a fixed point of every update rule: the gradients through a zero factor vanish
    and multiplicative rules keep zeros at zero, so the fit would return it unchanged with
    ``converged=True``. A zero column of a non-negative factor is such a dead part alone.
    """
    if not host.any():
        raise ValueError(
            f"the initial {name} is all zeros, a fixed point of every solver (the fit would "
            f"return it unchanged): start from positive values, e.g. "
            f"numpy.full({name}.shape, 0.1), or leave init to 'svd'"
        )
    dead = np.flatnonzero(~host.any(axis=0)) if nonneg else []
    if len(dead):
        raise ValueError(
            f"column(s) {', '.join(map(str, dead))} of the initial {name} are all zeros: a "
            "non-negative column that starts at zero stays there (a dead part). Start them "
            "from small positive values, e.g. 0.1"
        )


def check_user_factor(
    name: str, X, shape: tuple, nonneg: bool, context: dict, orthonormal: bool = False
):
    """Check a user's initial factor (shape, finite, sign, not zero, orthonormal); return it in
    context."""
    B.check_materialised(X, what=f"the initial {name}")
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
    _check_not_zero(name, host, nonneg)
    if orthonormal:
        gap = np.abs(host.T @ host - np.eye(shape[1])).max()
        if gap > 1e-4:
            raise ValueError(
                f"the initial {name} is not orthonormal (max |AᵀA − I| = {gap:.2g}) but "
                "appearances='orthonormal': orthonormalise it (numpy.linalg.qr(A)[0]) or "
                "pass appearances='free'"
            )
    return B.to_backend(host.astype(_np_dtype(context)), context)

"""Sufficient statistics: sums over samples, accumulated batch by batch.

Everything the Gram solvers need from the data is one of these sums (DESIGN.md §3):

    ‖Z‖²   = Σ_i ‖Z_i‖²_F
    K_S(Q) = Σ_i (Qᵀ Z_i)ᵀ (Qᵀ Z_i)                       (S×S; Q = I gives Σ Z_iᵀ Z_i)
    K_C(P) = Σ_i (Z_i P) D (Z_i P)ᵀ                        (C×C; D depends on the model)
    K X    = Σ_i Z_iᵀ Q Qᵀ Z_i X                           (S×R; K_S applied without forming it)

A pass over the data (:func:`sweep`) adds each batch's terms, checks them for non-finite
values, and all-reduces the totals when torch.distributed is initialised. Memory is that of
the statistics plus one batch, whatever the number of samples.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import opt_einsum
import tensorly as tl

from . import _backend as B
from ._distributed import all_reduce_sum
from .data import Batch, BatchSource, describe_nonfinite

Terms = Callable[[object], dict]


def sq_norm(Z):
    """Σ_i ‖Z_i‖² of a batch, as one dot product (no temporary of the batch's size).

    Parameters
    ----------
    Z : tensor
        A batch of samples, of any shape (usually (n, C, S)), on the active backend.

    Returns
    -------
    scalar tensor
        The sum of the squared entries of ``Z``, Σ_i ‖Z_i‖²_F (a 0-d backend tensor).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.statistics import sq_norm
    >>> Z = np.random.default_rng(0).standard_normal((4, 3, 5))
    >>> bool(np.isclose(sq_norm(Z), (Z**2).sum()))
    True
    """
    v = tl.reshape(Z, (-1,))
    return tl.dot(v, v)


def gram(X):
    """XᵀX for a tall (n, S) matrix.

    On the numpy backend the rows are split across threads, each running single-threaded
    BLAS: for a tall, thin X the library parallelises the product poorly (two threads took
    as long as one on the development machine), and the split makes it ~1.7× faster.
    Products with fewer than :data:`PARALLEL_MIN` entries, and other backends, use one
    plain matrix product.

    Parameters
    ----------
    X : tensor of shape (n, S)
        The matrix, on the active backend (rows are e.g. the channels of all samples of a
        batch, columns the spatial positions).

    Returns
    -------
    tensor of shape (S, S)
        The symmetric Gram matrix XᵀX.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.statistics import gram
    >>> X = np.random.default_rng(0).standard_normal((50, 3))
    >>> G = gram(X)
    >>> G.shape
    (3, 3)
    >>> bool(np.allclose(G, X.T @ X))
    True
    """
    rows = tl.shape(X)[0]
    if tl.get_backend() != "numpy" or _THREADS < 2 or rows * tl.shape(X)[1] < PARALLEL_MIN:
        return tl.dot(tl.transpose(X), X)
    blocks = np.array_split(X, _THREADS)
    with _blas_controller().limit(limits=1, user_api="blas"):
        parts = list(_pool().map(lambda x: x.T @ x, blocks))
    return sum(parts[1:], parts[0])


# Below this many entries a product is too small to be worth splitting across threads.
PARALLEL_MIN = 2**20
_THREADS = min(os.cpu_count() or 1, 8)


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_THREADS, thread_name_prefix="tensorpanda-gram")


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def spatial_gram_terms(Q=None, AtA=None) -> Terms:
    """Terms of K_S(Q) = Σ_i Z_iᵀ Q Qᵀ Z_i (and of K2 = Σ_i Z_iᵀ Q (QᵀQ) Qᵀ Z_i when ``AtA``
    is given, for a free, non-orthonormal A). ``Q=None`` means Q = I: the plain spatial Gram,
    whose trace is also Σ‖Z_i‖².

    The returned function is meant for :func:`sweep`, which sums its output over batches.

    Parameters
    ----------
    Q : tensor of shape (C, R_C), optional
        The appearances A. None (the default) means Q = I, i.e. K_S = Σ_i Z_iᵀ Z_i.
    AtA : tensor of shape (R_C, R_C), optional
        AᵀA, for a free (non-orthonormal) A: adds the second statistic
        K2 = Σ_i Z_iᵀ Q (AᵀA) Qᵀ Z_i. Ignored when ``Q`` is None.

    Returns
    -------
    callable
        ``terms(Z)`` mapping a batch ``Z`` of shape (n, C, S) to a dict with ``"K"`` (S×S,
        the batch's share of K_S), ``"sq_norm"`` (Σ_i ‖Z_i‖² over the batch) and, when ``Q``
        and ``AtA`` are given, ``"K2"`` (S×S).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.statistics import spatial_gram_terms
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((4, 3, 5))  # 4 samples, C = 3 channels, S = 5 positions
    >>> t = spatial_gram_terms()(Z)
    >>> sorted(t), t["K"].shape
    (['K', 'sq_norm'], (5, 5))
    >>> bool(np.allclose(t["K"], sum(z.T @ z for z in Z)))
    True
    >>> A = rng.standard_normal((3, 2))  # a free appearance basis
    >>> t = spatial_gram_terms(A, AtA=A.T @ A)(Z)
    >>> sorted(t)
    ['K', 'K2', 'sq_norm']
    >>> bool(np.allclose(t["K2"], sum(z.T @ A @ A.T @ A @ A.T @ z for z in Z)))
    True
    """

    def terms(Z):
        n, C, S = tl.shape(Z)
        if Q is None:
            K = gram(tl.reshape(Z, (n * C, S)))
            return {"K": K, "sq_norm": tl.trace(K)}
        Y = tl.matmul(tl.transpose(Q), Z)  # (n, R_C, S): the appearance coordinates
        R = tl.shape(Q)[1]
        out = {"K": gram(tl.reshape(Y, (n * R, S))), "sq_norm": sq_norm(Z)}
        if AtA is not None:
            T = tl.matmul(AtA, Y)
            out["K2"] = tl.dot(tl.transpose(tl.reshape(Y, (n * R, S))), tl.reshape(T, (n * R, S)))
        return out

    return terms


def channel_gram_terms(P, D=None, second=None) -> Terms:
    """Terms of K_C = Σ_i (Z_i P) D (Z_i P)ᵀ (C×C); D = None means the identity.

    With ``second`` (an R×R matrix) a second statistic Σ_i (Z_i P) second (Z_i P)ᵀ is added
    under the key ``K2`` (the free-A PandA A-step needs both). For PandA with an
    orthonormal A, D = 2I − PᵀP gives the K_C(P) whose top eigenvectors are the A-step.

    Parameters
    ----------
    P : tensor of shape (S, R_S)
        The parts.
    D : tensor of shape (R_S, R_S), optional
        The middle matrix; None (the default) means the identity.
    second : tensor of shape (R_S, R_S), optional
        The middle matrix of a second statistic, returned under ``"K2"``.

    Returns
    -------
    callable
        ``terms(Z)`` mapping a batch ``Z`` of shape (n, C, S) to a dict with ``"K"`` (C×C),
        ``"sq_norm"`` (Σ_i ‖Z_i‖² over the batch) and, with ``second``, ``"K2"`` (C×C).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.statistics import channel_gram_terms
    >>> rng = np.random.default_rng(0)
    >>> Z, P = rng.standard_normal((4, 3, 5)), rng.random((5, 2))
    >>> D = 2 * np.eye(2) - P.T @ P
    >>> t = channel_gram_terms(P, D)(Z)
    >>> t["K"].shape
    (3, 3)
    >>> bool(np.allclose(t["K"], sum(z @ P @ D @ (z @ P).T for z in Z)))
    True
    >>> sorted(channel_gram_terms(P, D, second=P.T @ P)(Z))
    ['K', 'K2', 'sq_norm']
    """

    def terms(Z):
        W = tl.matmul(Z, P)  # (n, C, R_S)
        WD = W if D is None else tl.matmul(W, D)
        out = {"K": tl.tensordot(WD, W, axes=([0, 2], [0, 2])), "sq_norm": sq_norm(Z)}
        if second is not None:
            out["K2"] = tl.tensordot(tl.matmul(W, second), W, axes=([0, 2], [0, 2]))
        return out

    return terms


def channel_scatter(Z):
    """Σ_i Z_i Z_iᵀ of a batch (C×C): one product of the batch laid out as (C, B·S).

    Parameters
    ----------
    Z : tensor of shape (n, C, S)
        A batch of samples.

    Returns
    -------
    tensor of shape (C, C)
        The channel scatter Σ_i Z_i Z_iᵀ of the batch.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.statistics import channel_scatter
    >>> Z = np.random.default_rng(0).standard_normal((4, 3, 5))
    >>> K = channel_scatter(Z)
    >>> K.shape
    (3, 3)
    >>> bool(np.allclose(K, sum(z @ z.T for z in Z)))
    True
    """
    n, C, S = tl.shape(Z)
    Zt = tl.reshape(tl.transpose(Z, (1, 0, 2)), (C, n * S))
    return gram(tl.transpose(Zt))


def apply_terms(X, Q=None, AtA=None) -> Terms:
    """Terms of K X = Σ_i Z_iᵀ Q Qᵀ Z_i X (and K2 X with ``AtA``), without forming the S×S K.

    The contraction order is left to opt_einsum: with S large the cheap order multiplies
    Z_i by the thin X first.

    Parameters
    ----------
    X : tensor of shape (S, R)
        The thin matrix K is applied to.
    Q : tensor of shape (C, R_C), optional
        The appearances A. None (the default) means Q = I: K = Σ_i Z_iᵀ Z_i.
    AtA : tensor of shape (R_C, R_C), optional
        AᵀA, for a free A: adds K2 X with K2 = Σ_i Z_iᵀ Q (AᵀA) Qᵀ Z_i. Ignored when ``Q``
        is None.

    Returns
    -------
    callable
        ``terms(Z)`` mapping a batch ``Z`` of shape (n, C, S) to a dict with ``"K"`` (S×R,
        the batch's share of K X), ``"sq_norm"`` (Σ_i ‖Z_i‖² over the batch) and, when
        ``Q`` and ``AtA`` are given, ``"K2"`` (S×R, the share of K2 X).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.statistics import apply_terms, spatial_gram_terms
    >>> rng = np.random.default_rng(0)
    >>> Z, A, X = rng.standard_normal((4, 3, 5)), rng.standard_normal((3, 2)), rng.random((5, 2))
    >>> KX = apply_terms(X, A)(Z)["K"]
    >>> KX.shape
    (5, 2)
    >>> bool(np.allclose(KX, spatial_gram_terms(A)(Z)["K"] @ X))  # equals forming K first
    True
    """

    def terms(Z):
        if Q is None:
            KX = opt_einsum.contract("bcs,bct,tr->sr", Z, Z, X)
            out = {"K": KX}
        else:
            out = {"K": opt_einsum.contract("bcs,cq,dq,bdt,tr->sr", Z, Q, Q, Z, X)}
            if AtA is not None:
                out["K2"] = opt_einsum.contract(
                    "bcs,cq,qp,dp,bdt,tr->sr", Z, Q, AtA, Q, Z, X
                )
        out["sq_norm"] = sq_norm(Z)
        return out

    return terms


def _check_finite(terms: dict, batch: Batch) -> None:
    value = B.scalar(terms["sq_norm"])
    for key, t in terms.items():
        if key != "sq_norm" and tl.ndim(t) == 2 and tl.shape(t)[0] == tl.shape(t)[1]:
            value += B.scalar(tl.trace(t))
    if not np.isfinite(value):
        raise ValueError(
            f"the data contains non-finite values: {describe_nonfinite(batch)}. Remove or "
            "replace them (e.g. numpy.nan_to_num) before fitting"
        )


def sweep(source: BatchSource, terms: Terms, head: int = 0, head_terms: Terms | None = None):
    """One pass over ``source``: the sum over batches of ``terms(Z)``, all-reduced.

    ``head_terms`` are summed over the first ``head`` samples only (the channel scatter
    behind the appearance basis when R_C = C is taken over a bounded number of samples).
    Returns the dict of totals, with ``n_samples`` added.

    Each batch's terms are checked for non-finite values (NaN, inf, or squares that
    overflow); under an initialised ``torch.distributed`` process group the totals are
    summed over all ranks.

    Parameters
    ----------
    source : BatchSource
        The data, read once.
    terms : callable
        Maps a batch ``Z`` of shape (n, C, S) to a dict of statistics, which must include
        ``"sq_norm"`` (as returned by :func:`spatial_gram_terms`, :func:`channel_gram_terms`
        or :func:`apply_terms`).
    head : int, default 0
        How many leading samples ``head_terms`` is summed over.
    head_terms : callable, optional
        Like ``terms``, but summed over the first ``head`` samples only; its totals are
        returned under the keys ``"head_" + key``.

    Returns
    -------
    dict
        The totals of ``terms`` under their own keys, those of ``head_terms`` under
        ``"head_" + key`` (when ``head_terms`` is given and ``head > 0``), ``"n_samples"``
        (the number of samples read) and ``"head_samples"`` (how many of them went into
        the head totals; 0 without ``head_terms``).

    Raises
    ------
    ValueError
        If a batch contains non-finite values (the message names the first bad sample), or
        if the source cannot be read again (a used-up one-shot iterator) or yields
        inconsistent batches. :class:`~tensorpanda.data.BatchSource` may also raise
        ``TypeError`` for batches that are not arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import BatchSource
    >>> from tensorpanda.statistics import channel_scatter, spatial_gram_terms, sweep
    >>> Z = np.random.default_rng(0).standard_normal((5, 3, 4))
    >>> source = BatchSource(Z, batch_size=2)  # batches of 2, 2 and 1 samples
    >>> totals = sweep(source, spatial_gram_terms(), head=3,
    ...                head_terms=lambda Zb: {"C": channel_scatter(Zb)})
    >>> totals["n_samples"], totals["head_samples"]
    (5, 3)
    >>> bool(np.allclose(totals["K"], sum(z.T @ z for z in Z)))
    True
    >>> bool(np.allclose(totals["head_C"], channel_scatter(Z[:3])))
    True
    >>> Z[3, 0, 0] = np.nan
    >>> sweep(BatchSource(Z, batch_size=2), spatial_gram_terms())
    Traceback (most recent call last):
    ...
    ValueError: the data contains non-finite values: sample 3 (batch 1) contains NaN. ...
    """
    totals: dict = {}
    n = 0
    for batch in source:
        # non-finite values are detected and reported below, with the sample they sit in
        with np.errstate(over="ignore", invalid="ignore"):
            out = terms(batch.Z)
        _check_finite(out, batch)
        if head_terms is not None and n < head:
            Zh = batch.Z[: head - n]
            for key, value in head_terms(Zh).items():
                out["head_" + key] = value
            out["head_samples"] = tl.shape(Zh)[0]
        for key, value in out.items():
            totals[key] = value if key not in totals else totals[key] + value
        n += batch.size
    totals["n_samples"] = n
    totals.setdefault("head_samples", 0)
    return all_reduce_sum(totals)

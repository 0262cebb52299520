"""Sufficient statistics: sums over samples, accumulated batch by batch.

Everything the Gram solvers need from the data is one of these sums (DESIGN.md §3):

    ‖Z‖²    = Σ_i ‖Z_i‖²_F                                  "sq_norm"
    K_S(Q)  = Σ_i (Qᵀ Z_i)ᵀ (Qᵀ Z_i)          (S×S)          "K_S"  (Q = I: Σ Z_iᵀ Z_i)
    K_S2(Q) = Σ_i (Qᵀ Z_i)ᵀ QᵀQ (Qᵀ Z_i)      (S×S)          "K_S2" (a free A only)
    K_C(P)  = Σ_i (Z_i P) D (Z_i P)ᵀ           (C×C)          "K_C"  (D depends on the model)
    K_S X   = Σ_i Z_iᵀ Q Qᵀ Z_i X              (S×R)          "KX"   (K_S applied, never formed)

A pass over the data (`accumulate`) adds each batch's terms, checks them for
non-finite values, and all-reduces the totals when torch.distributed is initialised (after
the ranks agree that they are summing the same statistics). Memory is that of the
statistics plus one batch, whatever the number of samples.
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
from ._distributed import agree, all_reduce_sum, fit_header, world_size
from .data import Batch, BatchSource, describe_nonfinite

Terms = Callable[[object], dict]

# Below this many entries a product is too small to be worth splitting across threads.
PARALLEL_MIN = 2**20
_THREADS = min(os.cpu_count() or 1, 8)


def sq_norm(Z):
    """Σ_i ‖Z_i‖² of a batch, as one dot product (no temporary of the batch's size)."""
    v = tl.reshape(Z, (-1,))
    return tl.dot(v, v)


def gram(X):
    """XᵀX for a tall (n, S) matrix.

    On the numpy backend the rows are split across threads, each running single-threaded
    BLAS: BLAS parallelises a tall, thin product poorly (two threads took as long as one on
    the development machine), and the split makes it ~1.7× faster.
    """
    rows = tl.shape(X)[0]
    if tl.get_backend() != "numpy" or _THREADS < 2 or rows * tl.shape(X)[1] < PARALLEL_MIN:
        return tl.dot(tl.transpose(X), X)
    blocks = np.array_split(X, _THREADS)
    with blas_controller().limit(limits=1, user_api="blas"):
        parts = list(_pool().map(lambda x: x.T @ x, blocks))
    return sum(parts[1:], parts[0])


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_THREADS, thread_name_prefix="tensorpanda-gram")


@functools.cache
def blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def spatial_gram_terms(Q=None, AtA=None) -> Terms:
    """Per-batch terms ``"K_S"`` = Σ_i Z_iᵀ Q Qᵀ Z_i (Q = None: Q = I) and ``"sq_norm"``;
    with ``AtA`` (a free A) also ``"K_S2"`` = Σ_i Z_iᵀ Q (AᵀA) Qᵀ Z_i."""

    def terms(Z):
        n, C, S = tl.shape(Z)
        if Q is None:
            K = gram(tl.reshape(Z, (n * C, S)))
            return {"K_S": K, "sq_norm": tl.trace(K)}  # tr(Σ Z_iᵀ Z_i) = Σ‖Z_i‖²
        # the appearance coordinates Y_iᵀ = Z_iᵀ Q, (n, S, R_C), each product one GEMM
        # over the whole batch: a batched matmul is n small GEMMs, each of which waits for
        # the BLAS threads (seconds per pass on a busy machine)
        Yt = tl.tensordot(Z, Q, axes=([1], [0]))
        out = {"K_S": _sum_outer(Yt, Yt), "sq_norm": sq_norm(Z)}
        if AtA is not None:
            out["K_S2"] = _sum_outer(_times(Yt, AtA), Yt)
        return out

    return terms


def channel_gram_terms(P, D=None, second=None) -> Terms:
    """Per-batch terms ``"K_C"`` = Σ_i (Z_i P) D (Z_i P)ᵀ (D = None: the identity) and
    ``"sq_norm"``; with ``second`` also ``"K_C2"`` = Σ_i (Z_i P) second (Z_i P)ᵀ."""

    def terms(Z):
        W = _times(Z, P)  # (n, C, R_S)
        WD = W if D is None else _times(W, D)
        out = {"K_C": _sum_outer(WD, W), "sq_norm": sq_norm(Z)}
        if second is not None:
            out["K_C2"] = _sum_outer(_times(W, second), W)
        return out

    return terms


def _times(X, M):
    """X_i M for every sample of a batch X (n, a, b), as one GEMM: (n·a, b) by M (b, r)."""
    n, a, b = tl.shape(X)
    return tl.reshape(tl.dot(tl.reshape(X, (n * a, b)), M), (n, a, tl.shape(M)[1]))


def _sum_outer(X, Y):
    """Σ_i X_i Y_iᵀ for batches X, Y (n, a, r): one GEMM over the samples and columns."""
    return tl.tensordot(X, Y, axes=([0, 2], [0, 2]))


def channel_scatter(Z):
    """Σ_i Z_i Z_iᵀ of a batch (C×C): one product of the batch laid out as (C, B·S)."""
    n, C, S = tl.shape(Z)
    Zt = tl.reshape(tl.transpose(Z, (1, 0, 2)), (C, n * S))
    return gram(tl.transpose(Zt))


def product_terms(X, Q=None, AtA=None) -> Terms:
    """Per-batch terms ``"KX"`` = K_S(Q) X (and ``"K2X"`` = K_S2 X with ``AtA``) and
    ``"sq_norm"``, without forming the S×S statistics.

    Z_i is multiplied by the thin X first (with Q, opt_einsum picks the cheap order).
    """

    def terms(Z):
        if Q is None:  # Σ_i Z_iᵀ (Z_i X): two GEMMs over the whole batch
            out = {"KX": tl.tensordot(Z, _times(Z, X), axes=([0, 1], [0, 1]))}
        else:
            out = {"KX": opt_einsum.contract("bcs,cq,dq,bdt,tr->sr", Z, Q, Q, Z, X)}
            if AtA is not None:
                out["K2X"] = opt_einsum.contract("bcs,cq,qp,dp,bdt,tr->sr", Z, Q, AtA, Q, Z, X)
        out["sq_norm"] = sq_norm(Z)
        return out

    return terms


def _nonfinite_total(terms: dict) -> bool:
    # one scalar: the traces of the square statistics overflow or turn NaN whenever any
    # entry does
    value = 0.0
    for key, t in terms.items():
        if key == "sq_norm":
            value += B.scalar(t)
        elif not isinstance(t, (int, float)) and _is_square(t):
            value += B.scalar(tl.trace(t))
    return not np.isfinite(value)


def _is_square(t) -> bool:
    return tl.ndim(t) == 2 and tl.shape(t)[0] == tl.shape(t)[1]


def _check_finite(terms: dict, batch: Batch) -> None:
    if _nonfinite_total(terms):
        raise ValueError(
            f"the data contains non-finite values: {describe_nonfinite(batch)}. Remove or "
            "replace them (e.g. numpy.nan_to_num) before fitting"
        )


def accumulate(
    source: BatchSource,
    terms: Terms,
    head: int = 0,
    head_terms: Terms | None = None,
    config=None,
) -> dict:
    """One pass over ``source``: the totals of ``terms(Z)`` over all batches, all-reduced.

    ``head_terms`` are summed over the first ``head`` samples only, under the keys
    ``"head_" + key`` (the channel scatter behind the appearance basis is taken over a
    bounded number of samples). The totals also hold ``"n_samples"`` and ``"head_samples"``.

    Under torch.distributed the ranks first agree (`agree`)
    on their data's layout and dtype, on the fit's parameters when ``config`` is given (the
    first pass of a fit), and on whether every rank's pass succeeded: a rank whose pass
    failed (e.g. on NaN) still takes part, so every rank raises the same error.
    """
    if world_size() == 1:
        return _local_totals(source, terms, head, head_terms)
    error, totals = None, {}
    try:
        totals = _local_totals(source, terms, head, head_terms)
    except Exception as exc:  # the other ranks must hear of it, or they wait for this one
        error = exc
    agree(fit_header(source, config), totals, error, source.context, first=config is not None)
    totals = all_reduce_sum(totals)
    if _nonfinite_total(totals):  # the same reduced values on every rank: all raise it
        raise ValueError(
            f"the statistics summed over the {world_size()} processes overflow "
            f"{B.dtype_name(source.context)}: rescale the data or pass it as float64"
        )
    return totals


def _local_totals(
    source: BatchSource, terms: Terms, head: int, head_terms: Terms | None
) -> dict:
    """This process's pass: the totals of ``terms(Z)`` (and of ``head_terms`` over the first
    ``head`` samples), each batch checked for non-finite values."""
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
    return totals

"""Metrics on factorisations and edits."""

from __future__ import annotations

import numpy as np
import tensorly as tl

from . import _backend as B
from .data import as_source, check_finite
from .result import Factorization


def reconstruction_error(factors: Factorization, data, relative: bool = True) -> float:
    """‖Z − Ẑ‖_F over ``data``, computed sample by sample from the factors (independently of
    the statistics a solver used); relative to ‖Z‖_F by default.

    Ẑ_i is the factors' reconstruction of each sample Z_i (``factors.reconstruct``: the tied
    core A Aᵀ Z_i P Pᵀ for ``model="panda"``, free least-squares cores for ``"tucker"``).
    The data is read batch by batch, so it never has to fit in memory.

    Parameters
    ----------
    factors : Factorization
        The fitted factors, e.g. from [`tensorpanda.tucker2`][tensorpanda.tucker2].
    data : array of shape (N, C, S) or (N, C, H, W), callable or iterable of batches
        Anything [`tensorpanda.tucker2`][tensorpanda.tucker2] accepts as data, with the C channels
        and S = H·W positions the factors were fitted on.
    relative : bool, default True
        Divide by ‖Z‖_F, giving ‖Z − Ẑ‖_F / ‖Z‖_F; with ``False`` return the absolute
        ‖Z − Ẑ‖_F (its square is the objective Σ_i ‖Z_i − Ẑ_i‖²_F).

    Returns
    -------
    float
        The (relative) Frobenius norm of the residual over all samples.

    Raises
    ------
    ValueError
        If the data's channels or positions do not match those of the factors, if the
        data holds NaN or inf (the message names the sample), or if ``relative=True`` and
        the data are all zero.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> Z = np.random.default_rng(0).standard_normal((50, 6, 3, 3))
    >>> exact = tp.tucker2(Z, rank=(6, 9), model="tucker")  # full ranks, free cores
    >>> round(tp.reconstruction_error(exact, Z), 6)
    0.0
    >>> fit = tp.tucker2(Z, rank=(6, 3))  # 3 parts of 9
    >>> error = tp.reconstruction_error(fit, Z)
    >>> 0 < error < 1
    True
    >>> absolute = tp.reconstruction_error(fit, Z, relative=False)
    >>> bool(np.isclose(absolute, error * np.linalg.norm(Z)))
    True
    """
    residual, total = 0.0, 0.0
    for batch in as_source(data):
        check_finite(batch, "computing the error")
        Z = B.to_backend(batch.Z, B.context_of(factors.A))
        Zhat = tl.reshape(factors.reconstruct(Z), tl.shape(Z))
        residual += B.scalar(tl.sum((Z - Zhat) ** 2))
        total += B.scalar(tl.sum(Z * Z))
    if relative and total == 0:
        raise ValueError("the data are all zero, so the relative error is undefined: pass "
                         "relative=False for the absolute error")
    return (residual / total) ** 0.5 if relative else residual**0.5


def roir(original, edited, mask) -> np.ndarray:
    """Region-of-interest ratio of an edit, per sample (PandA, Table 1; lower is more local):

        ROIR = ‖(1 − M) ⊙ (X′ − X)‖_F / ‖M ⊙ (X′ − X)‖_F

    Parameters
    ----------
    original, edited : arrays of shape (N, C, H, W) (or (N, H, W))
        Images before and after the edit.
    mask : array of shape (H, W) or (N, H, W)
        The region meant to change (boolean or weights in [0, 1]), shared across channels.

    Returns
    -------
    numpy array of shape (N,)
        ``inf`` where the edit changed nothing inside the region but something outside,
        ``nan`` where it changed nothing at all.

    Raises
    ------
    ValueError
        If ``original`` and ``edited`` differ in shape or are not 3-d or 4-d, if the mask's
        shape is neither (H, W) nor (N, H, W), or if its values leave [0, 1].

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> X = np.zeros((1, 3, 4, 4)); M = np.zeros((4, 4)); M[:2] = 1
    >>> float(tp.roir(X, X + M, M)[0])        # the change stays inside the region
    0.0
    >>> float(tp.roir(X, X + 1.0, M)[0])      # uniform change: sqrt(outside / inside area)
    1.0
    """
    X, Xe = B.to_host(original).astype(np.float64), B.to_host(edited).astype(np.float64)
    if X.shape != Xe.shape:
        raise ValueError(f"original {X.shape} and edited {Xe.shape} images differ in shape")
    if X.ndim == 3:
        X, Xe = X[:, None], Xe[:, None]
    if X.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W), got shape {X.shape}")
    M = B.to_host(mask).astype(np.float64)
    if M.shape not in (X.shape[2:], (X.shape[0], *X.shape[2:])):
        raise ValueError(
            f"mask of shape {M.shape} does not fit images of shape {X.shape}: give (H, W) "
            "or (N, H, W)"
        )
    if M.min() < 0 or M.max() > 1:
        raise ValueError("mask values must lie in [0, 1]")
    M = M.reshape((-1, 1, *X.shape[2:])) if M.ndim == 3 else M[None, None]
    change = Xe - X
    inside = np.sqrt(np.sum((M * change) ** 2, axis=(1, 2, 3)))
    outside = np.sqrt(np.sum(((1 - M) * change) ** 2, axis=(1, 2, 3)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return outside / inside


def summarize(values) -> tuple[float, float]:
    """(mean, standard deviation) over the finite values.

    ``inf`` and ``nan`` entries (e.g. the [`roir`][tensorpanda.roir] of edits that changed nothing
    inside their region) are dropped first; the standard deviation is the population one (ddof 0).

    Parameters
    ----------
    values : array_like of float
        The values to summarise, of any shape (they are flattened by the finite filter).

    Returns
    -------
    tuple of (float, float)
        The mean and standard deviation of the finite values; ``(nan, nan)`` if there are
        none.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> tp.summarize([1.0, 3.0, np.inf])
    (2.0, 1.0)
    >>> tp.summarize([np.nan, np.inf])
    (nan, nan)
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return (float(values.mean()), float(values.std())) if values.size else (np.nan, np.nan)

"""Sample-specific parts: refinement of P on one sample with A held fixed (DESIGN.md §1).

For samples whose parts are not aligned with the data set's (a face turned aside, an object
off-centre), PandA fits a P_i ≥ 0 on Z_i alone, starting from the shared P:

    P_i = argmin_{P ≥ 0} ‖Z_i − A Aᵀ Z_i P Pᵀ‖²_F      (model="panda"),

with the same update rules and stopping rule as the main fit, on the S×S Gram of that one
sample.
"""

from __future__ import annotations

import tensorly as tl

from . import _backend as B
from .data import BatchSource, as_source
from .models import make_model
from .params import GRAM_MAX_BYTES
from .result import Factorization
from .updates import RULES


def refine(
    factors: Factorization,
    data,
    *,
    solver: str = "hals",
    max_iter: int = 200,
    tol: float = 1e-6,
):
    """Sample-specific parts P_i for each sample of ``data``, shape (N, S, R_S).

    Each P_i ≥ 0 minimises ‖Z_i − A Aᵀ Z_i P_i P_iᵀ‖²_F with A fixed (``model="panda"``;
    for ``model="tucker"`` the free-core objective ‖Z_i − A G_i P_iᵀ‖²_F with least-squares
    cores G_i), starting from the shared parts ``factors.P``. The samples are refined one
    at a time, independently.

    Parameters
    ----------
    factors : Factorization
        A fitted factorisation (A is kept fixed; its P is the starting point). Its
        ``model`` and ``appearances`` select the objective.
    data : array (N, C, S) or (N, C, H, W), or any source :func:`tucker2` accepts
        The samples to refine; C and S must match the data ``factors`` was fitted on.
        Read once, batch by batch.
    solver : {"mu", "hals", "pgd"}, default "hals"
        The update rule for P_i (as in :func:`tucker2`): ``hals`` column-wise updates,
        ``mu`` multiplicative updates, ``pgd`` projected gradient.
    max_iter : int, default 200
        Most updates per sample (a positive integer).
    tol : float, default 1e-6
        Stop a sample when an update lowers its objective by at most ``tol · ‖Z_i‖²``.

    Returns
    -------
    tensor of shape (N, S, R_S)
        P_i ≥ 0 for each sample, in the order of ``data``, on the backend of ``factors``.
        ``P_i.T`` reshaped to (R_S, H, W) gives the sample's part maps.

    Raises
    ------
    ValueError
        If ``solver`` is not one of "mu", "hals", "pgd", if ``max_iter`` is not a positive
        integer, or if the data's channels or positions do not match ``factors``.
    TypeError
        If ``data`` is not an array, a callable or an iterable of batches.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> Z = np.random.default_rng(0).random((40, 6, 4, 4))
    >>> fit = tp.tucker2(Z, rank=(None, 3), tol=1e-4, random_state=0)
    >>> P_i = tp.refine(fit, Z[:2], tol=1e-4)
    >>> P_i.shape, bool((P_i >= 0).all())
    ((2, 16, 3), True)
    """
    if solver not in RULES:
        raise ValueError(f"unknown solver {solver!r} for refine; choose one of {RULES}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter <= 0:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    model = make_model(factors.model, factors.appearances, solver)
    ctx = B.context_of(factors.P)
    refined = []
    for batch in as_source(data):
        factors._check_layout(batch.Z)
        for i in range(batch.size):
            Z_i = B.to_backend(batch.Z[i : i + 1], ctx)
            sample = BatchSource(Z_i)
            S = tl.shape(Z_i)[2]
            streamed = S * S * tl.to_numpy(Z_i[:1, :1, :1]).itemsize > GRAM_MAX_BYTES
            op = model.parts_operator(sample, factors.A, streamed)
            const = B.scalar(tl.sum(Z_i * Z_i))
            step = model.parts_step(op, factors.P, const, max_iter, tol * const)
            refined.append(step.X)
    return tl.stack(refined)

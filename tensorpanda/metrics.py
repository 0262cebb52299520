"""Metrics on factorisations and edits."""

from __future__ import annotations

import tensorly as tl

from . import _backend as B
from .data import as_source
from .result import Factorization


def reconstruction_error(factors: Factorization, data, relative: bool = True) -> float:
    """‖Z − Ẑ‖_F over ``data``, computed sample by sample from the factors (independently of
    the statistics a solver used); relative to ‖Z‖_F by default.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> Z = np.random.default_rng(0).standard_normal((50, 6, 3, 3))
    >>> fit = tp.tucker2(Z, rank=(6, 9))          # every position its own part
    >>> round(tp.reconstruction_error(fit, Z), 6)
    0.0
    """
    residual, total = 0.0, 0.0
    for batch in as_source(data):
        Z = B.to_backend(batch.Z, B.context_of(factors.A))
        Zhat = tl.reshape(factors.reconstruct(Z), tl.shape(Z))
        residual += B.scalar(tl.sum((Z - Zhat) ** 2))
        total += B.scalar(tl.sum(Z * Z))
    return (residual / total) ** 0.5 if relative else residual**0.5

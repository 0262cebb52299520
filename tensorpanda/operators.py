"""Symmetric statistics seen through their action on thin matrices.

The factor updates only ever need ``K X`` for a thin X (S×R or C×R). When K fits in memory it
is held (:class:`MatrixOperator`, one matrix product per application); when S² does not fit,
``K X = Σ_i Z_iᵀ Q Qᵀ Z_i X`` is computed by a pass over the data (:class:`StreamedOperator`).
The update rules cannot tell the two apart.

PandA's objective with a free (non-orthonormal) A needs two statistics, K1 and K2; an
operator then returns both products. For an orthonormal A they coincide and ``second`` is the
same object as ``first``.
"""

from __future__ import annotations

import tensorly as tl

from .data import BatchSource
from .statistics import apply_terms, sweep


class MatrixOperator:
    """K1 (and K2) held as matrices."""

    streamed = False

    def __init__(self, K1, K2=None):
        self.K1 = K1
        self.K2 = K1 if K2 is None else K2
        self.shared = K2 is None

    def apply(self, X):
        """(K1 X, K2 X)."""
        K1X = tl.dot(self.K1, X)
        return K1X, (K1X if self.shared else tl.dot(self.K2, X))


class StreamedOperator:
    """K1 = Σ_i Z_iᵀ Q Qᵀ Z_i, and with ``AtA`` K2 = Σ_i Z_iᵀ Q (AᵀA) Qᵀ Z_i, applied to thin
    matrices by one pass over the data each time (``Q=None`` means Q = I)."""

    streamed = True

    def __init__(self, source: BatchSource, Q=None, AtA=None):
        self.source, self.Q, self.AtA = source, Q, AtA
        self.shared = AtA is None

    def apply(self, X):
        totals = sweep(self.source, apply_terms(X, self.Q, self.AtA))
        K1X = totals["K"]
        return K1X, (K1X if self.shared else totals["K2"])

"""Symmetric statistics seen through their action on thin matrices.

The factor updates only ever need ``K X`` for a thin X (S×R or C×R). When K fits in memory it
is held (`MatrixOperator`, one matrix product per application); when S² does not fit,
``K X = Σ_i Z_iᵀ Q Qᵀ Z_i X`` is computed by a pass over the data (`StreamedOperator`).
The update rules cannot tell the two apart.

PandA's objective with a free (non-orthonormal) A needs two statistics, K1 and K2; an
operator then returns both products. For an orthonormal A they coincide (``shared``) and
one product serves as both.
"""

from __future__ import annotations

import tensorly as tl

from .data import BatchSource
from .statistics import accumulate, product_terms


class MatrixOperator:
    """K1 (and K2; None means K2 = K1) held as matrices: one product per statistic."""

    streamed = False

    def __init__(self, K1, K2=None):
        self.K1 = K1
        self.K2 = K1 if K2 is None else K2
        self.shared = K2 is None

    def products(self, X):
        """(K1 X, K2 X); the same object twice when K2 is K1."""
        K1X = tl.dot(self.K1, X)
        return K1X, (K1X if self.shared else tl.dot(self.K2, X))


class StreamedOperator:
    """K1 = Σ_i Z_iᵀ Q Qᵀ Z_i (Q = None: Q = I), and with ``AtA`` K2 = Σ_i Z_iᵀ Q (AᵀA) Qᵀ Z_i,
    applied by one pass over the data each time; the S×S statistics are never formed."""

    streamed = True

    def __init__(self, source: BatchSource, Q=None, AtA=None):
        self.source, self.Q, self.AtA = source, Q, AtA
        self.shared = AtA is None

    def products(self, X):
        """(K1 X, K2 X) by one pass over the data."""
        totals = accumulate(self.source, product_terms(X, self.Q, self.AtA))
        K1X = totals["KX"]
        return K1X, (K1X if self.shared else totals["K2X"])


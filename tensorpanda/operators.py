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
    """K1 (and K2) held as matrices.

    Each application costs one matrix product per statistic (one when K2 is K1).

    Parameters
    ----------
    K1 : tensor of shape (S, S) or (C, C)
        The first symmetric statistic, K1 = Σ_i Z_iᵀ A Aᵀ Z_i (or its C×C counterpart).
    K2 : tensor of the same shape as ``K1``, optional
        The second statistic, K2 = Σ_i Z_iᵀ A (AᵀA) Aᵀ Z_i, for a free A. None (the
        default) means K2 = K1 (an orthonormal A).

    Attributes
    ----------
    K1, K2 : tensor
        The statistics (``K2`` is ``K1`` itself when none was given).
    shared : bool
        True when K2 is K1: :meth:`apply` then computes one product and returns it twice.
    streamed : bool
        False: the statistics are held in memory.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.operators import MatrixOperator
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.standard_normal((6, 4))
    >>> op = MatrixOperator(Y.T @ Y)
    >>> K1X, K2X = op.apply(rng.random((4, 2)))
    >>> K1X.shape, op.shared, K2X is K1X
    ((4, 2), True, True)
    """

    streamed = False

    def __init__(self, K1, K2=None):
        self.K1 = K1
        self.K2 = K1 if K2 is None else K2
        self.shared = K2 is None

    def apply(self, X):
        """(K1 X, K2 X).

        Parameters
        ----------
        X : tensor of shape (S, R)
            A thin matrix (with as many rows as K1 has columns).

        Returns
        -------
        K1X, K2X : tensor of shape (S, R)
            The two products; the same object twice when :attr:`shared`.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.operators import MatrixOperator
        >>> rng = np.random.default_rng(0)
        >>> K1, K2, X = np.eye(3), 2 * np.eye(3), rng.random((3, 2))
        >>> K1X, K2X = MatrixOperator(K1, K2).apply(X)
        >>> bool(np.allclose(K1X, X)), bool(np.allclose(K2X, 2 * X))
        (True, True)
        """
        K1X = tl.dot(self.K1, X)
        return K1X, (K1X if self.shared else tl.dot(self.K2, X))


class StreamedOperator:
    """K1 = Σ_i Z_iᵀ Q Qᵀ Z_i, and with ``AtA`` K2 = Σ_i Z_iᵀ Q (AᵀA) Qᵀ Z_i, applied to thin
    matrices by one pass over the data each time (``Q=None`` means Q = I).

    The S×S statistics are never formed: memory is that of one batch plus the S×R products.

    Parameters
    ----------
    source : BatchSource
        The data, read once per application (it must be re-iterable to be applied twice).
    Q : tensor of shape (C, R_C), optional
        The appearances A; None (the default) means Q = I.
    AtA : tensor of shape (R_C, R_C), optional
        AᵀA, for a free A: K2 is then a second statistic. None (the default) means K2 = K1.
        Needs ``Q``.

    Attributes
    ----------
    source : BatchSource
        The data.
    Q, AtA : tensor or None
        As given.
    shared : bool
        True when K2 is K1 (no ``AtA``).
    streamed : bool
        True: each application is a pass over the data.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import BatchSource
    >>> from tensorpanda.operators import StreamedOperator
    >>> rng = np.random.default_rng(0)
    >>> Z, A, X = rng.standard_normal((5, 3, 4)), rng.standard_normal((3, 2)), rng.random((4, 2))
    >>> op = StreamedOperator(BatchSource(Z, batch_size=2), Q=A)
    >>> K1X, _ = op.apply(X)
    >>> K = sum(z.T @ A @ A.T @ z for z in Z)  # the 4×4 K1 that is never formed
    >>> K1X.shape, bool(np.allclose(K1X, K @ X))
    ((4, 2), True)
    """

    streamed = True

    def __init__(self, source: BatchSource, Q=None, AtA=None):
        self.source, self.Q, self.AtA = source, Q, AtA
        self.shared = AtA is None

    def apply(self, X):
        """(K1 X, K2 X), computed by one pass over the data.

        Parameters
        ----------
        X : tensor of shape (S, R)
            A thin matrix, S being the number of spatial positions.

        Returns
        -------
        K1X, K2X : tensor of shape (S, R)
            The two products; the same object twice when :attr:`shared`.

        Raises
        ------
        ValueError
            If the data contains non-finite values, or cannot be read again (see
            :func:`~tensorpanda.statistics.sweep`).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.data import BatchSource
        >>> from tensorpanda.operators import StreamedOperator
        >>> rng = np.random.default_rng(0)
        >>> Z, A = rng.standard_normal((5, 3, 4)), rng.standard_normal((3, 2))
        >>> X = rng.random((4, 2))
        >>> op = StreamedOperator(BatchSource(Z), Q=A, AtA=A.T @ A)
        >>> K1X, K2X = op.apply(X)
        >>> K2 = sum(z.T @ A @ A.T @ A @ A.T @ z for z in Z)
        >>> op.shared, bool(np.allclose(K2X, K2 @ X))
        (False, True)
        """
        totals = sweep(self.source, apply_terms(X, self.Q, self.AtA))
        K1X = totals["K"]
        return K1X, (K1X if self.shared else totals["K2"])

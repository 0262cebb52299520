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
    """Non-negative columns from eigenvectors (host arrays), as described in the module.

    With ``method="svd"`` each column is the magnitude ``|u|`` of its eigenvector, scaled to
    unit norm. Any other method follows NNDSVD: each column keeps the larger (in norm) of its
    positive part ``max(u, 0)`` and negative part ``max(−u, 0)``, scaled to unit norm, and
    its zeros are filled with a hundredth of the mean positive entry, so that multiplicative
    updates can still move them.

    Parameters
    ----------
    U : numpy.ndarray
        Eigenvectors as columns, shape (n, R) (a numpy array on the host, not a backend
        tensor).
    method : str
        ``"svd"`` for magnitudes; ``"nndsvd"`` for the larger signed part.

    Returns
    -------
    numpy.ndarray
        A non-negative array of the shape of ``U``. Its columns have unit norm with
        ``"svd"``; with ``"nndsvd"`` they have unit norm before the zeros are filled, and
        every entry is positive.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.init import nonneg_from_eigenvectors
    >>> U = np.array([[0.6, 0.8], [-0.8, 0.6]])   # orthonormal, signs mixed in column 0
    >>> nonneg_from_eigenvectors(U, "svd")
    array([[0.6, 0.8],
           [0.8, 0.6]])
    >>> nonneg_from_eigenvectors(U, "nndsvd")     # column 0 keeps its negative part
    array([[0.008, 0.8  ],
           [1.   , 0.6  ]])
    """
    if method == "svd":
        return _unit_columns(np.abs(U))
    pos, neg = np.maximum(U, 0), np.maximum(-U, 0)
    X = np.where(np.linalg.norm(pos, axis=0) >= np.linalg.norm(neg, axis=0), pos, neg)
    X = _unit_columns(X)
    fill = X[X > 0].mean() / 100 if (X > 0).any() else 1.0 / np.sqrt(X.shape[0])
    return np.where(X > 0, X, fill)


def random_nonneg(shape: tuple, rng: np.random.RandomState) -> np.ndarray:
    """A random non-negative factor: entries uniform on [0, 1), columns scaled to unit norm.

    Parameters
    ----------
    shape : tuple of int
        The factor's shape (n, R).
    rng : numpy.random.RandomState or numpy.random.Generator
        Source of the random entries (its ``uniform`` method is called once).

    Returns
    -------
    numpy.ndarray
        A float64 host array of shape ``shape``, non-negative, with columns of unit norm.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.init import random_nonneg
    >>> P = random_nonneg((5, 3), np.random.default_rng(0))
    >>> P.shape, bool((P >= 0).all())
    ((5, 3), True)
    >>> np.linalg.norm(P, axis=0).round(6)
    array([1., 1., 1.])
    """
    return _unit_columns(rng.uniform(size=shape))


def random_orthonormal(shape: tuple, rng: np.random.RandomState) -> np.ndarray:
    """A random factor with orthonormal columns: the Q of a Gaussian matrix's QR.

    The columns are flipped so that R has a positive diagonal, which makes Q uniformly
    distributed (Haar) over the matrices with orthonormal columns.

    Parameters
    ----------
    shape : tuple of int
        The factor's shape (n, R), with n ≥ R (for n < R the result has only n columns).
    rng : numpy.random.RandomState or numpy.random.Generator
        Source of the Gaussian entries (its ``standard_normal`` method is called once).

    Returns
    -------
    numpy.ndarray
        A float64 host array Q of shape ``shape`` with QᵀQ = I.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.init import random_orthonormal
    >>> A = random_orthonormal((5, 3), np.random.default_rng(0))
    >>> A.shape, np.allclose(A.T @ A, np.eye(3))
    ((5, 3), True)
    """
    Q, R = np.linalg.qr(rng.standard_normal(shape))
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


def parts_from_gram(method: str, K, shape: tuple, rng, context: dict):
    """Initial P (S×R_S): from the top eigenvectors of the spatial Gram, or random.

    ``K`` is the S×S Gram as a matrix, an operator with ``apply`` (streamed statistics: the
    eigenvectors then come from a randomized subspace iteration, a few passes), or None.

    With ``method="svd"`` or ``"nndsvd"`` the top R_S eigenvectors of K are made
    non-negative by :func:`nonneg_from_eigenvectors`; with ``"random"`` (or ``K=None``) P is
    :func:`random_nonneg`.

    Parameters
    ----------
    method : str
        ``"svd"``, ``"nndsvd"`` or ``"random"`` (see the module docstring).
    K : tensor, operator or None
        The spatial Gram Σ Z_iᵀ Z_i (or Σ Z_iᵀ A Aᵀ Z_i): an S×S backend tensor, an object
        whose ``apply(X)`` returns ``(K X, ...)`` (such as
        :class:`~tensorpanda.operators.StreamedOperator`), or None for a random P.
    shape : tuple of int
        The shape (S, R_S) of P.
    rng : numpy.random.RandomState or numpy.random.Generator
        Source of randomness, used for a random P and for the subspace iteration on an
        operator.
    context : dict
        The backend context of the result (``{"dtype": ...}``, and ``"device"`` on
        pytorch), as :attr:`tensorpanda.data.BatchSource.context`.

    Returns
    -------
    tensor
        P, a non-negative S×R_S tensor of the active backend in ``context``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.init import parts_from_gram
    >>> from tensorpanda.operators import MatrixOperator
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((20, 4, 6))                 # N = 20 samples, C = 4, S = 6
    >>> K = np.einsum("ncs,nct->st", Z, Z)                  # spatial Gram Σ Z_iᵀ Z_i
    >>> P = parts_from_gram("svd", K, (6, 2), rng, {"dtype": np.float64})
    >>> P.shape, bool((P >= 0).all()), np.linalg.norm(P, axis=0).round(6)
    ((6, 2), True, array([1., 1.]))
    >>> P_op = parts_from_gram("svd", MatrixOperator(K), (6, 2), rng, {"dtype": np.float64})
    >>> np.allclose(P, P_op)                                # K only through its products
    True
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

    The subspace holds ``min(n, rank + 8)`` columns (oversampling). Each eigenvector's sign
    is fixed so that its entry of largest magnitude is positive. For a matrix K only ``K``
    and ``rank`` are used.

    Parameters
    ----------
    K : tensor or operator
        A symmetric positive semi-definite n×n backend tensor, or an object whose
        ``apply(X)`` returns ``(K X, ...)`` for a thin n×m tensor X.
    n : int
        The size of K.
    rank : int
        How many eigenvectors to return.
    rng : numpy.random.RandomState or numpy.random.Generator
        Source of the random start of the subspace iteration.
    context : dict
        The backend context (dtype, device) of the random start.
    power_iterations : int, default 2
        Extra applications of K that sharpen the subspace (operator only).

    Returns
    -------
    tensor
        An n×rank backend tensor with orthonormal columns: the eigenvectors of the ``rank``
        largest eigenvalues, in decreasing order of eigenvalue.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.init import top_eigenvectors
    >>> from tensorpanda.operators import MatrixOperator
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.standard_normal((20, 6)); K = Y.T @ Y
    >>> U = top_eigenvectors(K, 6, 2, rng, {"dtype": np.float64})
    >>> U.shape, np.allclose(K @ U, U * np.linalg.eigvalsh(K)[::-1][:2])   # K U = U Λ
    ((6, 2), True)
    >>> V = top_eigenvectors(MatrixOperator(K), 6, 2, rng, {"dtype": np.float64})
    >>> np.allclose(U, V)                          # the subspace iteration agrees
    True
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
    """Initial A (C×R_C) from the channel scatter (or random when ``scatter`` is None).

    A is the top R_C eigenvectors of the scatter Σ Z_i Z_iᵀ (the HOSVD start); for a
    non-negative A they are made non-negative by :func:`nonneg_from_eigenvectors`. With
    ``method="random"`` (or ``scatter=None``) A is :func:`random_nonneg` or
    :func:`random_orthonormal`.

    Parameters
    ----------
    method : str
        ``"svd"``, ``"nndsvd"`` or ``"random"`` (see the module docstring; ``"svd"`` and
        ``"nndsvd"`` differ only for a non-negative A).
    scatter : tensor or None
        The C×C channel scatter Σ Z_i Z_iᵀ as a backend tensor, or None for a random A.
    shape : tuple of int
        The shape (C, R_C) of A.
    nonneg : bool
        True for a non-negative A (``appearances="nonnegative"``), False for orthonormal
        columns.
    rng : numpy.random.RandomState or numpy.random.Generator
        Source of randomness for a random A.
    context : dict
        The backend context (dtype, device) of a random or non-negative A.

    Returns
    -------
    tensor
        A, a C×R_C backend tensor: orthonormal columns when ``nonneg`` is False,
        non-negative columns of unit norm otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.init import appearances_from_scatter
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((20, 4, 6))
    >>> scatter = np.einsum("ncs,nds->cd", Z, Z)            # Σ Z_i Z_iᵀ, C×C
    >>> ctx = {"dtype": np.float64}
    >>> A = appearances_from_scatter("svd", scatter, (4, 2), False, rng, ctx)
    >>> A.shape, np.allclose(A.T @ A, np.eye(2))
    ((4, 2), True)
    >>> A = appearances_from_scatter("nndsvd", scatter, (4, 2), True, rng, ctx)
    >>> bool((A >= 0).all())
    True
    """
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
    """Validate a user-given initial factor and move it into the solver's context.

    Parameters
    ----------
    name : str
        ``"A"`` or ``"P"``: the factor's name in error messages.
    X : array-like
        The user's factor (numpy, torch, jax or TensorLy array).
    shape : tuple of int
        The expected shape: (C, R_C) for A, (S, R_S) for P.
    nonneg : bool
        Whether the factor must be non-negative.
    context : dict
        The backend context (dtype, device) of the result.
    orthonormal : bool, default False
        Whether the columns must be orthonormal (``max |XᵀX − I| ≤ 1e-4``).

    Returns
    -------
    tensor
        ``X`` as a backend tensor of the dtype and device in ``context``.

    Raises
    ------
    ValueError
        If ``X`` is not 2-D of shape ``shape``, holds NaN or inf, has negative entries
        while ``nonneg`` is True, or is not orthonormal while ``orthonormal`` is True.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.init import check_user_factor
    >>> P = np.abs(np.random.default_rng(0).standard_normal((6, 2)))
    >>> check_user_factor("P", P, (6, 2), True, {"dtype": np.float32}).dtype
    dtype('float32')
    >>> check_user_factor("P", -P, (6, 2), True, {"dtype": np.float32})
    Traceback (most recent call last):
        ...
    ValueError: the initial P has negative entries but must be non-negative: ...
    """
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

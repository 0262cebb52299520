"""Update rules for one factor while the statistics of the other are held fixed.

Three families, each a function ``(operator, X, ...) -> Step``:

- :func:`tied_steps` — PandA's tied-core objective in P (or in a free A),
  ``f(X) = c − 2 tr(Xᵀ K1 X) + tr(Xᵀ K2 X XᵀX)``, a quartic. Rules ``mu``, ``hals`` and
  ``pgd`` each propose a direction; an exact line search on the quartic
  (:mod:`tensorpanda.quartic`) picks the step, so no rule can increase the objective.
- :func:`subspace_steps` — classic Tucker-2 with least-squares cores,
  ``f(X) = c − tr(K Π_X)``, ``Π_X`` the projector onto the columns of X ≥ 0. Each step fixes
  the cores, takes one non-negative least-squares update of X (``mu``: the semi-NMF rule of
  Ding, Li & Jordan; ``hals``: exact column updates; ``pgd``: step 1/L), then re-fits the
  cores. Each of the three decreases the objective, so these need no line search.
- :func:`eigen_step` — the exact A-step for an orthonormal A: the top eigenvectors.

Every application of the operator is one matrix product (held statistics) or one pass over
the data (streamed statistics).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorly as tl

from . import _backend as B
from . import quartic

RULES = ("mu", "hals", "pgd")

# Largest multiple of a rule's own step that the line search may try: the exact search makes
# a longer step safe, and multiplicative updates often under-step by a large factor.
EXTRAPOLATION = 16.0


@dataclass
class Step:
    """A factor after some updates, the objective there, and how many updates were taken.

    Attributes
    ----------
    X : tensor
        The updated factor (P, or A), a backend tensor.
    objective : float
        The objective f at ``X`` with the other factor's statistics held fixed.
    n_updates : int
        How many updates were taken (0 when ``max_steps`` was 0).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.updates import eigen_step
    >>> step = eigen_step(np.diag([3.0, 2.0, 1.0]), 2, 10.0)   # returns a Step
    >>> step.X.shape, step.objective, step.n_updates
    ((3, 2), 5.0, 1)
    """

    X: object
    objective: float
    n_updates: int


def _eps(X) -> float:
    return float(np.finfo(tl.to_numpy(X[:1, :1]).dtype).eps)


def _safe_divide(num, den, X):
    """num / den elementwise, with den floored at eps·max(den) (no 0/0, no inf)."""
    floor = _eps(X) * max(B.scalar(tl.max(den)), np.finfo(np.float32).tiny)
    return num / tl.clip(den, floor, None)


def _keep_columns_alive(Y, X):
    """Replace each all-zero column of the proposal Y by a small constant column.

    A zero column of P is a stationary point of every first-order rule (its gradient is zero
    too), so a part that reached zero could never come back. A small column keeps the part
    alive; rules that are invariant to its scale (hals) regrow it in one step if it helps.
    """
    alive = tl.max(Y, axis=0) > 0
    floor = 1e-3 * B.scalar(tl.mean(X)) + float(np.finfo(np.float32).tiny)
    return tl.where(tl.reshape(alive, (1, -1)), Y, tl.zeros_like(Y) + floor)


def _column(X, k: int, column):
    """X with its column k replaced (functional: also works on immutable jax arrays)."""
    R = tl.shape(X)[1]
    e = B.tensor(np.eye(R)[k], B.context_of(X))
    return X + (tl.reshape(column, (-1, 1)) - X[:, k : k + 1]) * tl.reshape(e, (1, -1))


# -- PandA: the tied-core quartic --------------------------------------------------------------
def tied_gradient(X, K1X, K2X):
    """∇f = −4 K1 X + 2 K2 X (XᵀX) + 2 X (Xᵀ K2 X).

    The gradient of the tied quartic f(X) = c − 2 tr(Xᵀ K1 X) + tr(Xᵀ K2 X XᵀX) for
    symmetric K1, K2, from the products K1 X and K2 X (no further application of K).

    Parameters
    ----------
    X : tensor
        The factor, n×R.
    K1X : tensor
        K1 X, n×R.
    K2X : tensor
        K2 X, n×R (the same as ``K1X`` when K1 = K2, i.e. for an orthonormal A).

    Returns
    -------
    tensor
        ∇f(X), n×R.

    Examples
    --------
    The gradient agrees with a finite difference of the objective along a direction D:

    >>> import numpy as np
    >>> from tensorpanda.updates import tied_gradient
    >>> from tensorpanda.quartic import objective
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.standard_normal((20, 5)); K = Y.T @ Y             # K1 = K2 = K
    >>> X = rng.uniform(size=(5, 2)); D = rng.standard_normal((5, 2))
    >>> G = tied_gradient(X, K @ X, K @ X)
    >>> f = lambda X: objective(X, K @ X, K @ X, 0.0)
    >>> h = 1e-6
    >>> bool(np.isclose((f(X + h * D) - f(X - h * D)) / (2 * h), np.sum(G * D)))
    True
    """
    H = tl.dot(tl.transpose(X), X)
    G = tl.dot(tl.transpose(X), K2X)
    return -4 * K1X + 2 * tl.dot(K2X, H) + 2 * tl.dot(X, G)


def _mu_proposal(X, K1X, K2X):
    """X ⊙ ∇⁻/∇⁺, the gradient split into non-negative parts products-wise (semi-NMF style):
    ∇⁺ = 4[K1X]⁻ + 2[K2X]⁺XᵀX + 2X[XᵀK2X]⁺ and ∇⁻ = 4[K1X]⁺ + 2[K2X]⁻XᵀX + 2X[XᵀK2X]⁻.
    Its fixed points with X > 0 are exactly the stationary points."""
    H = tl.dot(tl.transpose(X), X)
    G = tl.dot(tl.transpose(X), K2X)
    pos, neg = B.positive_part, B.negative_part
    grad_neg = 4 * pos(K1X) + 2 * tl.dot(neg(K2X), H) + 2 * tl.dot(X, neg(G))
    grad_pos = 4 * neg(K1X) + 2 * tl.dot(pos(K2X), H) + 2 * tl.dot(X, pos(G))
    return X * _safe_divide(grad_neg, grad_pos, X)


def _line_step(op, X, D, K1X, K2X, const, t_max, column: int | None = None, nonneg=True):
    """Move X along D by the exact minimiser of the quartic on [0, t_max].

    K·(X + D) is computed once; K·D then follows by linearity, which is what makes the exact
    search cost no extra pass when the statistics are streamed. With ``column`` only that
    column of D is non-zero, and K is applied to that column alone.
    """
    if column is None:
        K1Y, K2Y = op.apply(X + D)
        K1D = K1Y - K1X
        K2D = K1D if K2X is K1X else K2Y - K2X
    else:
        k = column
        K1y, K2y = op.apply(X[:, k : k + 1] + D[:, k : k + 1])
        zeros = tl.zeros_like(X)
        K1D = _column(zeros, k, K1y[:, 0] - K1X[:, k])
        K2D = K1D if K2X is K1X else _column(zeros, k, K2y[:, 0] - K2X[:, k])
    coeffs = quartic.coefficients(X, D, K1X, K1D, K2X, K2D, const)
    t, value = quartic.minimize(coeffs, t_max)
    if t == 0.0:
        return X, K1X, K2X, value, t
    K1X = K1X + t * K1D
    K2X = K1X if K2D is K1D else K2X + t * K2D
    X = X + t * D
    # at the feasible boundary x + t·d may round to -1e-18: keep the constraint exact
    return (tl.clip(X, 0, None) if nonneg else X), K1X, K2X, value, t


def tied_steps(op, X, rule: str, const: float, max_steps: int, tol: float, nonneg: bool = True):
    """Up to ``max_steps`` updates of X on the tied quartic; stop when a step lowers the
    objective by at most ``tol`` (absolute). ``nonneg=False`` (a free A) takes gradient
    steps whatever the rule.

    The objective is f(X) = c − 2 tr(Xᵀ K1 X) + tr(Xᵀ K2 X XᵀX). Each update proposes a
    direction by ``rule`` (``mu``: multiplicative, ``X ⊙ ∇⁻f / ∇⁺f``; ``hals``: the
    least-squares target of each column in turn; ``pgd``: projected gradient with an adapted
    step) and moves along it by the exact minimiser of the quartic on the feasible segment
    (:mod:`tensorpanda.quartic`), so f never increases and X stays non-negative.

    Parameters
    ----------
    op : MatrixOperator or StreamedOperator
        The statistics: ``op.apply(X)`` returns ``(K1 X, K2 X)``.
    X : tensor
        The starting factor, n×R (non-negative when ``nonneg``).
    rule : str
        ``"mu"``, ``"hals"`` or ``"pgd"`` (ignored when ``nonneg`` is False).
    const : float
        The constant c of f (Σ‖Z_i‖²).
    max_steps : int
        Most updates.
    tol : float
        Stop after an update that lowers f by at most ``tol`` (absolute).
    nonneg : bool, default True
        Keep X ≥ 0 (P); False for a free A, updated by gradient steps.

    Returns
    -------
    Step
        The updated X, f there and the number of updates taken.

    Raises
    ------
    ValueError
        If ``nonneg`` is True and ``rule`` is not one of :data:`RULES` (when at least one
        update is asked for).

    Examples
    --------
    With A = I (R_C = C), K = Σ Z_iᵀ Z_i and f(P) = Σ‖Z_i − Z_i P Pᵀ‖²:

    >>> import numpy as np
    >>> from tensorpanda.updates import tied_steps
    >>> from tensorpanda.operators import MatrixOperator
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((30, 4, 6)); P = rng.uniform(size=(6, 2))
    >>> op, c = MatrixOperator(np.einsum("ncs,nct->st", Z, Z)), float((Z ** 2).sum())
    >>> f = lambda P: float(((Z - Z @ P @ P.T) ** 2).sum())
    >>> steps = [tied_steps(op, P, rule, c, 10, 0.0) for rule in ("mu", "hals", "pgd")]
    >>> [bool(s.objective < f(P) and (s.X >= 0).all()) for s in steps]   # lower f, P ≥ 0
    [True, True, True]
    >>> bool(np.isclose(steps[1].objective, f(steps[1].X)))
    True
    """
    K1X, K2X = op.apply(X)
    value = quartic.objective(X, K1X, K2X, const)
    step_size = None  # pgd's step, adapted from one update to the next
    n_updates = 0
    while n_updates < max_steps:
        n_updates += 1
        previous = value
        if not nonneg:
            D = -tied_gradient(X, K1X, K2X)
            X, K1X, K2X, value, _ = _line_step(op, X, D, K1X, K2X, const, np.inf, nonneg=False)
        elif rule == "mu":
            D = _keep_columns_alive(_mu_proposal(X, K1X, K2X), X) - X
            # stop short of the boundary: an entry at exactly zero is locked there under a
            # multiplicative rule
            t_max = quartic.feasible_step(X, D, EXTRAPOLATION, margin=1e-3)
            X, K1X, K2X, value, _ = _line_step(op, X, D, K1X, K2X, const, t_max)
        elif rule == "pgd":
            X, K1X, K2X, value, step_size = _pgd_step(op, X, K1X, K2X, const, step_size)
        elif rule == "hals":
            X, K1X, K2X, value = _hals_sweep(op, X, K1X, K2X, const)
        else:  # validated upstream; kept for readers of this function alone
            raise ValueError(f"unknown rule {rule!r}; choose one of {RULES}")
        if previous - value <= tol:
            break
    return Step(X=X, objective=value, n_updates=n_updates)


def _pgd_step(op, X, K1X, K2X, const, step_size):
    """Projected gradient: X ← max(0, X − η∇f), then the exact search on that segment.

    η starts at 1/L for a local estimate L = 4‖K1‖ + 6‖K2‖‖X‖² of the gradient's Lipschitz
    constant (‖K‖ read off ‖KX‖/‖X‖) and adapts: doubled when the search takes the whole
    segment, halved when it takes less than a tenth of it. Nothing to tune.
    """
    grad = tied_gradient(X, K1X, K2X)
    if step_size is None:
        x_norm = max(B.scalar(tl.norm(X)), 1e-30)
        k1 = B.scalar(tl.norm(K1X)) / x_norm
        k2 = B.scalar(tl.norm(K2X)) / x_norm
        step_size = 1.0 / max(4 * k1 + 6 * k2 * x_norm**2, 1e-30)
    D = _keep_columns_alive(tl.clip(X - step_size * grad, 0, None), X) - X
    t_max = quartic.feasible_step(X, D, EXTRAPOLATION)
    X, K1X, K2X, value, t = _line_step(op, X, D, K1X, K2X, const, t_max)
    if t >= 0.999:
        step_size *= 2.0
    elif t < 0.1:
        step_size /= 2.0
    return X, K1X, K2X, value, step_size


def _hals_sweep(op, X, K1X, K2X, const):
    """One pass over the columns of X. For column k, with the other columns and the tied core
    column Z_i x_k held fixed, the least-squares optimum is

        x_k ← [(K1 − N_k K2) x_k]⁺ / (x_kᵀ K2 x_k),   N_k = Σ_{j≠k} x_j x_jᵀ,

    and the exact search on the quartic moves x_k toward it."""
    value = quartic.objective(X, K1X, K2X, const)
    R = tl.shape(X)[1]
    for k in range(R):
        G = tl.dot(tl.transpose(X), K2X)  # Xᵀ K2 X, refreshed after each column
        g_kk = B.scalar(G[k, k])
        if g_kk <= 0:
            continue  # a zero column: nothing to scale against
        x = X[:, k]
        N_K2x = tl.dot(X, G[:, k]) - x * g_kk
        target = tl.clip((K1X[:, k] - N_K2x) / g_kk, 0, None)
        target = _keep_columns_alive(tl.reshape(target, (-1, 1)), X)[:, 0]
        D = _column(tl.zeros_like(X), k, target - x)
        t_max = quartic.feasible_step(X, D, EXTRAPOLATION)
        X, K1X, K2X, value, _ = _line_step(op, X, D, K1X, K2X, const, t_max, column=k)
    return X, K1X, K2X, value


# -- Tucker-2 with least-squares cores ---------------------------------------------------------
def subspace_objective(X, KX, const: float) -> float:
    """f(X) = c − tr(K Π_X) = c − tr((XᵀX)⁺ Xᵀ K X).

    Tucker-2's objective with the cores at their least-squares optimum; it depends only on
    the column space of X.

    Parameters
    ----------
    X : tensor
        The factor, n×R.
    KX : tensor
        K X, n×R.
    const : float
        The constant c (Σ‖Z_i‖²).

    Returns
    -------
    float
        f(X).

    Examples
    --------
    With K = Σ Z_iᵀ Z_i, f is the residual of projecting each Z_i onto X's columns:

    >>> import numpy as np
    >>> from tensorpanda.updates import subspace_objective
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((30, 4, 6)); X = rng.uniform(size=(6, 2))
    >>> K, c = np.einsum("ncs,nct->st", Z, Z), float((Z ** 2).sum())
    >>> value = subspace_objective(X, K @ X, c)
    >>> bool(np.isclose(value, ((Z - Z @ X @ np.linalg.pinv(X)) ** 2).sum()))
    True
    >>> bool(np.isclose(value, subspace_objective(3 * X, K @ (3 * X), c)))   # scale-free
    True
    """
    inv = B.psd_pinv(tl.dot(tl.transpose(X), X))
    return const - B.scalar(tl.sum(inv * tl.dot(tl.transpose(X), KX)))


def _normalise_columns(X):
    norms = tl.sqrt(tl.sum(X * X, axis=0))
    ones = tl.ones(tl.shape(norms), **B.context_of(X))
    return X / tl.where(norms > 0, norms, ones)


def subspace_steps(op, X, rule: str, const: float, max_steps: int, tol: float):
    """Up to ``max_steps`` non-negative least-squares updates of X with the cores re-fitted
    after each; stop when a step lowers f by at most ``tol`` (absolute).

    The objective is :func:`subspace_objective`, f(X) = c − tr(K Π_X). Each update fixes the
    least-squares cores, takes one step of ``rule`` on the non-negative least-squares
    problem in X (``mu``: semi-NMF rule of Ding, Li & Jordan; ``hals``: exact column
    updates; ``pgd``: projected gradient with step 1/L), and scales the columns of X to unit
    norm (which leaves f unchanged). No update increases f.

    Parameters
    ----------
    op : MatrixOperator or StreamedOperator
        The statistic: ``op.apply(X)[0]`` is K X.
    X : tensor
        The starting factor, n×R, non-negative.
    rule : str
        ``"mu"``, ``"hals"`` or ``"pgd"``.
    const : float
        The constant c of f (Σ‖Z_i‖²).
    max_steps : int
        Most updates.
    tol : float
        Stop after an update that lowers f by at most ``tol`` (absolute).

    Returns
    -------
    Step
        The updated X (non-negative, columns of unit norm), f there and the number of
        updates taken.

    Raises
    ------
    ValueError
        If ``rule`` is not one of :data:`RULES` (when at least one update is asked for).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.updates import subspace_objective, subspace_steps
    >>> from tensorpanda.operators import MatrixOperator
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((30, 4, 6)); P = rng.uniform(size=(6, 2))
    >>> K, c = np.einsum("ncs,nct->st", Z, Z), float((Z ** 2).sum())
    >>> f0 = subspace_objective(P, K @ P, c)
    >>> steps = [subspace_steps(MatrixOperator(K), P, r, c, 10, 0.0) for r in ("mu", "hals", "pgd")]
    >>> [bool(s.objective < f0 and (s.X >= 0).all()) for s in steps]    # lower f, P ≥ 0
    [True, True, True]
    >>> np.linalg.norm(steps[0].X, axis=0).round(6)
    array([1., 1.])
    """
    KX, _ = op.apply(X)
    value = subspace_objective(X, KX, const)
    n_updates = 0
    while n_updates < max_steps:
        n_updates += 1
        inv = B.psd_pinv(tl.dot(tl.transpose(X), X))
        B_ = tl.dot(KX, inv)  # Σ Y_iᵀ G_i with the least-squares cores G_i
        H = tl.dot(tl.dot(inv, tl.dot(tl.transpose(X), KX)), inv)  # Σ G_iᵀ G_i
        X = _normalise_columns(_nnls_update(X, B_, H, rule))
        KX, _ = op.apply(X)
        previous, value = value, subspace_objective(X, KX, const)
        if previous - value <= tol:
            break
    return Step(X=X, objective=value, n_updates=n_updates)


def _nnls_update(X, B_, H, rule):
    """One update of min_{X ≥ 0} tr(XᵀX H) − 2 tr(Xᵀ B) (cores fixed)."""
    pos, neg = B.positive_part, B.negative_part
    if rule == "mu":
        num = pos(B_) + tl.dot(X, neg(H))
        den = neg(B_) + tl.dot(X, pos(H))
        return X * tl.sqrt(_safe_divide(num, den, X))
    if rule == "pgd":
        L = B.spectral_norm_psd(H)
        return X if L <= 0 else tl.clip(X - (tl.dot(X, H) - B_) / L, 0, None)
    if rule == "hals":
        for k in range(tl.shape(X)[1]):
            h_kk = B.scalar(H[k, k])
            if h_kk > 0:
                column = tl.clip(X[:, k] + (B_[:, k] - tl.dot(X, H[:, k])) / h_kk, 0, None)
                X = _column(X, k, column)
        return X
    raise ValueError(f"unknown rule {rule!r}; choose one of {RULES}")


# -- Orthonormal appearances -------------------------------------------------------------------
def eigen_step(K, rank: int, const: float) -> Step:
    """argmax tr(Aᵀ K A) over orthonormal A: the top ``rank`` eigenvectors of K.
    The objective is c − (sum of those eigenvalues).

    Each eigenvector's sign is fixed so that its entry of largest magnitude is positive.

    Parameters
    ----------
    K : tensor
        A symmetric C×C backend tensor (K_C(P) for PandA, Σ Z_i Π_P Z_iᵀ for Tucker-2).
    rank : int
        The number of columns R_C of A.
    const : float
        The constant c (Σ‖Z_i‖²).

    Returns
    -------
    Step
        A (C×R_C, orthonormal columns, in decreasing order of eigenvalue), the objective
        c − Σ λ_k and ``n_updates=1``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.updates import eigen_step
    >>> step = eigen_step(np.diag([3.0, 2.0, 1.0]), 2, 10.0)
    >>> np.allclose(step.X, np.eye(3)[:, :2]), step.objective      # 10 − (3 + 2)
    (True, 5.0)
    """
    values, vectors = B.top_eigh(K, rank)
    return Step(X=vectors, objective=const - B.scalar(tl.sum(values)), n_updates=1)

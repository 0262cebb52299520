"""Update rules for one factor X (P, or A) with the other factor's statistics held fixed.

- `tied_steps`: PandA's tied core, f(X) = c − 2 tr(Xᵀ K1 X) + tr(Xᵀ K2 X · XᵀX), a
  quartic. ``mu``, ``hals`` and ``pgd`` each propose a direction; the exact line search of
  `tensorpanda.quartic` picks the step, so f never increases.
- `subspace_steps`: Tucker-2 with least-squares cores, f(X) = c − tr(K Π_X), Π_X the
  projector onto X's columns, X ≥ 0. One non-negative least-squares step in X with the cores
  fixed (semi-NMF ``mu`` of Ding, Li & Jordan; exact-column ``hals``; ``pgd`` with step 1/L),
  then the cores are re-fitted; each step decreases f, so no line search is needed.
- `eigen_step`: the exact step for an orthonormal A, the top eigenvectors.

Each product with K is one matrix product (held statistics) or one pass over the data
(streamed), so the rules are written to apply K as few times as possible.
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
    """A factor X after some updates, the objective f at X, and how many updates were taken."""

    X: object
    objective: float
    n_updates: int


def safe_divide(num, den, X):
    """num / den elementwise, with den floored at eps·max(den) (no 0/0, no inf).

    The floor is relative, so the rule does not depend on the data's scale; the dtype's
    smallest normal number only guards an all-zero den.
    """
    info = np.finfo(tl.to_numpy(X[:1, :1]).dtype)
    floor = max(float(info.eps) * B.scalar(tl.max(den)), float(info.tiny))
    return num / tl.clip(den, floor, None)


def _norm(X) -> float:
    """‖X‖_F without overflow or underflow of the squares: max|X| · ‖X / max|X|‖_F."""
    peak = B.scalar(tl.max(tl.abs(X)))
    return peak * B.scalar(tl.norm(X / peak)) if peak > 0 else 0.0


def keep_columns_alive(Y, X):
    """Replace each all-zero column of the proposal Y by a small constant column.

    A zero column of P is a stationary point of every first-order rule (its gradient is zero
    too), so a part that reached zero could never come back. A small column keeps the part
    alive; rules that are invariant to its scale (hals) regrow it in one step if it helps.
    """
    alive = tl.max(Y, axis=0) > 0
    floor = 1e-3 * B.scalar(tl.mean(X)) + float(np.finfo(np.float32).tiny)
    return tl.where(tl.reshape(alive, (1, -1)), Y, tl.zeros_like(Y) + floor)


def with_column(X, k: int, column):
    """X with its column k replaced (functional: also works on immutable jax arrays)."""
    R = tl.shape(X)[1]
    e = B.tensor(np.eye(R)[k], B.context_of(X))
    return X + (tl.reshape(column, (-1, 1)) - X[:, k : k + 1]) * tl.reshape(e, (1, -1))


# -- PandA: the tied-core quartic --------------------------------------------------------------
def tied_gradient(X, K1X, K2X):
    """∇f(X) = −4 K1 X + 2 K2 X (XᵀX) + 2 X (Xᵀ K2 X) of the tied quartic (K1, K2 symmetric).

    Needs only the products K1 X and K2 X, so it costs no further application of K.
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
    return X * safe_divide(grad_neg, grad_pos, X)


def direction_products(op, X, D, K1X, K2X, column: int | None = None):
    """(K1 D, K2 D) from one product K·(X + D) and the held K1 X, K2 X (linearity): no extra
    pass when K is streamed. With ``column`` only that column of D is non-zero, and K is
    applied to that column alone. K2 D is K1 D itself when K2 X is K1 X."""
    if column is None:
        K1Y, K2Y = op.products(X + D)
        K1D = K1Y - K1X
        return K1D, (K1D if K2X is K1X else K2Y - K2X)
    k = column
    K1y, K2y = op.products(X[:, k : k + 1] + D[:, k : k + 1])
    zeros = tl.zeros_like(X)
    K1D = with_column(zeros, k, K1y[:, 0] - K1X[:, k])
    return K1D, (K1D if K2X is K1X else with_column(zeros, k, K2y[:, 0] - K2X[:, k]))


def _line_step(op, X, D, K1X, K2X, const, t_max, column: int | None = None, nonneg=True):
    """Move X along D by the exact minimiser of the quartic on [0, t_max].

    K·(X + D) is computed once; K·D then follows by linearity, which is what makes the exact
    search cost no extra pass when the statistics are streamed. With ``column`` only that
    column of D is non-zero, and K is applied to that column alone.
    """
    K1D, K2D = direction_products(op, X, D, K1X, K2X, column)
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
    """Up to ``max_steps`` monotone updates of X on the tied quartic.

    f(X) = c − 2 tr(Xᵀ K1 X) + tr(Xᵀ K2 X · XᵀX). ``rule`` proposes a direction D (``mu``:
    X ⊙ ∇⁻f/∇⁺f; ``hals``: each column's least-squares target; ``pgd``: max(0, X − η∇f)) and X
    moves to the exact minimiser of f(X + tD) on the feasible segment, so f never increases and
    X stays ≥ 0. ``nonneg=False`` (a free A) takes unconstrained gradient directions whatever
    the rule. Stops after an update that lowers f by at most ``tol`` (absolute).
    """
    K1X, K2X = op.products(X)
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
            D = keep_columns_alive(_mu_proposal(X, K1X, K2X), X) - X
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
        # no absolute floors: K scales with the data's square, so the step must follow it
        # at 1e-30 as at 1e30 (norms taken without overflowing squares)
        x_norm = _norm(X) or 1.0  # X = 0 is refused upstream; no division by zero
        k1, k2 = _norm(K1X) / x_norm, _norm(K2X) / x_norm
        lipschitz = 4 * k1 + 6 * k2 * x_norm**2
        step_size = 1.0 / lipschitz if lipschitz > 0 else 1.0
    D = keep_columns_alive(tl.clip(X - step_size * grad, 0, None), X) - X
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
        target = keep_columns_alive(tl.reshape(target, (-1, 1)), X)[:, 0]
        X, K1X, K2X, value, t = _column_step(op, X, k, target - x, K1X, K2X, const)
        if t == 0.0:
            # the target holds the tied core Z_i x_k fixed, so it need not descend: a
            # fixed point of the sweep can then be non-stationary. The column's projected
            # gradient direction always descends unless the column is stationary.
            g = tied_gradient(X, K1X, K2X)[:, k]
            x = X[:, k]
            eta = _norm(x) / (_norm(g) or 1.0)
            d = tl.clip(x - eta * g, 0, None) - x
            X, K1X, K2X, value, _ = _column_step(op, X, k, d, K1X, K2X, const)
    return X, K1X, K2X, value


def _column_step(op, X, k: int, d, K1X, K2X, const):
    """Column k of X moved along d by the exact search on the feasible segment."""
    D = with_column(tl.zeros_like(X), k, d)
    t_max = quartic.feasible_step(X, D, EXTRAPOLATION)
    return _line_step(op, X, D, K1X, K2X, const, t_max, column=k)


# -- Tucker-2 with least-squares cores ---------------------------------------------------------
def subspace_objective(X, KX, const: float) -> float:
    """f(X) = c − tr(K Π_X) = c − tr((XᵀX)⁺ Xᵀ K X): Tucker-2's objective with least-squares cores.

    It depends only on the column space of X (scale-free).
    """
    inv = B.psd_pinv(tl.dot(tl.transpose(X), X))
    return const - B.scalar(tl.sum(inv * tl.dot(tl.transpose(X), KX)))


def _normalise_columns(X):
    """X with columns of unit norm (zero columns left as they are)."""
    norms = tl.sqrt(tl.sum(X * X, axis=0))
    ones = tl.ones(tl.shape(norms), **B.context_of(X))
    return X / tl.where(norms > 0, norms, ones)


def subspace_steps(op, X, rule: str, const: float, max_steps: int, tol: float):
    """Up to ``max_steps`` non-negative least-squares updates of X, the cores re-fitted after each.

    f is `subspace_objective`. With the cores G_i fixed each update takes one step of
    ``rule`` on min_{X ≥ 0} tr(XᵀX H) − 2 tr(XᵀB) (`_nnls_update`), then scales X's columns
    to unit norm (f is unchanged). No update increases f. Stops after an update that lowers f by
    at most ``tol`` (absolute).
    """
    KX, _ = op.products(X)
    value = subspace_objective(X, KX, const)
    n_updates = 0
    while n_updates < max_steps:
        n_updates += 1
        inv = B.psd_pinv(tl.dot(tl.transpose(X), X))
        B_ = tl.dot(KX, inv)  # Σ Y_iᵀ G_i with the least-squares cores G_i
        H = tl.dot(tl.dot(inv, tl.dot(tl.transpose(X), KX)), inv)  # Σ G_iᵀ G_i
        X = _normalise_columns(_nnls_update(X, B_, H, rule))
        KX, _ = op.products(X)
        previous, value = value, subspace_objective(X, KX, const)
        if previous - value <= tol:
            break
    return Step(X=X, objective=value, n_updates=n_updates)


def _nnls_update(X, B_, H, rule):
    """One update of min_{X ≥ 0} tr(XᵀX H) − 2 tr(Xᵀ B) (cores fixed), each non-increasing.

    mu: X ⊙ √((B⁺ + X H⁻) / (B⁻ + X H⁺)); pgd: max(0, X − (X H − B)/L), L = ‖H‖₂;
    hals, column by column: x_k ← max(0, x_k + (b_k − X h_k) / h_kk).
    """
    pos, neg = B.positive_part, B.negative_part
    if rule == "mu":
        num = pos(B_) + tl.dot(X, neg(H))
        den = neg(B_) + tl.dot(X, pos(H))
        return X * tl.sqrt(safe_divide(num, den, X))
    if rule == "pgd":
        L = B.spectral_norm_psd(H)
        return X if L <= 0 else tl.clip(X - (tl.dot(X, H) - B_) / L, 0, None)
    if rule == "hals":
        for k in range(tl.shape(X)[1]):
            h_kk = B.scalar(H[k, k])
            if h_kk > 0:
                column = tl.clip(X[:, k] + (B_[:, k] - tl.dot(X, H[:, k])) / h_kk, 0, None)
                X = with_column(X, k, column)
        return X
    raise ValueError(f"unknown rule {rule!r}; choose one of {RULES}")


# -- Orthonormal appearances -------------------------------------------------------------------
def eigen_step(K, rank: int, const: float) -> Step:
    """argmax tr(Aᵀ K A) over orthonormal A: the top ``rank`` eigenvectors of K; f = c − Σ λ_k."""
    values, vectors = B.top_eigh(K, rank)
    return Step(X=vectors, objective=const - B.scalar(tl.sum(values)), n_updates=1)

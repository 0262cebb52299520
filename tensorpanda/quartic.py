"""Exact line search on PandA's quartic objective.

With the other factor's statistics fixed, the objective in X (P, or a free A) is

    f(X) = c − 2 tr(Xᵀ K1 X) + tr(Xᵀ K2 X · XᵀX).

Along a direction D, f(X + tD) = Σ_{m=0..4} c_m t^m; its coefficients need only K1 D, K2 D
and R×R matrices. Minimising it exactly on the feasible interval [0, t_max] makes every
update rule monotone (t = 0 is always a candidate) and lets a step go past t = 1.
"""

from __future__ import annotations

import numpy as np
import tensorly as tl

from . import _backend as B


def _inner(X, Y):
    """tr(Xᵀ Y) as a Python float."""
    return B.scalar(tl.sum(X * Y))


def objective(X, K1X, K2X, const: float) -> float:
    """f(X) = c − 2 tr(Xᵀ K1 X) + tr(Xᵀ K2 X · XᵀX), from K1 X and K2 X.

    For P with an orthonormal A (K1 = K2 = K_S(A), c = Σ‖Z_i‖²) this is Σ‖Z_i − A Aᵀ Z_i P Pᵀ‖².
    """
    G = tl.dot(tl.transpose(X), K2X)
    H = tl.dot(tl.transpose(X), X)
    return const - 2 * _inner(X, K1X) + _inner(G, H)


def coefficients(X, D, K1X, K1D, K2X, K2D, const: float) -> np.ndarray:
    """c_0..c_4 (increasing degree) of f(X + tD) = Σ_m c_m t^m, for symmetric K1, K2; c_0 = f(X)."""
    Xt, Dt = tl.transpose(X), tl.transpose(D)
    # f(X+tD) = c − 2 (a0 + t a1 + t² a2) + tr(G(t) H(t)), with a_m from K1 and
    # G(t) = (X+tD)ᵀ K2 (X+tD) = G0 + t G1 + t² G2, H(t) = (X+tD)ᵀ(X+tD) likewise
    G0, G2 = tl.dot(Xt, K2X), tl.dot(Dt, K2D)
    XtK2D = tl.dot(Xt, K2D)
    G1 = XtK2D + tl.transpose(XtK2D)
    H0, H2 = tl.dot(Xt, X), tl.dot(Dt, D)
    XtD = tl.dot(Xt, D)
    H1 = XtD + tl.transpose(XtD)
    a0, a1, a2 = _inner(X, K1X), 2 * _inner(X, K1D), _inner(D, K1D)

    def tr(G, H):
        return _inner(G, H)

    return np.array(
        [
            const + tr(G0, H0) - 2 * a0,
            tr(G0, H1) + tr(G1, H0) - 2 * a1,
            tr(G0, H2) + tr(G1, H1) + tr(G2, H0) - 2 * a2,
            tr(G1, H2) + tr(G2, H1),
            tr(G2, H2),
        ]
    )


def minimize(coeffs: np.ndarray, t_max: float) -> tuple[float, float]:
    """The t in [0, t_max] minimising Σ_m c_m t^m, and the value there; t = 0 wins ties.

    Candidates: 0, t_max (when finite; t_max = inf needs c_4 > 0) and the real stationary
    points between, so the search is exact and a non-descent direction leaves X unchanged.
    """
    poly = np.polynomial.Polynomial(coeffs)
    candidates = [0.0]
    if np.isfinite(t_max):
        candidates.append(float(t_max))
    for root in poly.deriv().roots():
        if abs(root.imag) <= 1e-12 * max(1.0, abs(root.real)) and 0.0 < root.real < t_max:
            candidates.append(float(root.real))
    values = [float(poly(t)) for t in candidates]
    best = int(np.argmin(values))
    if values[best] >= values[0]:
        return 0.0, values[0]
    return candidates[best], values[best]


def feasible_step(X, D, cap: float, margin: float = 0.0) -> float:
    """The largest t ≤ cap with X + tD ≥ 0 (X ≥ 0), shortened by the fraction ``margin`` if the
    boundary binds (so that no entry lands exactly on zero).
    """
    Xh, Dh = tl.to_numpy(X), tl.to_numpy(D)
    shrinking = Dh < 0
    if not shrinking.any():
        return cap
    boundary = float(np.min(Xh[shrinking] / -Dh[shrinking]))
    return min(cap, boundary * (1.0 - margin))

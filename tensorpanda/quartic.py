"""Exact line search for PandA's quartic objective.

With the statistics held fixed, PandA's objective in one factor X (P with K = K_S(A), or a
free A with K = X-side statistics) is

    f(X) = c − 2 tr(Xᵀ K1 X) + tr(Xᵀ K2 X · XᵀX),

a quartic polynomial in X. Along any direction D, ``f(X + tD)`` is a quartic polynomial in
the scalar t whose five coefficients need only the products K1 D, K2 D and some R×R
matrices. Minimising it exactly over the feasible interval [0, t_max] makes every update rule
monotone by construction (t = 0 is always a candidate), and lets a rule's step be extended
beyond t = 1 when that helps.
"""

from __future__ import annotations

import numpy as np
import tensorly as tl

from . import _backend as B


def _inner(X, Y):
    """tr(Xᵀ Y) as a Python float."""
    return B.scalar(tl.sum(X * Y))


def objective(X, K1X, K2X, const: float) -> float:
    """f(X) = c − 2 tr(Xᵀ K1 X) + tr(Xᵀ K2 X · XᵀX).

    For the parts X = P of PandA with an orthonormal A, K1 = K2 = K_S(A) and
    c = Σ_i ‖Z_i‖², this is the model's objective Σ_i ‖Z_i − A Aᵀ Z_i P Pᵀ‖²_F.

    Parameters
    ----------
    X : tensor of shape (S, R)
        The factor.
    K1X : tensor of shape (S, R)
        The product K1 X (K1 symmetric).
    K2X : tensor of shape (S, R)
        The product K2 X (K2 symmetric).
    const : float
        The constant c (Σ_i ‖Z_i‖² for PandA's objective).

    Returns
    -------
    float
        f(X).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.quartic import objective
    >>> rng = np.random.default_rng(0)
    >>> Z, P = rng.standard_normal((4, 3, 5)), rng.random((5, 2))
    >>> K = sum(z.T @ z for z in Z)  # K_S for A = I (R_C = C)
    >>> f = objective(P, K @ P, K @ P, float((Z**2).sum()))
    >>> direct = sum(((z - z @ P @ P.T) ** 2).sum() for z in Z)
    >>> bool(np.isclose(f, direct))
    True
    """
    G = tl.dot(tl.transpose(X), K2X)
    H = tl.dot(tl.transpose(X), X)
    return const - 2 * _inner(X, K1X) + _inner(G, H)


def coefficients(X, D, K1X, K1D, K2X, K2D, const: float) -> np.ndarray:
    """Coefficients c_0..c_4 of f(X + tD) = Σ_m c_m t^m (K1, K2 symmetric).

    f is :func:`objective`; only products with K1 and K2 and R×R matrices are needed.

    Parameters
    ----------
    X : tensor of shape (S, R)
        The current factor.
    D : tensor of shape (S, R)
        The search direction.
    K1X, K1D : tensor of shape (S, R)
        The products K1 X and K1 D.
    K2X, K2D : tensor of shape (S, R)
        The products K2 X and K2 D.
    const : float
        The constant c of the objective.

    Returns
    -------
    numpy.ndarray of shape (5,)
        c_0, ..., c_4, in increasing order of degree (as :class:`numpy.polynomial.Polynomial`
        takes them); c_0 = f(X).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.quartic import coefficients, objective
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.standard_normal((6, 4))
    >>> K, X, D = Y.T @ Y, rng.random((4, 2)), rng.standard_normal((4, 2))
    >>> c = coefficients(X, D, K @ X, K @ D, K @ X, K @ D, 3.0)
    >>> c.shape
    (5,)
    >>> Xt = X + 0.3 * D  # the polynomial at t = 0.3 is the objective there
    >>> bool(np.isclose(np.polynomial.Polynomial(c)(0.3), objective(Xt, K @ Xt, K @ Xt, 3.0)))
    True
    """
    Xt, Dt = tl.transpose(X), tl.transpose(D)
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
    """The t in [0, t_max] minimising Σ_m c_m t^m, and the minimum value.

    t = 0 wins ties, so a direction that does not descend leaves the factor unchanged.
    The candidates are 0, ``t_max`` (when finite) and the real stationary points in between.

    Parameters
    ----------
    coeffs : numpy.ndarray of shape (5,)
        The coefficients c_0, ..., c_4 in increasing order of degree (as returned by
        :func:`coefficients`).
    t_max : float
        The upper end of the interval (e.g. from :func:`feasible_step`); may be ``numpy.inf``
        when the polynomial is bounded below (c_4 > 0).

    Returns
    -------
    t : float
        The minimising step, in [0, t_max].
    value : float
        The polynomial's value at ``t``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.quartic import minimize
    >>> c = np.array([1.0, -2.0, 1.0, 0.0, 0.0])  # (t - 1)², minimum at t = 1
    >>> minimize(c, 5.0)
    (1.0, 0.0)
    >>> minimize(c, 0.5)  # the interval ends before the minimum
    (0.5, 0.25)
    >>> minimize(np.array([0.0, 1.0, 1.0, 0.0, 0.0]), np.inf)  # ascent: stay at t = 0
    (0.0, 0.0)
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
    """The largest t ≤ cap keeping X + tD ≥ 0 (for X ≥ 0), shortened by the fraction
    ``margin`` when the boundary binds (so that no entry lands exactly on zero).

    Parameters
    ----------
    X : tensor
        The current, non-negative factor.
    D : tensor of the shape of ``X``
        The search direction.
    cap : float
        The largest step allowed (returned as is when no entry of ``D`` is negative).
    margin : float, default 0.0
        The fraction by which the step to the boundary, min over D < 0 of X / (−D), is
        shortened.

    Returns
    -------
    float
        min(cap, (1 − margin) · min_{D<0} X / (−D)), or ``cap`` when D ≥ 0.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.quartic import feasible_step
    >>> X, D = np.array([[1.0], [2.0]]), np.array([[-2.0], [1.0]])
    >>> feasible_step(X, D, 10.0)  # X + 0.5 D has a zero entry
    0.5
    >>> feasible_step(X, D, 10.0, margin=0.1), feasible_step(X, D, 0.2)
    (0.45, 0.2)
    >>> feasible_step(X, np.abs(D), 3.0)  # no entry decreases
    3.0
    """
    Xh, Dh = tl.to_numpy(X), tl.to_numpy(D)
    shrinking = Dh < 0
    if not shrinking.any():
        return cap
    boundary = float(np.min(Xh[shrinking] / -Dh[shrinking]))
    return min(cap, boundary * (1.0 - margin))

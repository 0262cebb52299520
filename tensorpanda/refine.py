"""Sample-specific parts: refinement of P on one sample with A held fixed (DESIGN.md §1).

For samples whose parts are not aligned with the data set's (a face turned aside, an object
off-centre), PandA fits a P_i ≥ 0 on Z_i alone, starting from the shared P. Fitted freely,
P_i overfits the one sample it sees (its parts break into dot lattices that lower the error
on the channels it was fitted on, not on held-out ones: docs/refinement.md), so the fit is
tied to the shared parts:

    P_i = argmin_{P_i ≥ 0} ‖Z_i − A Aᵀ Z_i P_i P_iᵀ‖²_F + μ_i ‖P_i − P‖²_F      (model="panda"),

    μ_i = tie · ‖Aᵀ Z_i‖²_F / S   (``tie`` times the mean eigenvalue of the sample's Gram).

The penalty adds μ_i‖X‖² and a linear term −2μ_i tr(Pᵀ X) to the per-sample quartic: the
quadratic part could be folded into K1, the linear one cannot (the quartic's form has no
linear term), so the penalised updates and their exact line search live here rather than in
`tensorpanda.updates`. The statistics (held S×S Gram, or streamed) are the model's own.
"""

from __future__ import annotations

import math
from dataclasses import replace
from numbers import Real

import numpy as np
import tensorly as tl

from . import _backend as B
from . import quartic
from .data import BatchSource, as_source
from .models import make_model
from .params import GRAM_MAX_BYTES
from .result import Factorization
from .smoothness import SmoothedOperator, penalty_weight
from .updates import (
    RULES,
    direction_products,
    keep_columns_alive,
    safe_divide,
    tied_gradient,
    with_column,
)

# Default tie strength: the strongest tie whose error on held-out channels of DCGAN-faces
# features is within one standard error of the best tie's (benchmarks/eval_refine.py,
# docs/refinement.md).
DEFAULT_TIE = 1.0
# Largest multiple of a rule's own step the exact line search may take (as in the main fit).
EXTRAPOLATION = 16.0


def refine(
    factors: Factorization,
    data,
    *,
    solver: str = "hals",
    max_iter: int = 200,
    tol: float = 1e-6,
    tie: float | str = "auto",
    smoothness: float | str = "auto",
):
    """Sample-specific parts P_i for each sample of ``data``, shape (N, S, R_S).

    For ``model="panda"`` each P_i ≥ 0 minimises, with A fixed,

        ‖Z_i − A Aᵀ Z_i P_i P_iᵀ‖²_F + μ_i ‖P_i − P‖²_F + λ_i tr(P_iᵀ L P_i),

        μ_i = tie · ‖Aᵀ Z_i‖²_F / S,   λ_i = smoothness · ‖Z_i‖²_F / S,

    starting from the shared parts P = ``factors.P``: the penalty ties P_i to P, so that
    P_i moves where the sample asks for it and not into parts that only fit this sample's
    noise. The scale of μ_i (the mean eigenvalue of the sample's S×S Gram Z_iᵀ A Aᵀ Z_i) makes
    ``tie`` independent of the data's scale and of the layer. L is the Laplacian of the H×W
    grid: the spatial smoothness prior of the main fit (``tucker2(..., smoothness=...)``),
    scaled to one sample as the fit scales it to the data set. For ``model="tucker"`` the
    free-core objective ‖Z_i − A G_i P_iᵀ‖²_F (least-squares cores G_i) is minimised without
    a tie; ``max_iter`` is then the only brake. The samples are refined one at a time,
    independently.

    Parameters
    ----------
    factors : Factorization
        A fitted factorisation (A is kept fixed; its P is the starting point and the anchor
        of the tie). Its ``model`` and ``appearances`` select the objective.
    data : array (N, C, S) or (N, C, H, W), or any source [`tucker2`][tensorpanda.tucker2] accepts
        The samples to refine; C and S must match the data ``factors`` was fitted on.
        Read once, batch by batch.
    solver : {"mu", "hals", "pgd"}, default "hals"
        The update rule for P_i (as in [`tucker2`][tensorpanda.tucker2]): ``hals`` column-wise
        updates, ``mu`` multiplicative updates, ``pgd`` projected gradient. Each ends with an exact
        line search on the (penalised) objective, so no update increases it.
    max_iter : int, default 200
        Most updates per sample (a positive integer).
    tol : float, default 1e-6
        Stop a sample when an update lowers its (penalised) objective by at most
        ``tol · ‖Z_i‖²``.
    tie : float or "auto", default "auto"
        Strength of the tie to the shared parts, in units of ‖Aᵀ Z_i‖²_F / S: a number ≥ 0,
        ``0`` for the untied fit, ``math.inf`` to return the shared parts unchanged.
        ``"auto"`` is ``DEFAULT_TIE`` = 1 for ``model="panda"`` (the strongest tie whose
        error on held-out channels of DCGAN-faces features is within one standard error of
        the best; docs/refinement.md) and 0 for ``model="tucker"``, which supports only 0
        and ``math.inf``. ``tie=0`` takes the main fit's own P-step.
    smoothness : float or "auto", default "auto"
        Weight of the smoothness prior, in the units of
        [`tucker2`][tensorpanda.tucker2]'s: a number ≥ 0 (``model="panda"`` only), or
        ``"auto"``: the weight ``factors`` was fitted with (0 if none).

    Returns
    -------
    tensor of shape (N, S, R_S)
        P_i ≥ 0 for each sample, in the order of ``data``, on the backend of ``factors``.
        ``P_i.T`` reshaped to (R_S, H, W) gives the sample's part maps.

    Raises
    ------
    ValueError
        If ``solver`` is not one of "mu", "hals", "pgd", if ``max_iter`` is not a positive
        integer, if ``tie`` is not "auto" or a number ≥ 0 (a finite positive tie with
        ``model="tucker"`` included), if ``smoothness`` is not "auto" or a number ≥ 0 (a
        positive one with ``model="tucker"`` included), or if the data's channels or
        positions do not match ``factors``.
    TypeError
        If ``data`` is not an array, a callable or an iterable of batches.

    Examples
    --------
    >>> import math, numpy as np, tensorpanda as tp
    >>> Z = np.random.default_rng(0).random((40, 6, 4, 4))
    >>> fit = tp.tucker2(Z, rank=(None, 3), tol=1e-4, random_state=0)
    >>> P_i = tp.refine(fit, Z[:2], tol=1e-4)
    >>> P_i.shape, bool((P_i >= 0).all())
    ((2, 16, 3), True)
    >>> bool(np.array_equal(tp.refine(fit, Z[:1], tie=math.inf)[0], fit.P))
    True
    """
    if solver not in RULES:
        raise ValueError(f"unknown solver {solver!r} for refine; choose one of {RULES}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter <= 0:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    tie = _resolve_tie(tie, factors.model)
    smoothness = _resolve_smoothness(smoothness, factors)
    model = make_model(factors.model, factors.appearances, solver)
    prior = {"tie": tie, "smoothness": smoothness}
    backend, ctx = tl.get_backend(), B.context_of(factors.P)
    if backend == "numpy" or not B.in_host_memory(factors.P):
        return _refine_all(model, factors, as_source(data), ctx, prior, max_iter, tol)
    # on a CPU the per-sample problems run on numpy, as fits do (tensorpanda.host): their
    # many small products would pay torch's or jax's dispatch cost
    host = replace(factors, A=tl.to_numpy(factors.A), P=tl.to_numpy(factors.P))
    with tl.backend_context("numpy"):
        source = as_source(data)
        source.producer_backend = backend  # a generator of batches runs as the user wrote it
        refined = _refine_all(model, host, source, B.context_of(host.P), prior, max_iter, tol)
    return B.to_backend(refined, ctx)


def _refine_all(model, factors, source, ctx, prior: dict, max_iter, tol):
    """P_i for each sample of ``source``, stacked (``prior``: its tie and smoothness)."""
    refined = []
    for batch in source:
        factors._check_layout(batch.Z)
        for i in range(batch.size):
            Z_i = B.to_backend(batch.Z[i : i + 1], ctx)
            refined.append(_refine_sample(model, factors, Z_i, prior, max_iter, tol))
    return tl.stack(refined)


def _resolve_tie(tie, model: str) -> float:
    """``tie`` as a float ≥ 0 (``"auto"`` resolved for ``model``), or a ValueError."""
    if isinstance(tie, str) and tie == "auto":
        return DEFAULT_TIE if model == "panda" else 0.0
    if isinstance(tie, bool) or not isinstance(tie, Real) or math.isnan(tie) or tie < 0:
        raise ValueError(
            f"tie must be 'auto' or a number >= 0 (0: no tie, math.inf: the shared parts), "
            f"got {tie!r}"
        )
    if model != "panda" and 0 < tie < math.inf:
        raise ValueError(
            f"tie={tie!r} is defined for model='panda' only; for a {model!r} factorisation "
            "pass tie=0 (and a small max_iter to stop early) or tie=math.inf"
        )
    return float(tie)


def _resolve_smoothness(smoothness, factors: Factorization) -> float:
    """``smoothness`` as a float ≥ 0 (``"auto"``: the fit's own), or a ValueError."""
    if isinstance(smoothness, str) and smoothness == "auto":
        info = factors.info
        weight = info.get("smoothness_weight", 0.0)  # λ = s · Σ‖Z_i‖² / S
        return weight * factors.n_positions / info["sq_norm"] if weight else 0.0
    if (isinstance(smoothness, bool) or not isinstance(smoothness, Real)
            or not 0 <= smoothness < math.inf):
        raise ValueError(f"smoothness must be 'auto' or a finite number >= 0, got "
                         f"{smoothness!r}")
    if smoothness and factors.model != "panda":
        raise ValueError(f"smoothness is defined for model='panda' only (it shifts the tied "
                         f"core's statistic); a {factors.model!r} factorisation takes 0")
    return float(smoothness)


def _refine_sample(model, factors: Factorization, Z_i, prior: dict, max_iter: int, tol: float):
    """P_i for one sample Z_i of shape (1, C, S): the shared P itself for an infinite tie,
    the model's own parts step for no tie, the tied updates otherwise; the smoothness
    prior, if any, folded into the sample's statistic."""
    tie = prior["tie"]
    if tie == math.inf:
        return factors.P
    S = tl.shape(Z_i)[2]
    streamed = S * S * tl.to_numpy(Z_i[:1, :1, :1]).itemsize > GRAM_MAX_BYTES
    op = model.parts_operator(BatchSource(Z_i), factors.A, streamed)
    const = B.scalar(tl.sum(Z_i * Z_i))
    if prior["smoothness"]:
        weight = penalty_weight(prior["smoothness"], const, S)
        op = SmoothedOperator(op, weight, factors.spatial_shape)
    if tie == 0:
        return model.parts_step(op, factors.P, const, max_iter, tol * const).X
    Y = tl.dot(tl.transpose(factors.A), Z_i[0])  # Aᵀ Z_i: tr(K1) = ‖Aᵀ Z_i‖²
    mu = tie * B.scalar(tl.sum(Y * Y)) / S
    X, _, _ = tied_refinement(op, factors.P, mu, model.rule, const, max_iter, tol * const)
    return X


# -- the tied per-sample problem ---------------------------------------------------------------
def tied_objective(X, K1X, K2X, P0, mu: float, const: float) -> float:
    """g(X) = c − 2 tr(Xᵀ K1 X) + tr(Xᵀ K2 X · XᵀX) + μ ‖X − P0‖², from K1 X and K2 X."""
    E = X - P0
    return quartic.objective(X, K1X, K2X, const) + mu * B.scalar(tl.sum(E * E))


def tied_refinement(op, P0, mu: float, rule: str, const: float, max_steps: int, tol: float):
    """Up to ``max_steps`` monotone updates of X ≥ 0 on g (`tied_objective`) from X = P0.

    ``rule`` proposes a direction (``mu``: X ⊙ ∇⁻g/∇⁺g; ``hals``: each column's penalised
    least-squares target; ``pgd``: max(0, X − η∇g)) and X moves to the exact minimiser of
    g along it on the feasible segment, so g never increases. Stops after an update that
    lowers g by at most ``tol`` (absolute). Returns (X, g(X), number of updates).
    """
    X = P0
    K1X, K2X = op.products(X)
    value = tied_objective(X, K1X, K2X, P0, mu, const)
    step_size = None  # pgd's step, adapted from one update to the next
    n_updates = 0
    while n_updates < max_steps:
        n_updates += 1
        previous = value
        if rule == "hals":
            X, K1X, K2X, value = _hals_sweep(op, X, K1X, K2X, P0, mu, const, value)
        else:
            grad = tied_gradient(X, K1X, K2X) + 2 * mu * (X - P0)
            if rule == "mu":
                ratio = safe_divide(*_split_gradient(X, K1X, K2X, P0, mu), X)
                D = keep_columns_alive(X * ratio, X) - X
                # stop short of the boundary: a zero entry is locked under a multiplicative rule
                t_max = quartic.feasible_step(X, D, EXTRAPOLATION, margin=1e-3)
            else:
                if step_size is None:
                    step_size = _initial_step(X, K1X, K2X, mu)
                D = keep_columns_alive(tl.clip(X - step_size * grad, 0, None), X) - X
                t_max = quartic.feasible_step(X, D, EXTRAPOLATION)
            X, K1X, K2X, value, t = _line_step(op, X, D, K1X, K2X, P0, mu, const, t_max)
            if rule == "pgd":  # doubled when the whole segment is taken, halved when < 1/10
                step_size *= 2.0 if t >= 0.999 else (0.5 if t < 0.1 else 1.0)
        if previous - value <= tol:
            break
    return X, value, n_updates


def _split_gradient(X, K1X, K2X, P0, mu):
    """(∇⁻g, ∇⁺g), both ≥ 0 with ∇g = ∇⁺g − ∇⁻g: the tie adds 2μX to ∇⁺ and 2μP0 to ∇⁻."""
    H = tl.dot(tl.transpose(X), X)
    G = tl.dot(tl.transpose(X), K2X)
    pos, neg = B.positive_part, B.negative_part
    grad_neg = 4 * pos(K1X) + 2 * tl.dot(neg(K2X), H) + 2 * tl.dot(X, neg(G)) + 2 * mu * P0
    grad_pos = 4 * neg(K1X) + 2 * tl.dot(pos(K2X), H) + 2 * tl.dot(X, pos(G)) + 2 * mu * X
    return grad_neg, grad_pos


def _initial_step(X, K1X, K2X, mu):
    """1/L for a local estimate L = 4‖K1‖ + 6‖K2‖‖X‖² + 2μ of ∇g's Lipschitz constant."""
    x_norm = B.scalar(tl.norm(X)) or 1.0
    k1, k2 = B.scalar(tl.norm(K1X)) / x_norm, B.scalar(tl.norm(K2X)) / x_norm
    lipschitz = 4 * k1 + 6 * k2 * x_norm**2 + 2 * mu
    return 1.0 / lipschitz if lipschitz > 0 else 1.0


def _hals_sweep(op, X, K1X, K2X, P0, mu, const, value):
    """One pass over the columns. With the other columns and the core column Aᵀ Z_i x_k fixed,
    the penalised least-squares optimum of column k is

        x_k ← [(K1 − N_k K2) x_k + μ p_k] / (x_kᵀ K2 x_k + μ),   N_k = Σ_{j≠k} x_j x_jᵀ,

    projected on x_k ≥ 0, and the exact search on g moves x_k toward it."""
    R = tl.shape(X)[1]
    for k in range(R):
        G = tl.dot(tl.transpose(X), K2X)  # Xᵀ K2 X, refreshed after each column
        g_kk = B.scalar(G[k, k])
        x = X[:, k]
        N_K2x = tl.dot(X, G[:, k]) - x * g_kk
        if g_kk + mu <= 0:
            continue  # a zero column with no tie: nothing to scale against
        target = tl.clip((K1X[:, k] - N_K2x + mu * P0[:, k]) / (g_kk + mu), 0, None)
        target = keep_columns_alive(tl.reshape(target, (-1, 1)), X)[:, 0]
        X, K1X, K2X, value, t = _column_step(op, X, k, target - x, K1X, K2X, P0, mu, const)
        if t == 0.0:
            # the target holds the core column fixed, so it need not descend; the column's
            # projected gradient direction does, unless the column is stationary
            g = (tied_gradient(X, K1X, K2X) + 2 * mu * (X - P0))[:, k]
            x = X[:, k]
            eta = B.scalar(tl.norm(x)) / (B.scalar(tl.norm(g)) or 1.0)
            d = tl.clip(x - eta * g, 0, None) - x
            X, K1X, K2X, value, _ = _column_step(op, X, k, d, K1X, K2X, P0, mu, const)
    return X, K1X, K2X, value


def _column_step(op, X, k: int, d, K1X, K2X, P0, mu, const):
    """Column k of X moved along d by the exact search on g, on the feasible segment."""
    D = with_column(tl.zeros_like(X), k, d)
    t_max = quartic.feasible_step(X, D, EXTRAPOLATION)
    return _line_step(op, X, D, K1X, K2X, P0, mu, const, t_max, k)


def _line_step(op, X, D, K1X, K2X, P0, mu, const, t_max, column: int | None = None):
    """Move X along D by the exact minimiser of g(X + tD) on [0, t_max] (a quartic in t: the
    tie adds μ‖X − P0‖² + 2μt⟨D, X − P0⟩ + μt²‖D‖²). K·D comes from one product with K (of
    column ``column`` alone when only that column of D is non-zero)."""
    K1D, K2D = direction_products(op, X, D, K1X, K2X, column)
    E = X - P0
    tie_terms = [tl.sum(E * E), 2 * tl.sum(D * E), tl.sum(D * D)]
    coeffs = quartic.coefficients(X, D, K1X, K1D, K2X, K2D, const)
    coeffs[:3] += mu * np.array([B.scalar(term) for term in tie_terms])
    t, value = quartic.minimize(coeffs, t_max)
    if t == 0.0:
        return X, K1X, K2X, value, t
    K1X = K1X + t * K1D
    K2X = K1X if K2D is K1D else K2X + t * K2D
    # at the feasible boundary x + t·d may round to -1e-18: keep the constraint exact
    return tl.clip(X + t * D, 0, None), K1X, K2X, value, t

"""The sketched route: large maps, where forming the S×S Gram costs more than the fit.

With R_C = C and an orthonormal A, PandA's objective depends on the data only through
K = Σ_i Z_iᵀ Z_i, and only through K P:

    f(P) = Σ_i ‖Z_i − Z_i P Pᵀ‖²_F = Σ_i ‖Z_i‖² − 2 tr(Pᵀ K P) + tr(Pᵀ K P · PᵀP),   P ≥ 0.

Forming K costs 2·C·S² flops per sample (0.5 GFlop at C = 256, S = 32×32; 17 GFlop at
C = 512, S = 64×64), applying it to a thin W (S×m) by a pass over the data 4·C·S·m. This
route never forms K. Each pass applies it to W = [P̂, Q]: P̂ the candidate parts, Q an
orthonormal basis that a subspace iteration (Q ← orth(K Q), one step per pass) turns
toward K's top eigenvectors. From the products K W of the last `MEMORY` passes the route
builds a Nyström approximation shifted to keep K's trace (`NystromOperator`),

    K̂ = (K W) (Wᵀ K W)⁺ (K W)ᵀ + e (I − U Uᵀ),     U an orthonormal basis of W,

which is positive semi-definite and exact on the span of W (K̂ x = K x there), and solves
the S×S problem on it at no further pass. An iteration (one pass):

1. K [P̂, Q] by one pass;
2. P ← the exact minimiser of f on the segment from the current P to P̂ (f along it is a
   quartic in the step, known exactly from K P and K P̂: the objective never increases,
   and the one recorded is exact, not the sketch's);
3. P̂ ← up to ``inner_max_iter`` (default 200) updates of the rule on K̂ from P, or from
   ``init`` read afresh off K̂, whichever ends lower on K̂ (`_candidate`);
4. Q ← orth(K Q).

The first pass reads ‖Z‖² and K Ω for a fixed Gaussian Ω (S×r, r = R_S + 16), from whose
Nyström approximation the start P is read (``init``) and the first candidate solved. A fit
therefore records its first (exact) objective after two passes of thin products.
"""

from __future__ import annotations

import numpy as np
import tensorly as tl

from . import _backend as B
from . import quartic
from .init import parts_from_gram
from .params import DEFAULT_INNER_MAX_ITER
from .statistics import accumulate, product_terms

# Sketch width beyond R_S: the oversampling of a randomized range finder (Halko, Martinsson
# & Tropp 2011), which makes the top R_S directions accurate.
OVERSAMPLING = 16
# Eigenvalues of Wᵀ K W below this multiple of the largest (times the dtype's epsilon) are
# dropped from the pseudo-inverse: their directions are rounding noise in K W, which the
# inverse square root would amplify.
RTOL_EPS = 1e3
# Passes whose products the sketch keeps: it is exact on the span of all of them.
MEMORY = 3
# The fixed draw of Ω: a fit is then a function of its data alone, and the ranks of a
# distributed fit draw the same Ω.
OMEGA_SEED = 0


def sketch_width(n_positions: int, n_parts: int) -> int:
    """r: the columns of Ω and Q, R_S + `OVERSAMPLING` (at most S)."""
    return min(n_positions, n_parts + OVERSAMPLING)


def test_matrix(n_positions: int, n_parts: int, context: dict):
    """Ω (S×r): a fixed standard Gaussian draw in the data's dtype."""
    rng = np.random.RandomState(OMEGA_SEED)
    draw = rng.standard_normal((n_positions, sketch_width(n_positions, n_parts)))
    return B.tensor(draw.astype(np.dtype(B.dtype_name(context))), context)


class NystromOperator:
    """K̂ = K̃ + e (I − U Uᵀ): the Nyström approximation K̃ = (K W)(Wᵀ K W)⁺(K W)ᵀ from a thin
    W and its exact product K W, plus the energy it misses spread evenly over the directions
    outside span(W) = span(U).

    K̃ is held as F Fᵀ with F = K W V Λ^(-1/2) (Wᵀ K W = V Λ Vᵀ). Given ``trace`` = tr K
    (= Σ_i ‖Z_i‖², known exactly), e = (tr K − tr K̃) / (S − m): K̂ then has K's trace, and
    is still exact on span(W) (where I − U Uᵀ vanishes). Without the shift K̃ counts the
    data's spectral tail as zero, and the parts fitted on it come out too concentrated on
    the sketched directions.
    """

    streamed = False
    shared = True

    def __init__(self, W, KW, trace: float | None = None):
        dtype = np.dtype(B.dtype_name(B.context_of(KW)))
        M = tl.to_numpy(tl.dot(tl.transpose(W), KW)).astype(np.float64)
        values, vectors = np.linalg.eigh((M + M.T) / 2)
        keep = values > RTOL_EPS * np.finfo(dtype).eps * max(values.max(), 0.0)
        scale = vectors[:, keep] / np.sqrt(values[keep])
        self.F = tl.dot(KW, B.tensor(scale.astype(dtype), B.context_of(KW)))
        self.U, self.shift = None, 0.0
        S, m = tl.shape(W)[0], int(keep.sum())
        if trace is not None and m < S:
            missed = trace - B.scalar(tl.sum(self.F * self.F))
            self.shift = max(missed, 0.0) / (S - m)
            self.U = B.orthonormal_basis(tl.dot(W, B.tensor(vectors[:, keep].astype(dtype),
                                                            B.context_of(W))))

    def products(self, X):
        """(K̂ X, K̂ X)."""
        KX = tl.dot(self.F, tl.dot(tl.transpose(self.F), X))
        if self.shift:
            KX = KX + self.shift * (X - tl.dot(self.U, tl.dot(tl.transpose(self.U), X)))
        return KX, KX

    def top_eigenvectors(self, rank: int):
        """K̃'s top ``rank`` eigenvectors, exactly (left singular vectors of F), completed
        by a fixed orthonormal draw when K̃ has fewer than ``rank`` directions."""
        F = tl.to_numpy(self.F).astype(np.float64)
        U = np.linalg.svd(F, full_matrices=False)[0][:, :rank]
        if U.shape[1] < rank:
            extra = np.random.RandomState(OMEGA_SEED).standard_normal((F.shape[0], rank))
            U = np.linalg.qr(np.concatenate([U, extra], axis=1))[0][:, :rank]
        context = B.context_of(self.F)
        return B.fix_signs(B.tensor(U.astype(np.dtype(B.dtype_name(context))), context))


def bank_operator(bank: list, sq_norm: float, P=None, KP=None) -> NystromOperator:
    """The shifted Nyström operator on every (W, K W) of ``bank`` (and P, with K P)."""
    Ws = [w for w, _ in bank] + ([] if P is None else [P])
    KWs = [k for _, k in bank] + ([] if KP is None else [KP])
    return NystromOperator(tl.concatenate(Ws, axis=1), tl.concatenate(KWs, axis=1), sq_norm)


def sketched_iterations(problem, model, stats: dict, smooth):
    """``one_iteration() -> objective`` for `loop.iterate`: the iterations of the module
    docstring, from the first pass's ``stats`` (``"sketch_test"`` Ω and ``"KX"`` K Ω) and
    the start ``problem.P`` read from them. ``model`` supplies the update rule
    (`parts_step`); ``smooth(op)`` folds the smoothness prior into an operator (returns it
    unchanged without one)."""
    R_S = problem.rank[1]
    bank = [(stats["sketch_test"], stats["KX"])]  # (W, K W) of the last passes
    state = {"P_hat": _solve(model, smooth(bank_operator(bank, problem.sq_norm)), problem,
                             problem.P).X,
             "Q": B.orthonormal_basis(stats["KX"]), "KP": None}

    def one_iteration() -> float:
        if state["KP"] is not None:  # the last pass's sketch gives the next candidate
            state["P_hat"] = _candidate(model, problem, bank, state["KP"], smooth)
            state["Q"] = B.orthonormal_basis(bank[-1][1][:, R_S:])
        P_hat = state["P_hat"]
        W = tl.concatenate([P_hat, state["Q"]], axis=1)
        KW = accumulate(problem.source, product_terms(W))["KX"]
        bank.append((W, KW))
        del bank[:-MEMORY]
        KP_hat = KW[:, :R_S]
        if state["KP"] is None:  # the first exact objective: nothing to compare it with
            problem.P, state["KP"] = P_hat, KP_hat
            return _objective(P_hat, KP_hat, smooth, problem.sq_norm)
        problem.P, state["KP"], value = _segment_minimum(
            problem.P, state["KP"], P_hat, KP_hat, smooth, problem.sq_norm)
        return value

    return one_iteration


def _candidate(model, problem, bank: list, KP, smooth):
    """The next P̂: the rule's updates on the sketch from the current P, or, when the fit
    starts from ``init`` (not a user's P, not random), from that start read afresh off the
    sketch, whichever ends lower on it. Each pass sharpens the sketch's top eigenvectors
    (Q is a subspace iteration), and the successive projections of ``init="spa"`` on the
    first pass's rough ones can pick other positions, a worse local minimum (DCGAN's
    32×32 layer: relative objective 0.3104 against 0.3012). The exact segment search
    keeps the objective monotone whichever candidate wins."""
    sketch = bank_operator(bank, problem.sq_norm, problem.P, KP)
    op = smooth(sketch)
    best = _solve(model, op, problem, problem.P)
    method = problem.config.init
    if isinstance(method, str) and method != "random":
        rng = np.random.RandomState(OMEGA_SEED)  # unused by the sketch's exact eigenvectors
        shape = tl.shape(problem.P)
        fresh = parts_from_gram(method, sketch, shape, rng, B.context_of(problem.P))
        other = _solve(model, op, problem, fresh)
        best = other if other.objective < best.objective else best
    return best.X


def _solve(model, op, problem, start):
    """Up to ``inner_max_iter`` (default 200) of the rule's updates of P on the sketch
    ``op`` from ``start``: a `Step` (its objective is the sketch's)."""
    # the sketch is held: its updates cost no pass, as on a held Gram
    inner = problem.config.inner_max_iter or DEFAULT_INNER_MAX_ITER["held"]
    return model.parts_step(op, start, problem.sq_norm, inner, problem.tol)


class _Known:
    """The products K1 X, K2 X of the prior-wrapped operator at a given X, from an exact
    K X (for `_segment_minimum`): ``smooth`` is applied to an operator returning it."""

    streamed = False
    shared = True

    def __init__(self, KX):
        self.KX = KX

    def products(self, X):
        return self.KX, self.KX


def _statistics_at(X, KX, smooth):
    """(K1 X, K2 X) with the prior folded into K1 when there is one."""
    return smooth(_Known(KX)).products(X)


def _objective(P, KP, smooth, const: float) -> float:
    """f(P), exactly, from K P."""
    return quartic.objective(P, *_statistics_at(P, KP, smooth), const)


def _segment_minimum(P, KP, P_hat, KP_hat, smooth, const: float):
    """(P + t D, K(P + t D), f there) for D = P̂ − P and the t in [0, 1] minimising the
    quartic f(P + t D): the segment of two non-negative matrices stays non-negative, and
    K D = K P̂ − K P by linearity, so the search is exact."""
    D, KD = P_hat - P, KP_hat - KP
    K1P, K2P = _statistics_at(P, KP, smooth)
    K1D, K2D = _statistics_at(D, KD, smooth)
    coeffs = quartic.coefficients(P, D, K1P, K1D, K2P, K2D, const)
    t, value = quartic.minimize(coeffs, 1.0)
    return P + t * D, KP + t * KD, value

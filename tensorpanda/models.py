"""The two objectives, in terms of the statistics each factor step needs.

``panda`` — PandA's tied core (Oldfield et al., ICLR 2023)::

    f(A, P) = Σ_i ‖Z_i − A Aᵀ Z_i P Pᵀ‖²_F,   P ≥ 0
            = Σ‖Z_i‖² − 2 tr(Pᵀ K1 P) + tr(Pᵀ K2 P PᵀP)       (K1 = Σ Z_iᵀ A Aᵀ Z_i,
                                                            K2 = Σ Z_iᵀ A AᵀA Aᵀ Z_i)
            = Σ‖Z_i‖² − 2 tr(Aᵀ X1 A) + tr(Aᵀ X2 A AᵀA)       (X1 = Σ Z_i P Pᵀ Z_iᵀ,
                                                            X2 = Σ Z_i P PᵀP Pᵀ Z_iᵀ)

  With an orthonormal A, K1 = K2 = K_S(A) and f = Σ‖Z_i‖² − tr(Aᵀ K_C(P) A) with
  K_C(P) = Σ (Z_i P)(2I − PᵀP)(Z_i P)ᵀ, so the A-step is an eigendecomposition.

``tucker`` — Tucker-2 with free least-squares cores G_i::

    f(A, P) = Σ_i min_{G_i} ‖Z_i − A G_i Pᵀ‖²_F = Σ‖Z_i‖² − tr(K_S(Q_A) Π_P)
            = Σ‖Z_i‖² − tr(K_C(Q_P) Π_A),

  with Q_X an orthonormal basis and Π_X the projector of X's column space; P ≥ 0, and A
  either orthonormal or non-negative (fully non-negative Tucker-2).

Each model turns the current factors into (a) the per-batch terms of the statistics the
other factor's step needs, and (b) that step.
"""

from __future__ import annotations

import tensorly as tl

from . import _backend as B
from . import updates
from .operators import MatrixOperator, StreamedOperator
from .statistics import accumulate, channel_gram_terms, spatial_gram_terms

APPEARANCES = {"panda": ("orthonormal", "free"), "tucker": ("orthonormal", "nonnegative")}


class PandAModel:
    """Tied core, Z_i ≈ A (Aᵀ Z_i P) Pᵀ: f(A, P) = Σ_i ‖Z_i − A Aᵀ Z_i P Pᵀ‖²_F, P ≥ 0.

    The A-step is exact (top eigenvectors of K_C(P)) for an orthonormal A and iterative
    (`tied_steps`) for a free A; the P-step is always iterative.
    """

    name = "panda"

    def __init__(self, appearances: str, rule: str):
        self.appearances, self.rule = appearances, rule

    @property
    def free(self) -> bool:
        """Whether A is free rather than orthonormal."""
        return self.appearances == "free"

    def appearance_terms(self, P):
        """Terms of the A-step's statistics at a fixed P: K_C(P) = Σ (Z_i P)(2I − PᵀP)(Z_i P)ᵀ
        for an orthonormal A; for a free A the pair K_C = Σ Z_i P Pᵀ Z_iᵀ and
        K_C2 = Σ Z_i P PᵀP Pᵀ Z_iᵀ."""
        PtP = tl.dot(tl.transpose(P), P)
        if self.free:
            return channel_gram_terms(P, None, second=PtP)
        eye = tl.eye(tl.shape(P)[1], **B.context_of(P))
        return channel_gram_terms(P, 2 * eye - PtP)

    def appearance_step(self, stats, A, const, max_steps, tol):
        """The A-step on the totals of `appearance_terms`; never increases f."""
        if self.free:
            op = MatrixOperator(stats["K_C"], stats["K_C2"])
            return updates.tied_steps(op, A, self.rule, const, max_steps, tol, nonneg=False)
        return updates.eigen_step(stats["K_C"], tl.shape(A)[1], const)

    def parts_operator(self, source, A, streamed: bool):
        """K1 = K_S(A) and, for a free A, K2 = Σ_i Z_iᵀ A AᵀA Aᵀ Z_i, as an operator: held
        (one pass now) or streamed (one pass per product)."""
        AtA = tl.dot(tl.transpose(A), A) if self.free else None
        if streamed:
            return StreamedOperator(source, A, AtA)
        stats = accumulate(source, spatial_gram_terms(A, AtA))
        return MatrixOperator(stats["K_S"], stats.get("K_S2"))

    def parts_step(self, op, P, const, max_steps, tol):
        """Up to ``max_steps`` updates of P ≥ 0 by `rule`, each ending with an exact
        line search on the quartic, so f never increases."""
        return updates.tied_steps(op, P, self.rule, const, max_steps, tol)


class TuckerModel:
    """Free least-squares cores, Z_i ≈ A G_i Pᵀ:
    f(A, P) = Σ_i min_{G_i} ‖Z_i − A G_i Pᵀ‖²_F = Σ‖Z_i‖² − tr(K_S(Q_A) Π_P), P ≥ 0.

    An orthonormal A is found exactly (top eigenvectors); a non-negative A and P are
    updated by `subspace_steps`.
    """

    name = "tucker"

    def __init__(self, appearances: str, rule: str):
        self.appearances, self.rule = appearances, rule

    def _basis(self, A):
        return A if self.appearances == "orthonormal" else B.orthonormal_basis(A)

    def appearance_terms(self, P):
        """Terms of K_C(Q_P) = Σ_i Z_i Π_P Z_iᵀ, the A-step's statistic."""
        return channel_gram_terms(B.orthonormal_basis(P))

    def appearance_step(self, stats, A, const, max_steps, tol):
        """The A-step on K_C(Q_P): exact for an orthonormal A, non-negative least-squares
        updates (never increasing f) for a non-negative one."""
        if self.appearances == "orthonormal":
            return updates.eigen_step(stats["K_C"], tl.shape(A)[1], const)
        op = MatrixOperator(stats["K_C"])
        return updates.subspace_steps(op, A, self.rule, const, max_steps, tol)

    def parts_operator(self, source, A, streamed: bool):
        """K_S(Q_A) = Σ_i Z_iᵀ Q_A Q_Aᵀ Z_i as an operator: held or streamed."""
        Q = self._basis(A)
        if streamed:
            return StreamedOperator(source, Q)
        return MatrixOperator(accumulate(source, spatial_gram_terms(Q))["K_S"])

    def parts_step(self, op, P, const, max_steps, tol):
        """Up to ``max_steps`` non-negative least-squares updates of P (cores re-fitted after
        each), so f never increases."""
        return updates.subspace_steps(op, P, self.rule, const, max_steps, tol)


def make_model(name: str, appearances: str, rule: str):
    """The model object for ``model=name`` (``appearances`` and ``rule`` validated by the
    caller)."""
    models = {"panda": PandAModel, "tucker": TuckerModel}
    if name not in models:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(map(repr, models))}")
    return models[name](appearances, rule)

"""The Gram driver: ``mu``, ``hals`` and ``pgd`` on streamed statistics (DESIGN.md §3).

With R_C = C and an orthonormal A (or any Tucker model) A drops out of the objective, so
the whole fit is P alone on the spatial Gram K_S = Σ_i Z_iᵀ Z_i of the first pass: one
read of the data (:func:`fit_fixed_appearances`). Otherwise each iteration is an A-step on
the C×C statistic K_C(P) (one pass) and up to ``inner_max_iter`` P-updates on K_S(A) (one
more pass, or one per update when S² is too large to hold) (:func:`fit_alternating`).
"""

from __future__ import annotations

import time

import numpy as np

from .data import BatchSource
from .loop import iterate
from .models import make_model
from .operators import MatrixOperator, StreamedOperator
from .params import Config
from .problem import Problem, first_pass, start
from .result import Factorization
from .statistics import accumulate


def fit_gram(source: BatchSource, config: Config, stats: dict | None = None) -> Factorization:
    """Fit with a Gram solver. ``stats``: the first pass's totals when the caller has them
    already (``partial_fit`` sums them over batches); otherwise the first pass runs here."""
    started, passes_before = time.perf_counter(), source.passes
    if stats is None:
        stats = first_pass(source, config)
    problem = start(source, config, stats)
    problem.started, problem.passes_before = started, passes_before
    gram = StreamedOperator(source) if problem.streamed else MatrixOperator(stats["K_S"])
    if problem.appearances_fixed:
        return fit_fixed_appearances(problem, gram)
    return fit_alternating(problem, None if problem.streamed else gram)


def fit_fixed_appearances(problem: Problem, gram) -> Factorization:
    """P alone on the spatial Gram (an operator, held or streamed): each iteration is one
    P-update with an exact line search, so the objective never increases."""
    model = _model(problem.config)

    def one_iteration() -> float:
        step = model.parts_step(gram, problem.P, problem.sq_norm, 1, -np.inf)
        problem.P = step.X
        return step.objective

    return iterate(problem, one_iteration)


def fit_alternating(problem: Problem, initial_gram=None) -> Factorization:
    """A-steps alternating with P-steps. With ``initial_gram`` (the held Σ Z_iᵀ Z_i of the
    first pass) P is first fitted as if A Aᵀ = I: a warm start that costs no pass."""
    config, source = problem.config, problem.source
    model = _model(config)
    inner, tol = config.inner_max_iter, problem.tol
    if initial_gram is not None and not isinstance(config.init, tuple):
        problem.P = model.parts_step(initial_gram, problem.P, problem.sq_norm, inner, tol).X

    def one_iteration() -> float:
        stats = accumulate(source, model.appearance_terms(problem.P))
        problem.A = model.appearance_step(stats, problem.A, problem.sq_norm, inner, tol).X
        op = model.parts_operator(source, problem.A, problem.streamed)
        step = model.parts_step(op, problem.P, problem.sq_norm, inner, tol)
        problem.P = step.X
        return step.objective

    return iterate(problem, one_iteration)


def _model(config: Config):
    return make_model(config.model, config.appearances, config.solver)

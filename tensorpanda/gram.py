"""The Gram driver: ``mu``, ``hals`` and ``pgd`` on streamed statistics (DESIGN.md §3).

With R_C = C and an orthonormal A (or any Tucker model) A drops out of the objective, so
the whole fit is P alone on the spatial Gram K_S = Σ_i Z_iᵀ Z_i of the first pass: one
read of the data (`fit_fixed_appearances`). Otherwise each iteration is an A-step on
the C×C statistic K_C(P) (one pass) and up to ``inner_max_iter`` P-updates on K_S(A) (one
more pass, or one per update when S² is too large to hold) (`fit_alternating`).
"""

from __future__ import annotations

import functools
import time
from contextlib import nullcontext

import numpy as np

from .data import BatchSource
from .host import one_thread
from .loop import iterate
from .models import make_model
from .operators import MatrixOperator, StreamedOperator
from .params import DEFAULT_INNER_MAX_ITER, Config
from .problem import SKETCHED, Problem, first_pass, start
from .result import Factorization
from .sketch import sketched_iterations
from .smoothness import SmoothedOperator, penalty_weight, roughness
from .statistics import accumulate


def fit_gram(source: BatchSource, config: Config, stats: dict | None = None) -> Factorization:
    """Fit with a Gram solver. ``stats``: the first pass's totals when the caller has them
    already (``partial_fit`` sums them over batches); otherwise the first pass runs here."""
    started, passes_before = time.perf_counter(), source.passes
    if stats is None:
        stats = first_pass(source, config)
    problem = start(source, config, stats)
    problem.started, problem.passes_before = started, passes_before
    if problem.route == SKETCHED:
        result = fit_sketched(problem, stats)
    elif problem.streamed:
        gram = StreamedOperator(source)
        result = (fit_fixed_appearances(problem, gram) if problem.appearances_fixed
                  else fit_alternating(problem))
    else:
        gram = MatrixOperator(stats["K_S"])
        result = (fit_fixed_appearances(problem, gram) if problem.appearances_fixed
                  else fit_alternating(problem, gram))
    if config.smoothness:
        _report_prior(result, problem)
    return result


def fit_fixed_appearances(problem: Problem, gram) -> Factorization:
    """P alone on the spatial Gram (an operator, held or streamed): each iteration is one
    P-update with an exact line search, so the objective never increases."""
    model = _model(problem.config)
    gram = _with_prior(gram, problem)

    def one_iteration() -> float:
        with _parts_threads(problem):
            step = model.parts_step(gram, problem.P, problem.sq_norm, 1, -np.inf)
        problem.P = step.X
        return step.objective

    return iterate(problem, one_iteration)


def fit_sketched(problem: Problem, stats: dict) -> Factorization:
    """P alone on a sketch of the spatial Gram, one pass per iteration
    (`tensorpanda.sketch`): large maps, where forming the Gram costs more than the fit."""
    smooth = functools.partial(_with_prior, problem=problem)
    return iterate(problem, sketched_iterations(problem, _model(problem.config), stats, smooth))


def fit_alternating(problem: Problem, initial_gram=None) -> Factorization:
    """A-steps alternating with P-steps. With ``initial_gram`` (the held Σ Z_iᵀ Z_i of the
    first pass) P is first fitted as if A Aᵀ = I: a warm start that costs no pass."""
    config, source = problem.config, problem.source
    model = _model(config)
    inner = config.inner_max_iter or DEFAULT_INNER_MAX_ITER[
        "streamed" if problem.streamed else "held"]
    tol = problem.tol
    if initial_gram is not None and not isinstance(config.init, tuple):
        with one_thread(source.n_positions):  # the held Gram of the first pass
            problem.P = model.parts_step(_with_prior(initial_gram, problem), problem.P,
                                         problem.sq_norm, inner, tol).X

    def one_iteration() -> float:
        stats = accumulate(source, model.appearance_terms(problem.P))
        with one_thread(source.n_channels):
            problem.A = model.appearance_step(stats, problem.A, problem.sq_norm, inner, tol).X
        op = _with_prior(model.parts_operator(source, problem.A, problem.streamed), problem)
        with _parts_threads(problem):
            step = model.parts_step(op, problem.P, problem.sq_norm, inner, tol)
        problem.P = step.X
        return step.objective

    return iterate(problem, one_iteration)


def _parts_threads(problem: Problem):
    """One BLAS thread for P-updates on a held S×S statistic (see ``host.one_thread``); a
    streamed one reads the data at every update and keeps every thread."""
    return nullcontext() if problem.streamed else one_thread(problem.source.n_positions)


def _with_prior(op, problem: Problem):
    """The parts' operator with the smoothness prior folded in (itself when there is none)."""
    if not problem.config.smoothness:
        return op
    return SmoothedOperator(op, _prior_weight(problem), problem.source.spatial_shape)


def _report_prior(result: Factorization, problem: Problem) -> None:
    """``info``: the prior's share of the objective (``penalty`` = λ tr(Pᵀ L P)), the fit's
    error without it (``data_objective``) and λ itself (``smoothness_weight``)."""
    weight = _prior_weight(problem)
    penalty = weight * roughness(result.P, problem.source.spatial_shape)
    result.info.update(penalty=penalty, data_objective=result.info["objective"] - penalty,
                       smoothness_weight=weight)


def _prior_weight(problem: Problem) -> float:
    """λ of the smoothness prior for this fit's data (`penalty_weight`)."""
    return penalty_weight(problem.config.smoothness, problem.sq_norm,
                          problem.source.n_positions)


def _model(config: Config):
    return make_model(config.model, config.appearances, config.solver)

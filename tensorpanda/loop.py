"""The iteration loop every solver shares: one stopping rule, one callback, one result.

An iteration that lowers the objective by at most ``tol · Σ_i ‖Z_i‖²`` ends the fit
(converged); ``max_iter`` iterations end it otherwise, with a :class:`ConvergenceWarning`.
After each iteration ``callback(state)`` receives a :class:`FitState`; a true return value
stops the fit. A non-finite objective or factor raises :class:`DivergenceError`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorly as tl

from . import _backend as B
from .exceptions import ConvergenceWarning, DivergenceError
from .params import STOCHASTIC
from .problem import Problem
from .result import Factorization

logger = logging.getLogger(__name__)


@dataclass
class FitState:
    """What ``callback`` receives after each iteration: the iteration count (1 after the
    first), the objective, the current factors A and P, seconds since the fit started, and
    the reads of the data so far."""

    iteration: int
    objective: float
    A: object
    P: object
    elapsed: float
    n_passes: int


def iterate(problem: Problem, one_iteration: Callable[[], float]) -> Factorization:
    """Run ``one_iteration() -> objective`` until the objective settles, the callback asks
    to stop, or ``max_iter`` iterations have run; then :func:`finish`."""
    is_converged = stopped = False
    for _ in range(problem.config.max_iter):
        stopped = record(problem, one_iteration())
        is_converged = converged(problem)
        if stopped or is_converged:
            break
    return finish(problem, is_converged, stopped)


def record(problem: Problem, objective: float) -> bool:
    """Append an iteration's objective (checking it and the factors are finite); return the
    callback's verdict, True to stop."""
    if not np.isfinite(objective) or not _finite(problem.P) or not _finite(problem.A):
        raise DivergenceError(
            f"the objective or the factors became non-finite at iteration "
            f"{len(problem.history) + 1} of solver {problem.config.solver!r}: "
            + _divergence_cause(problem)
        )
    problem.history.append(objective)
    callback = problem.config.callback
    if callback is None:
        return False
    state = FitState(
        iteration=len(problem.history),
        objective=objective,
        A=problem.A,
        P=problem.P,
        elapsed=time.perf_counter() - problem.started,
        n_passes=problem.n_passes,
    )
    return bool(callback(state))


def converged(problem: Problem) -> bool:
    """The stopping rule: ``f_{k-1} − f_k ≤ tol · Σ_i ‖Z_i‖²`` (False before two
    iterations)."""
    h = problem.history
    return len(h) >= 2 and h[-2] - h[-1] <= problem.tol


def _finite(X) -> bool:
    return bool(np.isfinite(B.scalar(tl.sum(X))))


def _divergence_cause(problem: Problem) -> str:
    """The likely cause of a non-finite fit, and its fix, for the error message."""
    if problem.config.solver in STOCHASTIC:
        rate = problem.config.learning_rate
        named = "the default learning_rate" if rate is None else f"learning_rate={rate:g}"
        return (f"{named} is probably too large; lower it, or use a Gram solver "
                "('hals', 'mu', 'pgd')")
    if B.dtype_name(B.context_of(problem.P)) == "float32":
        return "the data's squares may overflow float32 (pass float64 data or rescale it)"
    return "the data may hold values too large to square (rescale it)"


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside tensorpanda (the
    user's call), however deep the library's own frames go."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1  # level 1: the frame that calls warnings.warn
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def finish(problem: Problem, is_converged: bool, stopped: bool) -> Factorization:
    """The :class:`Factorization` of a finished fit, with ``info``; warns when ``max_iter``
    ended a fit of more than one iteration before it converged."""
    config = problem.config
    # one iteration cannot tell whether the objective settled (the paper optimiser's
    # default is its one epoch): no warning then
    if not (is_converged or stopped) and len(problem.history) > 1:
        warnings.warn(
            ConvergenceWarning(
                f"solver {config.solver!r} stopped at max_iter={config.max_iter} before the "
                f"objective settled to tol={config.tol:g}; raise max_iter or tol"
            ),
            stacklevel=_user_stacklevel(),
        )
    objective = problem.history[-1] if problem.history else np.nan
    info = {
        "n_iter": len(problem.history),
        "objective": objective,
        "converged": is_converged,
        "stopped_by_callback": stopped,
        "solver": config.solver,
        "statistics": "streamed" if problem.streamed else "gram",
        "n_samples": problem.n_samples,
        "sq_norm": problem.sq_norm,
        "n_passes": problem.n_passes,
        "time": time.perf_counter() - problem.started,
        "tol": config.tol,
        **problem.extra_info,
    }
    logger.info(
        "%s/%s: %d iterations, %d passes, relative error %.4g",
        config.model, config.solver, info["n_iter"], info["n_passes"],
        np.sqrt(max(objective, 0) / problem.sq_norm),
    )
    return Factorization(
        A=problem.A,
        P=problem.P,
        model=config.model,
        appearances=config.appearances,
        spatial_shape=problem.source.spatial_shape,
        history=list(problem.history),
        info=info,
    )

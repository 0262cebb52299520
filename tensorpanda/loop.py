"""The iteration loop every solver shares: one stopping rule, one callback, one result.

An iteration that lowers the objective by at most ``tol · Σ_i ‖Z_i‖²`` ends the fit
(converged); ``max_iter`` iterations end it otherwise, with a
[`ConvergenceWarning`][tensorpanda.ConvergenceWarning]. After each iteration ``callback(state)``
receives a `FitState`; it returns a bool (True stops the fit) or None (go on), anything else is a
TypeError. A non-finite objective or factor raises [`DivergenceError`][tensorpanda.DivergenceError],
and so do parts that collapsed to P = 0 (every solver, checked after each iteration: a step too
large for ``adam`` or ``paper`` clamps P to zero for good, and the objective then "converges" at
Σ‖Z_i‖²). A fit that ends with a dead part (an all-zero column of P) warns with a
[`ConvergenceWarning`][tensorpanda.ConvergenceWarning]: the other parts are usable, but that one
carries nothing.
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
from .data import dtype_kind_size
from .exceptions import ConvergenceWarning, DivergenceError
from .params import ADAM_LEARNING_RATE, STOCHASTIC
from .problem import HELD, SKETCHED, STREAMED, Problem
from .result import Factorization

logger = logging.getLogger(__name__)

# info["statistics"]: what the route kept of the data (every fit's problem has a route;
# the stochastic solvers keep no statistics and report the one the cost model chose)
STATISTICS_OF_ROUTE = {HELD: "gram", STREAMED: "streamed", SKETCHED: "sketched"}


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
    to stop, or ``max_iter`` iterations have run; then `finish`."""
    is_converged = stopped = False
    for _ in range(problem.config.max_iter):
        stopped = record(problem, one_iteration())
        is_converged = converged(problem)
        if stopped or is_converged:
            break
    return finish(problem, is_converged, stopped)


def record(problem: Problem, objective: float) -> bool:
    """Append an iteration's objective (checking it and the factors: finite, P ≠ 0); return
    the callback's verdict, True to stop."""
    when = f"at iteration {len(problem.history) + 1}"
    if not np.isfinite(objective):
        raise DivergenceError(
            f"solver={problem.config.solver!r} diverged {when}: the objective became "
            f"non-finite. {_divergence_cause(problem)}"
        )
    check_factors(problem, when)
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
    return _verdict(callback(state))


def check_factors(problem: Problem, when: str) -> None:
    """DivergenceError for non-finite factors, or for parts that collapsed to P = 0 (zero is
    a fixed point of every solver: P ≥ 0 projects it back, gradients through it vanish).
    ``when`` says where ("at iteration 3", "by step 100"). Every solver's check."""
    config = problem.config
    if not (_finite(problem.P) and _finite(problem.A)):
        raise DivergenceError(
            f"solver={config.solver!r} diverged {when}: the factors became non-finite. "
            + _divergence_cause(problem)
        )
    if B.scalar(tl.max(problem.P)) <= 0:
        cause = (f"{_rate_named(config)} is too large; " if config.solver in STOCHASTIC
                 else "")
        raise DivergenceError(
            f"solver={config.solver!r} clamped every entry of P to zero {when} ({cause}"
            f"the projection keeps P at zero for good). {_collapse_fix(problem)}"
        )


def _verdict(value) -> bool:
    """The callback's return value as "stop?": a bool (numpy's and 0-d bool tensors too) or
    None; anything else (an array, a number) is refused rather than guessed."""
    if value is None:
        return False
    if isinstance(value, bool) or (
        tuple(getattr(value, "shape", (0,))) == () and dtype_kind_size(value)[0] == "b"
    ):
        return bool(value)
    shape = getattr(value, "shape", None)
    got = type(value).__name__ + ("" if shape is None else f" of shape {tuple(shape)}")
    raise TypeError(
        f"callback must return a bool (True stops the fit) or None, but it returned a {got}"
    )


def converged(problem: Problem) -> bool:
    """The stopping rule: ``f_{k-1} − f_k ≤ tol · Σ_i ‖Z_i‖²`` (False before two
    iterations)."""
    h = problem.history
    return len(h) >= 2 and h[-2] - h[-1] <= problem.tol


def _finite(X) -> bool:
    return bool(np.isfinite(B.scalar(tl.sum(X))))


def _rate_named(config) -> str:
    rate = config.learning_rate
    if rate is None:
        default = ADAM_LEARNING_RATE if config.solver == "adam" else None
        return "the default learning_rate" + ("" if default is None else f"={default:g}")
    return f"learning_rate={rate:g}"


def _step_fix(config) -> str:
    """Lower the step size (to a tenth), or a solver that needs none."""
    rate = config.learning_rate or (ADAM_LEARNING_RATE if config.solver == "adam" else None)
    trial = "" if rate is None else f" (try learning_rate={rate / 10:g})"
    return (f"Lower it{trial} or use a Gram solver ('hals', 'mu', 'pgd'), which needs no "
            "step size")


def _collapse_fix(problem: Problem) -> str:
    """What to change when parts died: the step size of a stochastic solver, else the start."""
    if problem.config.solver in STOCHASTIC:
        return _step_fix(problem.config)
    return ("Start from another init (e.g. init='nndsvd' or 'random'), fit fewer parts "
            "(a smaller R_S), or try another solver")


def _warn_dead_parts(problem: Problem) -> None:
    """Warn when some columns of P ended all zero: parts that carry nothing (the others are
    usable, so a warning, not an error)."""
    peaks = tl.to_numpy(-B.min_along(-problem.P, axis=0))
    dead = np.flatnonzero(peaks <= 0)
    if len(dead):
        cause = (f" ({_rate_named(problem.config)} may be too large)"
                 if problem.config.solver in STOCHASTIC else "")
        warnings.warn(
            ConvergenceWarning(
                f"solver={problem.config.solver!r} ended with {len(dead)} dead part(s) of "
                f"{len(peaks)}: column(s) {', '.join(map(str, dead))} of P are all zero and "
                f"carry nothing{cause}. {_collapse_fix(problem)}"
            ),
            stacklevel=_user_stacklevel(),
        )


def _divergence_cause(problem: Problem) -> str:
    """The likely cause of a non-finite fit, and its fix, for the error message."""
    config = problem.config
    if config.solver in STOCHASTIC:
        return f"{_rate_named(config)} is probably too large. {_step_fix(config)}"
    if B.dtype_name(B.context_of(problem.P)) == "float32":
        return "The data's squares may overflow float32: pass float64 data or rescale it"
    return "The data may hold values too large to square: rescale it"


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside tensorpanda (the
    user's call), however deep the library's own frames go."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1  # level 1: the frame that calls warnings.warn
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def finish(problem: Problem, is_converged: bool, stopped: bool) -> Factorization:
    """The [`Factorization`][tensorpanda.Factorization] of a finished fit, with ``info``; warns when
    ``max_iter`` ended a fit of more than one iteration before it converged."""
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
    _warn_dead_parts(problem)
    objective = problem.history[-1] if problem.history else np.nan
    info = {
        "n_iter": len(problem.history),
        "objective": objective,
        "converged": is_converged,
        "stopped_by_callback": stopped,
        "solver": config.solver,
        "statistics": STATISTICS_OF_ROUTE[problem.route],
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

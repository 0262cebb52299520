"""Fitting: parameter validation, the alternating loop of the Gram solvers, and ``tucker2``.

One stopping rule for every solver: an iteration that lowers the objective by at most
``tol · Σ_i ‖Z_i‖²`` ends the fit (converged); ``max_iter`` iterations end it otherwise, with a
:class:`ConvergenceWarning`. One hook: ``callback(state)`` after each iteration, where a
true return value stops the fit.

An *iteration* updates every factor that affects the objective once: with R_C = C and an
orthonormal A (or a Tucker model), A drops out of the objective (A Aᵀ = I, or Π_A = I), so an
iteration is one update of P on the S×S Gram, computed in a single pass over the data. With
R_C < C an iteration is an exact A-step (one pass for the C×C statistic) followed by up to
``inner_max_iter`` P-updates on K_S(A) (one more pass).
"""

from __future__ import annotations

import logging
import numbers
import os
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import tensorly as tl

from . import _backend as B
from . import init as initialisation
from .data import BatchSource, as_source
from .exceptions import ConvergenceWarning, DivergenceError
from .models import APPEARANCES, make_model
from .operators import MatrixOperator, StreamedOperator
from .result import MODELS, Factorization
from .statistics import channel_scatter, spatial_gram_terms, sq_norm, sweep
from .updates import RULES

logger = logging.getLogger(__name__)

STOCHASTIC = ("adam", "paper")
SOLVERS = RULES + STOCHASTIC
STATISTICS = ("auto", "gram", "streamed")
# The S×S statistic is held in memory up to this size; beyond it the solver streams K·X.
GRAM_MAX_BYTES = 2 * 2**30
# max_iter=None means: iterations for the Gram solvers, epochs for the stochastic ones (the
# original optimiser makes one pass of N single-sample steps).
DEFAULT_MAX_ITER = {"mu": 500, "hals": 500, "pgd": 500, "adam": 50, "paper": 1}


@dataclass(frozen=True)
class Config:
    """Validated fitting parameters (see :func:`tucker2` for their meaning).

    A frozen record of the arguments of :func:`tucker2`; build it, then pass it through
    :func:`validate`, which checks every field and fills in ``max_iter``.

    Parameters
    ----------
    rank : (int or None, int)
        (R_C, R_S): number of appearances and of parts; ``R_C=None`` means all C channels.
    model : {"panda", "tucker"}
        PandA's tied core, or Tucker-2 with free least-squares cores.
    solver : {"hals", "mu", "pgd", "adam", "paper"}
        The update rule (see ``docs/solvers.md``).
    init : {"svd", "nndsvd", "random"} or (A, P)
        The start: a spectral or random initialisation, or initial factors (either may be
        None).
    appearances : {"orthonormal", "free", "nonnegative"}
        The constraint on A.
    tol : float
        Stop when an iteration lowers the objective by at most ``tol · Σ‖Z_i‖²``.
    max_iter : int, optional
        Most iterations (epochs for ``adam`` and ``paper``); None means the solver's default
        (``DEFAULT_MAX_ITER``), filled in by :func:`validate`.
    inner_max_iter : int
        Most P-updates (and inner A-updates) per iteration when R_C < C.
    statistics : {"auto", "gram", "streamed"}
        Hold the S×S Gram, or stream ``K X`` products (auto: hold it up to 2 GiB).
    batch_size : int, optional
        Samples per batch when the data is an array.
    basis_samples : int
        Samples whose channel scatter gives A when R_C = C.
    learning_rate : float, optional
        Step size of ``adam`` and ``paper``.
    random_state : None, int or numpy RandomState
        Seed of the random initialisations.
    callback : callable, optional
        ``callback(state)`` after each iteration, with a :class:`FitState`; a true return
        value stops the fit.

    Examples
    --------
    >>> from tensorpanda.solver import Config, validate
    >>> config = Config(rank=(None, 4), solver="mu")
    >>> config.max_iter is None, validate(config).max_iter
    (True, 500)
    """

    rank: tuple
    model: str = "panda"
    solver: str = "hals"
    init: object = "svd"
    appearances: str = "orthonormal"
    tol: float = 1e-6
    max_iter: int | None = None
    inner_max_iter: int = 20
    statistics: str = "auto"
    batch_size: int | None = None
    basis_samples: int = 1000
    learning_rate: float | None = None
    random_state: object = None
    callback: object = None


def _choice(name: str, value, allowed) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, allowed))}")


def _positive_int(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def validate(config: Config) -> Config:
    """Check every parameter up front; return the config with ``rank`` normalised.

    Nothing is read from the data: the ranks are checked against its shape later, by
    :func:`resolve_rank`. The returned config has ``rank`` as a tuple ``(R_C, R_S)`` and
    ``max_iter`` set (the solver's default from ``DEFAULT_MAX_ITER`` when it was None).

    Parameters
    ----------
    config : Config
        The parameters as given by the user.

    Returns
    -------
    Config
        A new config with ``rank`` a tuple and ``max_iter`` an int.

    Raises
    ------
    ValueError
        When a choice is unknown (model, solver, statistics, init, appearances for this
        model), when ``rank`` is not a pair of positive integers (R_C may be None), when a
        count or ``tol`` or ``learning_rate`` is out of range, or when ``solver="paper"`` is
        asked for anything but ``model="panda"`` with ``appearances="free"``.
    TypeError
        When ``callback`` is not callable or ``random_state`` is not None, an int or a
        numpy RandomState.

    Examples
    --------
    >>> from tensorpanda.solver import Config, validate
    >>> config = validate(Config(rank=[None, 4], solver="adam"))
    >>> config.rank, config.max_iter
    ((None, 4), 50)
    >>> validate(Config(rank=4))
    Traceback (most recent call last):
    ...
    ValueError: rank must be a pair (R_C, R_S): appearances and parts; ...
    """
    _choice("model", config.model, MODELS)
    _choice("solver", config.solver, SOLVERS)
    _choice("statistics", config.statistics, STATISTICS)
    allowed = APPEARANCES[config.model]
    if config.appearances not in allowed:
        raise ValueError(
            f"appearances={config.appearances!r} is not available for model="
            f"{config.model!r}; choose one of {', '.join(map(repr, allowed))}"
        )
    if isinstance(config.init, str):
        _choice("init", config.init, initialisation.INITS)
    elif not (isinstance(config.init, (tuple, list)) and len(config.init) == 2):
        raise ValueError(
            "init must be 'svd', 'nndsvd', 'random' or a pair (A, P) of initial factors "
            f"(either may be None), got {type(config.init).__name__}"
        )
    rank = config.rank
    if isinstance(rank, numbers.Integral) or not isinstance(rank, (tuple, list)) or len(rank) != 2:
        raise ValueError(
            f"rank must be a pair (R_C, R_S): appearances and parts; R_C may be None for all "
            f"channels. Got {rank!r}"
        )
    _positive_int("rank R_C", rank[0], allow_none=True)
    _positive_int("rank R_S", rank[1])
    if not isinstance(config.tol, numbers.Real) or not config.tol >= 0:
        raise ValueError(f"tol must be a non-negative number, got {config.tol!r}")
    _positive_int("max_iter", config.max_iter, allow_none=True)
    _positive_int("inner_max_iter", config.inner_max_iter)
    _positive_int("batch_size", config.batch_size, allow_none=True)
    _positive_int("basis_samples", config.basis_samples)
    if config.learning_rate is not None and not (
        isinstance(config.learning_rate, numbers.Real) and config.learning_rate > 0
    ):
        raise ValueError(f"learning_rate must be a positive number, got {config.learning_rate!r}")
    if config.callback is not None and not callable(config.callback):
        raise TypeError("callback must be callable as callback(state) -> bool")
    if config.solver == "paper" and (config.model, config.appearances) != ("panda", "free"):
        raise ValueError(
            "solver='paper' reproduces the original PandA optimiser, which fits "
            "model='panda' with a free A: pass appearances='free' (or choose another solver)"
        )
    B.random_state(config.random_state)  # raises TypeError on a bad seed
    max_iter = config.max_iter or DEFAULT_MAX_ITER[config.solver]
    # a list [A, P] means the same as a tuple: later code tests for a user-given pair
    init = tuple(config.init) if isinstance(config.init, list) else config.init
    return Config(**{**config.__dict__, "rank": (rank[0], rank[1]), "max_iter": max_iter,
                     "init": init})


def resolve_rank(config: Config, n_channels: int, n_positions: int) -> tuple[int, int]:
    """(R_C, R_S) with R_C = None read as C, checked against the data's modes.

    Parameters
    ----------
    config : Config
        A validated config (see :func:`validate`).
    n_channels : int
        C, the number of channels of the data.
    n_positions : int
        S, the number of spatial positions of the data (H·W).

    Returns
    -------
    tuple of (int, int)
        (R_C, R_S) as plain ints.

    Raises
    ------
    ValueError
        When R_C exceeds C or R_S exceeds S.

    Examples
    --------
    >>> from tensorpanda.solver import Config, resolve_rank
    >>> resolve_rank(Config(rank=(None, 3)), n_channels=8, n_positions=36)
    (8, 3)
    >>> resolve_rank(Config(rank=(10, 3)), n_channels=8, n_positions=36)
    Traceback (most recent call last):
    ...
    ValueError: rank R_C = 10 exceeds the number of channels C = 8
    """
    R_C = n_channels if config.rank[0] is None else int(config.rank[0])
    R_S = int(config.rank[1])
    if R_C > n_channels:
        raise ValueError(f"rank R_C = {R_C} exceeds the number of channels C = {n_channels}")
    if R_S > n_positions:
        raise ValueError(f"rank R_S = {R_S} exceeds the number of positions S = {n_positions}")
    return R_C, R_S


@dataclass
class FitState:
    """What ``callback`` receives after each iteration.

    Parameters
    ----------
    iteration : int
        The number of iterations run so far (1 after the first).
    objective : float
        The objective Σ_i ‖Z_i − Ẑ_i‖² after this iteration.
    A : backend tensor
        The current appearances (C×R_C).
    P : backend tensor
        The current parts (S×R_S).
    elapsed : float
        Seconds since the fit started.
    n_passes : int
        How many times the fit has read the data so far.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> Z = np.random.default_rng(0).random((20, 4, 3, 3))
    >>> states = []
    >>> fit = tp.tucker2(Z, rank=(None, 2), callback=lambda s: states.append(s) or s.iteration == 3)
    >>> [s.iteration for s in states], states[-1].P.shape, fit.info["stopped_by_callback"]
    ([1, 2, 3], (9, 2), True)
    >>> states[-1].objective <= states[0].objective
    True
    """

    iteration: int
    objective: float
    A: object
    P: object
    elapsed: float
    n_passes: int


@dataclass
class Problem:
    """A fit in progress: layout, constants from the first pass, and the current factors.

    Built by :func:`start`; the solvers update ``A``, ``P`` and ``history`` in place, and
    :func:`finish` turns it into a :class:`~tensorpanda.result.Factorization`.

    Parameters
    ----------
    config : Config
        The validated parameters of the fit.
    source : BatchSource
        The data, read in batches.
    rank : tuple of (int, int)
        (R_C, R_S), resolved against the data (see :func:`resolve_rank`).
    sq_norm : float
        Σ_i ‖Z_i‖², the scale of the stopping rule.
    n_samples : int
        N, the number of samples.
    streamed : bool
        Whether the S×S statistic is streamed rather than held (see :func:`use_streamed`).
    A : backend tensor, optional
        The current appearances (C×R_C).
    P : backend tensor, optional
        The current parts (S×R_S).
    history : list of float
        The objective after each iteration so far.
    started : float
        ``time.perf_counter()`` when the fit started.
    passes_before : int
        ``source.passes`` when the fit started (passes made for earlier fits do not count).
    extra_info : dict
        Solver-specific entries added to the result's ``info``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import as_source
    >>> from tensorpanda.solver import Config, first_pass, start, validate
    >>> source = as_source(np.random.default_rng(0).random((20, 4, 3, 3)))
    >>> config = validate(Config(rank=(None, 2)))
    >>> problem = start(source, config, first_pass(source, config))
    >>> problem.rank, problem.A.shape, problem.P.shape, problem.n_samples
    ((4, 2), (4, 4), (9, 2), 20)
    >>> problem.appearances_fixed, problem.streamed, problem.history
    (True, False, [])
    """

    config: Config
    source: BatchSource
    rank: tuple
    sq_norm: float
    n_samples: int
    streamed: bool
    A: object = None
    P: object = None
    history: list = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    passes_before: int = 0
    extra_info: dict = field(default_factory=dict)

    @property
    def appearances_fixed(self) -> bool:
        """A drops out of the objective: R_C = C with A orthonormal, or any Tucker model
        (a full-rank A spans every channel).

        Then an iteration is one P-update on the spatial Gram (see
        :func:`run_fixed_appearances`); otherwise A and P alternate.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.data import as_source
        >>> from tensorpanda.solver import Config, first_pass, start, validate
        >>> source = as_source(np.random.default_rng(0).random((20, 4, 3, 3)))
        >>> config = validate(Config(rank=(2, 2)))
        >>> start(source, config, first_pass(source, config)).appearances_fixed
        False
        """
        full = self.rank[0] == self.source.n_channels
        return full and (self.config.model == "tucker" or self.config.appearances == "orthonormal")

    @property
    def tol(self) -> float:
        """The absolute stopping threshold ``tol · Σ_i ‖Z_i‖²``.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.data import as_source
        >>> from tensorpanda.solver import Config, first_pass, start, validate
        >>> Z = np.random.default_rng(0).random((20, 4, 3, 3))
        >>> source = as_source(Z)
        >>> config = validate(Config(rank=(None, 2), tol=1e-3))
        >>> problem = start(source, config, first_pass(source, config))
        >>> bool(np.isclose(problem.tol, 1e-3 * (Z**2).sum()))
        True
        """
        return self.config.tol * self.sq_norm

    @property
    def n_passes(self) -> int:
        """How many times this fit has read the data (earlier fits on the source excluded).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.data import as_source
        >>> from tensorpanda.solver import Config, first_pass, start, validate
        >>> source = as_source(np.random.default_rng(0).random((20, 4, 3, 3)))
        >>> config = validate(Config(rank=(None, 2)))
        >>> start(source, config, first_pass(source, config)).n_passes
        1
        """
        return self.source.passes - self.passes_before


def use_streamed(config: Config, n_positions: int, context: dict) -> bool:
    """Whether the fit streams ``K X`` products instead of holding the S×S Gram.

    ``statistics="gram"`` or ``"streamed"`` decides; with ``"auto"`` the Gram is held when
    its S² entries of the data's dtype take at most ``GRAM_MAX_BYTES`` (2 GiB).

    Parameters
    ----------
    config : Config
        The fit's parameters (only ``statistics`` is read).
    n_positions : int
        S, the number of spatial positions.
    context : dict
        The backend context of the factors (``BatchSource.context``), with a ``"dtype"``.

    Returns
    -------
    bool
        True to stream, False to hold the Gram.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.solver import Config, use_streamed
    >>> context = {"dtype": np.float32}
    >>> use_streamed(Config(rank=(None, 8)), 64 * 64, context)
    False
    >>> use_streamed(Config(rank=(None, 8)), 256 * 256, context)
    True
    >>> use_streamed(Config(rank=(None, 8), statistics="streamed"), 64, context)
    True
    """
    if config.statistics != "auto":
        return config.statistics == "streamed"
    itemsize = np.dtype(B.dtype_name(context)).itemsize
    return n_positions**2 * itemsize > GRAM_MAX_BYTES


def first_pass(source: BatchSource, config: Config) -> dict:
    """The statistics every Gram fit starts from: Σ‖Z_i‖², the spatial Gram Σ Z_iᵀ Z_i
    (unless S² is too large to hold) and, where A is read from it, the channel scatter of
    the first ``basis_samples`` samples. The choices are made on the first batch, since an
    iterable source reveals its shape only then.

    One pass over the data.

    Parameters
    ----------
    source : BatchSource
        The data.
    config : Config
        A validated config.

    Returns
    -------
    dict
        ``"sq_norm"`` (Σ‖Z_i‖²), ``"n_samples"``, ``"head_samples"``, and where they apply
        ``"K"`` (the S×S spatial Gram) and ``"head_scatter"`` (the C×C channel scatter of
        the first ``head_samples`` samples).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import as_source
    >>> from tensorpanda.solver import Config, first_pass, validate
    >>> Z = np.random.default_rng(0).random((20, 4, 3, 3))
    >>> stats = first_pass(as_source(Z), validate(Config(rank=(None, 2))))
    >>> sorted(stats)
    ['K', 'head_samples', 'head_scatter', 'n_samples', 'sq_norm']
    >>> stats["K"].shape, stats["n_samples"], bool(np.isclose(stats["sq_norm"], (Z**2).sum()))
    ((9, 9), 20, True)
    """

    def terms(Z):
        S = tl.shape(Z)[2]
        if use_streamed(config, S, source.context):
            return {"sq_norm": sq_norm(Z)}
        return spatial_gram_terms()(Z)

    def head_terms(Z):
        return {"scatter": channel_scatter(Z)} if _needs_scatter(config, tl.shape(Z)[1]) else {}

    return sweep(source, terms, head=config.basis_samples, head_terms=head_terms)


def _needs_scatter(config: Config, n_channels: int) -> bool:
    """Whether A is read from the channel scatter: as the basis when R_C = C, or as the
    start of an A that is not re-computed exactly at each iteration."""
    if isinstance(config.init, tuple) and config.init[0] is not None:
        return False
    full = config.rank[0] is None or config.rank[0] == n_channels
    if config.appearances == "orthonormal":
        return full
    if config.appearances == "nonnegative" and full:
        return False  # A = I
    return config.init != "random"


def start(source: BatchSource, config: Config, stats: dict, initialise: bool = True) -> Problem:
    """Check the first pass, resolve ranks, and (unless told not to) initialise the factors.

    Parameters
    ----------
    source : BatchSource
        The data (its layout is known after the first pass).
    config : Config
        A validated config.
    stats : dict
        The statistics of the first pass (see :func:`first_pass`); ``"sq_norm"`` and
        ``"n_samples"`` are needed, and ``"K"`` and ``"head_scatter"`` to initialise.
    initialise : bool
        Whether to set ``A`` and ``P`` from ``config.init``; when False they stay None for
        the caller to set.

    Returns
    -------
    Problem
        The fit in progress, with an empty history.

    Raises
    ------
    ValueError
        When a rank exceeds the data's modes, when the data is all zeros, or when a user's
        initial factor has the wrong shape or sign.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import as_source
    >>> from tensorpanda.solver import Config, first_pass, start, validate
    >>> source = as_source(np.random.default_rng(0).random((20, 4, 3, 3)))
    >>> config = validate(Config(rank=(2, 3)))
    >>> problem = start(source, config, first_pass(source, config))
    >>> problem.A.shape, problem.P.shape, bool(problem.P.min() >= 0)
    ((4, 2), (9, 3), True)
    >>> start(source, config, first_pass(source, config), initialise=False).P is None
    True
    """
    C, S = source.n_channels, source.n_positions
    rank = resolve_rank(config, C, S)
    if B.scalar(stats["sq_norm"]) <= 0:
        raise ValueError("the data is all zeros: there is nothing to factorise")
    streamed = use_streamed(config, S, source.context)
    problem = Problem(
        config=config,
        source=source,
        rank=rank,
        sq_norm=B.scalar(stats["sq_norm"]),
        n_samples=int(stats["n_samples"]),
        streamed=streamed,
    )
    if initialise:
        _initialise(problem, stats)
    return problem


def _initialise(problem: Problem, stats: dict) -> None:
    config, ctx = problem.config, problem.source.context
    rng = B.random_state(config.random_state)
    C, S = problem.source.n_channels, problem.source.n_positions
    R_C, R_S = problem.rank
    user_A, user_P = config.init if not isinstance(config.init, str) else (None, None)
    method = config.init if isinstance(config.init, str) else "svd"
    nonneg_A = config.appearances == "nonnegative"
    if user_A is not None:
        problem.A = initialisation.check_user_factor(
            "A", user_A, (C, R_C), nonneg_A, ctx, orthonormal=config.appearances == "orthonormal"
        )
    elif nonneg_A and R_C == C:
        problem.A = tl.eye(C, **ctx)  # any invertible A spans every channel; I is the simplest
    else:
        problem.A = initialisation.appearances_from_scatter(
            "svd" if R_C == C else method, stats.get("head_scatter"), (C, R_C), nonneg_A, rng, ctx
        )
    if user_P is not None:
        problem.P = initialisation.check_user_factor("P", user_P, (S, R_S), True, ctx)
    else:
        gram = StreamedOperator(problem.source) if problem.streamed else stats.get("K")
        problem.P = initialisation.parts_from_gram(method, gram, (S, R_S), rng, ctx)


def record(problem: Problem, objective: float) -> bool:
    """Append an iteration's objective; True when the fit should stop (callback).

    Calls ``config.callback`` with a :class:`FitState` when there is one.

    Parameters
    ----------
    problem : Problem
        The fit in progress; its ``history`` grows by one.
    objective : float
        The objective after the iteration just run.

    Returns
    -------
    bool
        The callback's verdict: True to stop; False when there is no callback.

    Raises
    ------
    DivergenceError
        When the objective or a factor is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import as_source
    >>> from tensorpanda.solver import Config, first_pass, record, start, validate
    >>> source = as_source(np.random.default_rng(0).random((20, 4, 3, 3)))
    >>> config = validate(Config(rank=(None, 2), callback=lambda s: s.objective < 4))
    >>> problem = start(source, config, first_pass(source, config))
    >>> record(problem, 5.0), record(problem, 3.0), problem.history
    (False, True, [5.0, 3.0])
    >>> record(problem, float("nan"))
    Traceback (most recent call last):
    ...
    tensorpanda.exceptions.DivergenceError: the objective or the factors became non-finite ...
    """
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


def _finite(X) -> bool:
    return bool(np.isfinite(B.scalar(tl.sum(X))))


def converged(problem: Problem) -> bool:
    """Whether the last iteration lowered the objective by at most ``problem.tol``.

    The stopping rule shared by every solver: ``f_{k-1} − f_k ≤ tol · Σ_i ‖Z_i‖²``. False
    until two iterations have run.

    Parameters
    ----------
    problem : Problem
        The fit in progress (its ``history`` is read).

    Returns
    -------
    bool
        True when the fit has converged.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import as_source
    >>> from tensorpanda.solver import Config, converged, first_pass, start, validate
    >>> source = as_source(np.random.default_rng(0).random((20, 4, 3, 3)))
    >>> config = validate(Config(rank=(None, 2), tol=1e-3))
    >>> problem = start(source, config, first_pass(source, config))
    >>> round(problem.tol, 3)
    0.254
    >>> problem.history = [10.0]
    >>> converged(problem)
    False
    >>> problem.history = [10.0, 9.0, 8.9]
    >>> converged(problem)
    True
    """
    h = problem.history
    return len(h) >= 2 and h[-2] - h[-1] <= problem.tol


def iterate(problem: Problem, one_iteration) -> Factorization:
    """Run ``one_iteration() -> objective`` until the objective settles (``tol``), the
    callback asks to stop, or ``max_iter`` iterations have run.

    Parameters
    ----------
    problem : Problem
        The fit in progress; ``one_iteration`` updates its factors.
    one_iteration : callable
        ``one_iteration() -> float``: runs one iteration (one epoch for the stochastic
        solvers) and returns the objective after it.

    Returns
    -------
    Factorization
        The fit (see :func:`finish`).

    Raises
    ------
    DivergenceError
        When an objective or a factor becomes non-finite.

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` iterations end the fit before it converged.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import as_source
    >>> from tensorpanda.solver import Config, first_pass, iterate, start, validate
    >>> source = as_source(np.random.default_rng(0).random((20, 4, 3, 3)))
    >>> config = validate(Config(rank=(None, 2)))
    >>> problem = start(source, config, first_pass(source, config))
    >>> objectives = iter([5.0, 4.0, 4.0, 3.0])
    >>> fit = iterate(problem, lambda: next(objectives))
    >>> fit.history, fit.info["converged"]
    ([5.0, 4.0, 4.0], True)
    """
    is_converged = stopped = False
    for _ in range(problem.config.max_iter):
        stopped = record(problem, one_iteration())
        is_converged = converged(problem)
        if stopped or is_converged:
            break
    return finish(problem, is_converged, stopped)


def run_fixed_appearances(problem: Problem, gram) -> Factorization:
    """R_C = C: P alone on the spatial Gram (held, or streamed by ``StreamedOperator``).

    A drops out of the objective (see :attr:`Problem.appearances_fixed`): each iteration
    is one update of P on K_S = Σ_i Z_iᵀ Z_i, with an exact line search, so the objective
    never increases.

    Parameters
    ----------
    problem : Problem
        A started problem with ``appearances_fixed`` true.
    gram : array of shape (S, S) or StreamedOperator
        The spatial Gram ``stats["K"]`` of the first pass, or, when ``problem.streamed``,
        an operator that applies it by a pass over the data.

    Returns
    -------
    Factorization
        The fit.

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` iterations end the fit before it converged.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import as_source
    >>> from tensorpanda.solver import (
    ...     Config, first_pass, run_fixed_appearances, start, validate)
    >>> source = as_source(np.random.default_rng(0).random((20, 4, 3, 3)))
    >>> config = validate(Config(rank=(None, 2), tol=1e-4))
    >>> stats = first_pass(source, config)
    >>> fit = run_fixed_appearances(start(source, config, stats), stats["K"])
    >>> fit.info["converged"], fit.info["n_passes"], bool(np.all(np.diff(fit.history) <= 0))
    (True, 1, True)
    """
    config = problem.config
    model = make_model(config.model, config.appearances, config.solver)
    op = gram if problem.streamed else MatrixOperator(gram)

    def one_iteration() -> float:
        step = model.parts_step(op, problem.P, problem.sq_norm, 1, -np.inf)
        problem.P = step.X
        return step.objective

    return iterate(problem, one_iteration)


def run_alternating(problem: Problem, initial_gram=None) -> Factorization:
    """R_C < C (or a free A): exact or inner A-steps alternating with P-steps.

    Each iteration is an A-step on the C×C statistic K_C(P) (one pass), then up to
    ``inner_max_iter`` P-updates on K_S(A) (one more pass, or one per update when streamed).

    Parameters
    ----------
    problem : Problem
        A started problem.
    initial_gram : array of shape (S, S), optional
        The plain spatial Gram Σ Z_iᵀ Z_i of the first pass: when given (and ``init`` is
        not a pair of factors), P is first fitted on it as if A Aᵀ = I, a warm start that
        costs no pass.

    Returns
    -------
    Factorization
        The fit.

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` iterations end the fit before it converged.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import as_source
    >>> from tensorpanda.solver import Config, first_pass, run_alternating, start, validate
    >>> source = as_source(np.random.default_rng(0).random((20, 4, 3, 3)))
    >>> config = validate(Config(rank=(2, 2), tol=1e-4))
    >>> stats = first_pass(source, config)
    >>> fit = run_alternating(start(source, config, stats), stats["K"])
    >>> fit.A.shape, fit.info["converged"], bool(np.all(np.diff(fit.history) <= 1e-9))
    ((4, 2), True, True)
    """
    config, source = problem.config, problem.source
    model = make_model(config.model, config.appearances, config.solver)
    inner, tol = config.inner_max_iter, problem.tol
    if initial_gram is not None and not isinstance(config.init, tuple):
        # warm start: P fitted as if A A^T = I, on the Gram the first pass already holds
        start_op = MatrixOperator(initial_gram)
        problem.P = model.parts_step(start_op, problem.P, problem.sq_norm, inner, tol).X

    def one_iteration() -> float:
        stats = sweep(source, model.appearance_terms(problem.P))
        problem.A = model.appearance_step(stats, problem.A, problem.sq_norm, inner, tol).X
        op = model.parts_operator(source, problem.A, problem.streamed, sweep)
        step = model.parts_step(op, problem.P, problem.sq_norm, inner, tol)
        problem.P = step.X
        return step.objective

    return iterate(problem, one_iteration)


def _divergence_cause(problem: Problem) -> str:
    """The likely cause of a non-finite fit, and its fix, for the error message."""
    if problem.config.solver in ("paper", "adam"):
        rate = problem.config.learning_rate
        named = "the default learning_rate" if rate is None else f"learning_rate={rate:g}"
        return (f"{named} is probably too large; lower it, or use a Gram solver "
                "('hals', 'mu', 'pgd')")
    if B.dtype_name(B.context_of(problem.P)) == "float32":
        return "the data's squares may overflow float32 (pass float64 data or rescale it)"
    return "the data may hold values too large to square (rescale it)"


def _user_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn`` called by the caller of this function that
    points at the first frame outside tensorpanda (the user's call), however deep it is."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1  # level 1: the frame that calls warnings.warn
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def finish(problem: Problem, is_converged: bool, stopped: bool) -> Factorization:
    """Turn a fit in progress into a :class:`~tensorpanda.result.Factorization`.

    Fills ``info`` (``n_iter``, ``objective``, ``converged``, ``stopped_by_callback``,
    ``solver``, ``statistics``, ``n_samples``, ``sq_norm``, ``n_passes``, ``time``, ``tol``
    and the solver's ``extra_info``) and logs a one-line summary.

    Parameters
    ----------
    problem : Problem
        The fit in progress.
    is_converged : bool
        Whether the stopping rule ended the fit.
    stopped : bool
        Whether the callback ended the fit.

    Returns
    -------
    Factorization
        The factors, the objective history and ``info``.

    Warns
    -----
    ConvergenceWarning
        When neither ``is_converged`` nor ``stopped``: ``max_iter`` ended the fit (not
        after a single iteration, which cannot tell whether the objective settled).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import as_source
    >>> from tensorpanda.solver import Config, finish, first_pass, start, validate
    >>> source = as_source(np.random.default_rng(0).random((20, 4, 3, 3)))
    >>> config = validate(Config(rank=(None, 2)))
    >>> problem = start(source, config, first_pass(source, config))
    >>> problem.history = [5.0, 4.0]
    >>> fit = finish(problem, is_converged=True, stopped=False)
    >>> fit.info["n_iter"], fit.info["objective"], fit.info["statistics"], fit.P.shape
    (2, 4.0, 'gram', (9, 2))
    """
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


def fit(source: BatchSource, config: Config) -> Factorization:
    """Fit ``config`` on ``source`` (a validated config; the estimator and ``tucker2`` share
    this path).

    The stochastic solvers (``adam``, ``paper``) go to
    :func:`~tensorpanda.stochastic.fit_stochastic`; the Gram solvers make the first pass,
    then run :func:`run_fixed_appearances` when A drops out of the objective, and
    :func:`run_alternating` otherwise.

    Parameters
    ----------
    source : BatchSource
        The data.
    config : Config
        A validated config (see :func:`validate`).

    Returns
    -------
    Factorization
        The fit.

    Raises
    ------
    ValueError
        When the ranks exceed the data's modes or the data is all zeros (and see
        :func:`~tensorpanda.stochastic.fit_stochastic`).
    DivergenceError
        When the objective or the factors become non-finite.

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` iterations end the fit before it converged.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import as_source
    >>> from tensorpanda.solver import Config, fit, validate
    >>> Z = np.random.default_rng(0).random((20, 4, 3, 3))
    >>> result = fit(as_source(Z), validate(Config(rank=(2, 2), tol=1e-4)))
    >>> result.A.shape, result.P.shape, result.info["converged"], result.info["solver"]
    ((4, 2), (9, 2), True, 'hals')
    """
    if config.solver in STOCHASTIC:
        from .stochastic import fit_stochastic

        return fit_stochastic(source, config)
    started, passes_before = time.perf_counter(), source.passes
    stats = first_pass(source, config)
    problem = start(source, config, stats)
    problem.started, problem.passes_before = started, passes_before
    gram = StreamedOperator(source) if problem.streamed else stats.get("K")
    if problem.appearances_fixed:
        return run_fixed_appearances(problem, gram)
    return run_alternating(problem, None if problem.streamed else gram)


def tucker2(
    data,
    rank,
    *,
    model: str = "panda",
    solver: str = "hals",
    init="svd",
    appearances: str = "orthonormal",
    tol: float = 1e-6,
    max_iter: int | None = None,
    inner_max_iter: int = 20,
    statistics: str = "auto",
    batch_size: int | None = None,
    basis_samples: int = 1000,
    learning_rate: float | None = None,
    random_state=None,
    callback=None,
) -> Factorization:
    r"""Semi-nonnegative Tucker-2 of a set of feature maps.

    Fits appearances ``A`` (C×R_C) and non-negative parts ``P`` (S×R_S) to samples
    ``Z_i`` (C×S). With ``model="panda"`` (the default, PandA's tied core)

    .. math:: \min_{A,\,P \ge 0} \sum_i \lVert Z_i - A A^\top Z_i P P^\top \rVert_F^2 ,

    and with ``model="tucker"`` the classic Tucker-2 with free cores
    :math:`\min_{A,\,P \ge 0,\,G_i} \sum_i \lVert Z_i - A G_i P^\top\rVert_F^2`.

    Parameters
    ----------
    data : array of shape (N, C, S) or (N, C, H, W), callable or iterable of batches
        Any TensorLy backend tensor or a numpy memmap; or a callable returning a fresh
        iterable of batches; or an iterable of batches (e.g. an adapter's ``features``).
        The data is read in batches: it never has to fit in memory.
    rank : (int or None, int)
        (R_C, R_S): number of appearances and of parts. ``R_C=None`` means all C channels.
    model : {"panda", "tucker"}
        ``panda``: PandA's tied core ``A Aᵀ Z_i P Pᵀ``; ``tucker``: free least-squares cores
        ``G_i`` (see ``docs/solvers.md``).
    solver : {"hals", "mu", "pgd", "adam", "paper"}
        ``hals`` column-wise updates (the default: fewest iterations), ``mu``
        multiplicative updates, ``pgd`` projected gradient, all on the S×S / C×C statistics
        (see ``docs/solvers.md``); ``adam`` minibatch autograd steps (pytorch and jax
        backends); ``paper`` the original optimiser.
    init : {"svd", "nndsvd", "random"} or (A, P)
        ``svd`` (the default): A from the channel scatter's eigenvectors, P from the
        magnitudes of the spatial Gram's eigenvectors; ``nndsvd``: each eigenvector's larger
        signed part; ``random``: orthonormalised Gaussian A, uniform P; or initial factors
        ``(A, P)`` of shapes (C, R_C) and (S, R_S), either of which may be None.
    appearances : {"orthonormal", "free", "nonnegative"}
        Constraint on A: PandA allows orthonormal or free, Tucker orthonormal or
        non-negative (fully non-negative Tucker-2).
    tol : float
        Stop when an iteration lowers the objective by at most ``tol · Σ‖Z_i‖²``.
    max_iter : int, optional
        Most iterations (a :class:`ConvergenceWarning` if reached). Default: 500 for the
        Gram solvers; for ``adam`` and ``paper`` an iteration is an epoch, default 50 and 1
        (the original makes one pass of N single-sample steps).
    inner_max_iter : int
        Most P-updates per iteration when R_C < C (each is cheap: no data pass when the S×S
        Gram is held).
    statistics : {"auto", "gram", "streamed"}
        Hold the S×S Gram, or stream ``K X`` products when S² is too large (auto: hold it
        up to 2 GiB).
    batch_size : int, optional
        Samples per batch when ``data`` is an array.
    basis_samples : int
        With R_C = C every orthonormal A is optimal; A is then the eigenbasis of the channel
        scatter of the first ``basis_samples`` samples (per process), as the original code
        initialises it.
    learning_rate : float, optional
        Step size of ``adam`` and ``paper``.
    random_state : None, int or numpy RandomState
        Seed of the random parts of the fit (a ``random`` start, the ``paper`` start of P).
    callback : callable, optional
        ``callback(state)`` after each iteration, with ``state.iteration``,
        ``state.objective``, ``state.A``, ``state.P``, ``state.elapsed``; returning True
        stops the fit.

    Returns
    -------
    Factorization
        The factors ``A`` and ``P``, the objective after each iteration (``history``) and
        ``info`` (``n_iter``, ``converged``, ``n_passes``, ...).

    Raises
    ------
    ValueError
        When a parameter is out of range or an unknown choice, when a rank exceeds the
        data's modes, when the data is all zeros or badly shaped, or when the chosen solver
        cannot run here (``adam`` on the numpy backend, ``paper`` without a learning rate).
    TypeError
        When ``data`` is not an array, callable or iterable of batches, ``callback`` is not
        callable, or ``random_state`` is not None, an int or a numpy RandomState.
    DivergenceError
        When the objective or the factors become non-finite.

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` iterations end the fit before the objective settled.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> Z = np.random.default_rng(0).standard_normal((100, 8, 6, 6))
    >>> fit = tp.tucker2(Z, rank=(None, 4), random_state=0)
    >>> fit.A.shape, fit.P.shape, bool(fit.P.min() >= 0)
    ((8, 8), (36, 4), True)
    >>> fit.info["converged"], bool(fit.history[-1] <= fit.history[0])
    (True, True)
    """
    config = validate(
        Config(
            rank=rank,
            model=model,
            solver=solver,
            init=init,
            appearances=appearances,
            tol=tol,
            max_iter=max_iter,
            inner_max_iter=inner_max_iter,
            statistics=statistics,
            batch_size=batch_size,
            basis_samples=basis_samples,
            learning_rate=learning_rate,
            random_state=random_state,
            callback=callback,
        )
    )
    return fit(as_source(data, batch_size), config)

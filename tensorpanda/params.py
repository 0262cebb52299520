"""The fitting parameters, declared once and validated once.

`PARAMETERS` is the one table of parameter names and defaults: `Config`, the
signature of [`tensorpanda.tucker2`][tensorpanda.tucker2] and that of the
[`tensorpanda.Tucker2`][tensorpanda.Tucker2] estimator are all made from it, so the three cannot
drift. `validate` checks every parameter up front, before any data is read; `resolve_rank` reads
``R_C = None`` as "all channels" once the data's shape is known (the only place that rule lives).
"""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import make_dataclass, replace

from . import _backend as B
from .init import INITS
from .models import APPEARANCES
from .result import MODELS
from .updates import RULES

STOCHASTIC = ("adam", "paper")
# adam's step size when learning_rate is None (paper has no default: it must be tuned).
ADAM_LEARNING_RATE = 1e-3
SOLVERS = RULES + STOCHASTIC
STATISTICS = ("auto", "gram", "streamed", "sketched")
# The S×S statistic is held in memory up to this size; beyond it the solver streams K·X.
GRAM_MAX_BYTES = 2 * 2**30
# max_iter=None means: iterations for the Gram solvers, epochs for the stochastic ones (the
# original optimiser makes one pass of N single-sample steps).
# inner_max_iter=None: P-updates per A-step when R_C < C. On held statistics they cost no
# pass over the data, so many of them make each pass count (fewer A-steps, fewer passes);
# streamed, each costs a pass.
DEFAULT_INNER_MAX_ITER = {"held": 200, "streamed": 10}
DEFAULT_MAX_ITER = {"mu": 500, "hals": 500, "pgd": 500, "adam": 50, "paper": 1}

REQUIRED = inspect.Parameter.empty
# name: default. The meaning of each is documented once, in tucker2's docstring.
PARAMETERS = {
    "rank": REQUIRED,
    "model": "panda",
    "solver": "pgd",
    "init": "spa",
    "appearances": "orthonormal",
    "tol": 1e-6,
    "max_iter": None,
    "inner_max_iter": None,
    "smoothness": 0.0,
    "statistics": "auto",
    "batch_size": None,
    "basis_samples": 1000,
    "learning_rate": None,
    "random_state": None,
    "callback": None,
}

Config = make_dataclass(
    "Config",
    [(name, object) if default is REQUIRED else (name, object, default)
     for name, default in PARAMETERS.items()],
    frozen=True,
)
Config.__module__ = __name__
Config.__doc__ = "The parameters of one fit (the fields of `PARAMETERS`)."


def signature(*leading: str) -> inspect.Signature:
    """The signature ``(*leading, rank, *, model=..., ...)`` built from `PARAMETERS`."""
    positional = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                  for name in (*leading, "rank")]
    keywords = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
                for name, default in PARAMETERS.items() if name != "rank"]
    return inspect.Signature(positional + keywords)


def _choice(name: str, value, allowed) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, allowed))}")


def _positive_int(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_rank(rank) -> tuple:
    if isinstance(rank, numbers.Integral) or not isinstance(rank, (tuple, list)) or len(rank) != 2:
        raise ValueError(
            f"rank must be a pair (R_C, R_S): appearances and parts; R_C may be None for all "
            f"channels. Got {rank!r}"
        )
    _positive_int("rank R_C", rank[0], allow_none=True)
    _positive_int("rank R_S", rank[1])
    return rank[0], rank[1]


def _check_init(init):
    if isinstance(init, str):
        _choice("init", init, INITS)
        return init
    if not (isinstance(init, (tuple, list)) and len(init) == 2):
        raise ValueError(
            "init must be 'spa', 'svd', 'nndsvd', 'random' or a pair (A, P) of initial factors "
            f"(either may be None), got {type(init).__name__}"
        )
    return tuple(init)  # a list [A, P] means the same as a tuple: later code tests for a pair


def _check_choices(config: Config) -> None:
    _choice("model", config.model, MODELS)
    _choice("solver", config.solver, SOLVERS)
    _choice("statistics", config.statistics, STATISTICS)
    allowed = APPEARANCES[config.model]
    if config.appearances not in allowed:
        raise ValueError(
            f"appearances={config.appearances!r} is not available for model="
            f"{config.model!r}; choose one of {', '.join(map(repr, allowed))}"
        )
    if config.solver == "paper" and (config.model, config.appearances) != ("panda", "free"):
        raise ValueError(
            "solver='paper' reproduces the original PandA optimiser, which fits "
            "model='panda' with a free A: pass appearances='free' (or choose another solver)"
        )


def _check_smoothness(config: Config) -> None:
    value = config.smoothness
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
        0 <= value < math.inf
    ):
        raise ValueError(f"smoothness must be a non-negative number (finite), got {value!r}")
    if value > 0 and config.solver in STOCHASTIC:
        raise ValueError(
            f"smoothness is an option of the Gram solvers ('pgd', 'hals', 'mu'), not of "
            f"solver={config.solver!r}: choose a Gram solver or leave smoothness at 0"
        )
    if value > 0 and config.model != "panda":
        raise ValueError(
            "smoothness is available for model='panda' (it shifts the tied core's statistic "
            "K1 by the grid Laplacian); the free cores of model='tucker' make the fit "
            "scale-free in P, where the prior has no fixed meaning"
        )


def _check_numbers(config: Config) -> None:
    if not isinstance(config.tol, numbers.Real) or not 0 <= config.tol < math.inf:
        raise ValueError(f"tol must be a non-negative number (finite), got {config.tol!r}")
    _positive_int("max_iter", config.max_iter, allow_none=True)
    _positive_int("inner_max_iter", config.inner_max_iter, allow_none=True)
    _positive_int("batch_size", config.batch_size, allow_none=True)
    _positive_int("basis_samples", config.basis_samples)
    rate = config.learning_rate
    if rate is not None and not (isinstance(rate, numbers.Real) and 0 < rate < math.inf):
        raise ValueError(f"learning_rate must be a positive number (finite), got {rate!r}")


def validate(config: Config) -> Config:
    """Check every parameter (``ValueError``/``TypeError`` naming it and the allowed values);
    return the config with ``rank`` and ``init`` normalised to tuples and ``max_iter`` set."""
    _check_choices(config)
    init = _check_init(config.init)
    rank = _check_rank(config.rank)
    _check_numbers(config)
    _check_smoothness(config)
    if config.callback is not None and not callable(config.callback):
        raise TypeError("callback must be callable as callback(state) -> bool")
    B.random_state(config.random_state)  # raises TypeError on a bad seed
    max_iter = config.max_iter or DEFAULT_MAX_ITER[config.solver]
    return replace(config, rank=rank, init=init, max_iter=max_iter)


def make_config(rank, params: dict, caller: str) -> Config:
    """The validated `Config` of a call ``caller(..., rank, **params)``; an unknown
    parameter name is a ``TypeError`` that lists the known ones."""
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise TypeError(
            f"{caller}() got unknown parameter(s) {', '.join(map(repr, unknown))}; its "
            f"parameters are {', '.join(PARAMETERS)}"
        )
    return validate(Config(rank=rank, **params))


def resolve_rank(config: Config, n_channels: int, n_positions: int) -> tuple[int, int]:
    """(R_C, R_S) as ints, R_C = None read as C, checked against the data's C and S."""
    R_C = n_channels if config.rank[0] is None else int(config.rank[0])
    R_S = int(config.rank[1])
    if R_C > n_channels:
        raise ValueError(f"rank R_C = {R_C} exceeds the number of channels C = {n_channels}")
    if R_S > n_positions:
        raise ValueError(f"rank R_S = {R_S} exceeds the number of positions S = {n_positions}")
    return R_C, R_S

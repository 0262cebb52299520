"""A fit in progress, and how every solver starts one.

The first pass over the data gives the constants of the fit (Σ_i ‖Z_i‖², N) and the
statistics the start is read from: the spatial Gram K_S = Σ_i Z_iᵀ Z_i (unless S² is too
large to hold) and the channel scatter of the first ``basis_samples`` samples (where A is
read from it). `start` checks them, resolves the ranks against the data and sets the
initial factors.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace

import numpy as np
import tensorly as tl

from . import _backend as B
from . import init as initialisation
from ._distributed import shared_seed
from .data import BatchSource
from .host import one_thread
from .operators import StreamedOperator
from .params import GRAM_MAX_BYTES, STOCHASTIC, Config, resolve_rank
from .sketch import NystromOperator, sketch_width, test_matrix
from .statistics import (
    accumulate,
    channel_scatter,
    product_terms,
    spatial_gram_terms,
    sq_norm,
)

# Product passes a streamed fit takes, for the route's cost model: one product per update
# (the exact line search reuses it); 86 were measured at S = 64×64, C = 256, R_S = 8 and
# 175-241 on planted 32×32 and 48×48 maps, where streaming also ran below the Gram's
# flop rate.
STREAMED_PASSES = 200
# For the route's cost model: the passes a sketched fit takes after its first to converge
# (tol = 1e-6; 3.7 ± 1.2 on DCGAN's 16×16 and 32×32 layers, 3 on planted 32×32 maps:
# benchmarks/routes_on_features.py; 5 errs toward the held Gram), and how
# many times the Gram's flop rate is that of a pass of thin products (memory-bound: 339
# against 112 GFlop/s on two cores at C = 256, S = 32×32, 32 columns).
SKETCHED_PASSES = 5
THIN_SLOWDOWN = 3

# The three routes a Gram fit can take (``info["route"]``).
HELD, STREAMED, SKETCHED = "held Gram", "streamed products", "sketched Gram"

# Data whose mean square is below this multiple of the dtype's smallest normal number is
# refused: the squares of values a thousandth of the data's rms then still keep every digit.
UNDERFLOW_MARGIN = 1e6


@dataclass
class Problem:
    """A fit in progress: the data, the constants of its first pass, the current factors
    and the objective after each iteration (``history``)."""

    config: Config
    source: BatchSource
    rank: tuple
    sq_norm: float
    n_samples: int
    route: str
    A: object = None
    P: object = None
    history: list = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    passes_before: int = 0
    extra_info: dict = field(default_factory=dict)

    @property
    def appearances_fixed(self) -> bool:
        """A drops out of the objective: R_C = C with A orthonormal (A Aᵀ = I), or any Tucker
        model (Π_A = I). An iteration is then one P-update on the spatial Gram."""
        full = self.rank[0] == self.source.n_channels
        return full and (self.config.model == "tucker" or self.config.appearances == "orthonormal")

    @property
    def streamed(self) -> bool:
        """Whether K X products are streamed (one pass each), the S×S Gram never held."""
        return self.route == STREAMED

    @property
    def tol(self) -> float:
        """The absolute stopping threshold ``tol · Σ_i ‖Z_i‖²``."""
        return self.config.tol * self.sq_norm

    @property
    def n_passes(self) -> int:
        """Reads of the data by this fit (earlier fits on the same source excluded)."""
        return self.source.passes - self.passes_before


def route(config: Config, n_channels: int, n_positions: int, context: dict) -> tuple:
    """(route, why): `HELD`, `STREAMED` or `SKETCHED`, and the reason.

    ``statistics="auto"`` compares the flops of the routes per sample. Holding the Gram
    costs 2·C·S² once (after which a fit with R_C = C never reads the data again);
    streaming costs 4·C·S·R_S per product, one product per update, and a fit takes about
    `STREAMED_PASSES` of them. Where A drops out of PandA's objective (R_C = C, orthonormal
    A) the sketched route (`tensorpanda.sketch`) costs 4·C·S per column of its passes
    (`sketched_columns`), at a third of the Gram's flop rate (`THIN_SLOWDOWN`). The
    Gram is also never held when its S² entries exceed `GRAM_MAX_BYTES`.
    """
    S, C = n_positions, n_channels
    sketchable = can_sketch(config, C, S)
    if config.statistics != "auto":
        if config.statistics == "sketched" and not sketchable:
            raise ValueError(
                "statistics='sketched' needs PandA's objective with A out of it: "
                "model='panda', appearances='orthonormal' and R_C = C (rank=(None, R_S)), "
                "where the objective depends on the data through Σ Z_iᵀ Z_i alone. Use "
                "statistics='auto' (or 'streamed' for large maps)")
        name = {"gram": HELD, "streamed": STREAMED, "sketched": SKETCHED}[config.statistics]
        return name, f"statistics={config.statistics!r}"
    R_S = int(config.rank[1])
    held = 2 * C * S**2
    sketched = THIN_SLOWDOWN * 4 * C * S * sketched_columns(S, R_S)
    if sketchable and sketched < held:
        return SKETCHED, (
            f"a sketch of the Gram (about {sketched_columns(S, R_S)} thin columns over its "
            f"passes, 4·C·S per column at a third of the Gram's flop rate: {sketched:.2g} "
            f"flops per sample) is cheaper than forming it (2·C·S² = {held:.2g})")
    gram_bytes = _gram_bytes(S, context)
    if gram_bytes > GRAM_MAX_BYTES:
        return STREAMED, (f"the S×S Gram would take {gram_bytes / 2**30:.1f} GiB, over "
                          f"{GRAM_MAX_BYTES / 2**30:g} GiB")
    streamed = STREAMED_PASSES * 4 * C * S * R_S
    if streamed < held:
        return STREAMED, (f"streaming ({STREAMED_PASSES} products of 4·C·S·R_S = "
                          f"{streamed:.2g} flops per sample) is cheaper than the Gram "
                          f"(2·C·S² = {held:.2g})")
    return HELD, (f"the Gram (2·C·S² = {held:.2g} flops per sample, once) is cheaper than "
                  f"streaming (about {STREAMED_PASSES} products of 4·C·S·R_S = "
                  f"{streamed:.2g})" + (f" or a sketch ({sketched:.2g})" if sketchable else ""))


def sketched_columns(n_positions: int, n_parts: int) -> int:
    """Columns a sketched fit applies K to, summed over its passes: the first pass's r,
    then about `SKETCHED_PASSES` of R_S + r."""
    r = sketch_width(n_positions, n_parts)
    return r + SKETCHED_PASSES * (n_parts + r)


def can_sketch(config: Config, n_channels: int, n_positions: int) -> bool:
    """Whether the sketched route applies: PandA with A out of the objective (R_C = C,
    orthonormal A), where the objective depends on the data through Σ Z_iᵀ Z_i alone."""
    R_C, _ = resolve_rank(config, n_channels, n_positions)
    return (config.model == "panda" and config.appearances == "orthonormal"
            and R_C == n_channels)


def held_if_it_fits(config: Config, n_channels: int, n_positions: int, context: dict):
    """``config`` with ``statistics="auto"`` resolved to the held Gram where it fits in
    memory (``partial_fit`` sums the Gram over its batches; a sketch would need passes)."""
    if config.statistics != "auto":
        return config
    held = replace(config, statistics="gram")
    return held if _gram_bytes(n_positions, context) <= GRAM_MAX_BYTES else config


def _gram_bytes(n_positions: int, context: dict) -> int:
    """Bytes of the S×S Gram in the data's dtype."""
    return n_positions**2 * np.dtype(B.dtype_name(context)).itemsize


def reads_data_once(config: Config, n_channels: int, n_positions: int, context: dict) -> bool:
    """Whether a Gram fit needs no pass after the first: A drops out of the objective and
    the spatial Gram is held."""
    R_C, _ = resolve_rank(config, n_channels, n_positions)
    fixed = R_C == n_channels and (config.model == "tucker" or config.appearances == "orthonormal")
    return fixed and route(config, n_channels, n_positions, context)[0] == HELD


def first_pass(source: BatchSource, config: Config) -> dict:
    """One pass: ``"sq_norm"``, ``"n_samples"``, the spatial Gram ``"K_S"`` (held route)
    or its product ``"KX"`` with the sketch's test matrix ``"sketch_test"`` (sketched
    route), and, where A is read from it, ``"head_scatter"`` over ``"head_samples"``
    samples. The choices are made on the first batch: an iterable source reveals its shape
    only then."""

    sketch = {}  # Ω, drawn on the first batch (its shape is known only then)

    def terms(Z):
        _, C, S = tl.shape(Z)
        name = route(config, C, S, source.context)[0]
        if name == STREAMED:
            return {"sq_norm": sq_norm(Z)}
        if name == SKETCHED:
            if not sketch:
                sketch["test"] = test_matrix(S, resolve_rank(config, C, S)[1],
                                             source.context)
            return product_terms(sketch["test"])(Z)
        return spatial_gram_terms()(Z)

    def head_terms(Z):
        _, C, S = tl.shape(Z)
        return {"scatter": channel_scatter(Z)} if _needs_scatter(config, C, S) else {}

    # the config lets the ranks of a distributed fit check that they agree on it
    stats = accumulate(source, terms, head=config.basis_samples, head_terms=head_terms,
                       config=config)
    if sketch:
        stats["sketch_test"] = sketch["test"]
    return stats


def _needs_scatter(config: Config, n_channels: int, n_positions: int) -> bool:
    """Whether A is read from the channel scatter: as the basis when R_C = C, or as the
    start of an A that is not re-computed exactly at each iteration."""
    if isinstance(config.init, tuple) and config.init[0] is not None:
        return False
    full = resolve_rank(config, n_channels, n_positions)[0] == n_channels
    if config.appearances == "orthonormal":
        return full
    if config.appearances == "nonnegative" and full:
        return False  # A = I
    return config.init != "random"


def start(source: BatchSource, config: Config, stats: dict, initialise: bool = True) -> Problem:
    """The problem after the first pass: ranks resolved, data checked, and (unless told not
    to) the initial factors set from ``config.init``."""
    C, S = source.n_channels, source.n_positions
    rank = resolve_rank(config, C, S)
    check_magnitude(source, B.scalar(stats["sq_norm"]), int(stats["n_samples"]))
    name, why = route(config, C, S, source.context)
    problem = Problem(
        config=config,
        source=source,
        rank=rank,
        sq_norm=B.scalar(stats["sq_norm"]),
        n_samples=int(stats["n_samples"]),
        route=name,
    )
    if config.solver not in STOCHASTIC:  # the stochastic solvers hold no statistics
        problem.extra_info.update(route=name, route_reason=why)
    if initialise:
        # one stream: A's draws, then P's; with random_state=None every rank of a
        # distributed fit draws from rank 0's seed, so that the ranks fit the same factors
        rng = B.random_state(shared_seed(config.random_state))
        # eigendecompositions of C×C and S×S statistics: one BLAS thread (a 256×256 eigh
        # took 2.2 s with two threads on a busy machine, milliseconds with one)
        with one_thread(C):
            problem.A = _initial_appearances(problem, stats, rng)
        with nullcontext() if problem.streamed else one_thread(S):
            problem.P = _initial_parts(problem, stats, rng)
    return problem


def check_magnitude(source: BatchSource, total: float, n_samples: int) -> None:
    """Refuse data that is all zeros, or whose squares underflow the fit's precision.

    The statistics are sums of squares and products: when the mean square Σ‖Z_i‖² / (N·C·S)
    is within `UNDERFLOW_MARGIN` of the dtype's smallest normal number, the squares of
    typical values lose their digits (1e-200 in float64 and 1e-30 in float32 square to
    exactly 0) and the fit would be meaningless. Rescaling inside would not help: the
    objective and history, in the data's units, underflow as well. Only then is the data read
    once more, to tell the two cases apart by its largest |value|.
    """
    dtype = np.dtype(B.dtype_name(source.context))
    floor = float(np.finfo(dtype).tiny) * UNDERFLOW_MARGIN
    n_entries = max(n_samples * source.n_channels * source.n_positions, 1)
    if total > 0 and total / n_entries >= floor:
        return
    peak = _largest_magnitude(source)
    if peak == 0:
        raise ValueError("the data is all zeros: there is nothing to factorise")
    fix = "rescale it, e.g. divide it by its largest |value|"
    fix += " (or pass it as float64)" if dtype == np.float32 else ""
    if peak is None:  # a used-up one-shot iterator: the two cases cannot be told apart
        raise ValueError(
            f"the data is all zeros, or so small that its squares underflow {dtype.name}: "
            f"if it is not all zeros, {fix}"
        )
    raise ValueError(
        f"the data's squares underflow {dtype.name}: its largest |value| is {peak:.3g}, "
        f"so its mean square ({total / n_entries:.3g}) is below {floor:.3g}, where squares "
        f"lose their digits: {fix}"
    )


def _largest_magnitude(source: BatchSource) -> float | None:
    """max |Z| over the data (None for a one-shot iterator, which cannot be read again)."""
    if not source.reiterable:
        return None
    peak = 0.0
    for batch in source:
        peak = max(peak, B.scalar(tl.max(tl.abs(batch.Z))))
    return peak


def _initial_appearances(problem: Problem, stats: dict, rng):
    """A from the user's factor, the identity (a non-negative A of full rank), or the
    channel scatter's eigenvectors (``svd``) or a random start."""
    config, ctx = problem.config, problem.source.context
    C, (R_C, _) = problem.source.n_channels, problem.rank
    nonneg = config.appearances == "nonnegative"
    if isinstance(config.init, tuple) and config.init[0] is not None:
        return initialisation.check_user_factor(
            "A", config.init[0], (C, R_C), nonneg, ctx,
            orthonormal=config.appearances == "orthonormal",
        )
    if nonneg and R_C == C:
        return tl.eye(C, **ctx)  # any invertible A spans every channel; I is the simplest
    method = "svd" if R_C == C or isinstance(config.init, tuple) else config.init
    return initialisation.appearances_from_scatter(
        method, stats.get("head_scatter"), (C, R_C), nonneg, rng, ctx
    )


def _initial_parts(problem: Problem, stats: dict, rng):
    """P from the user's factor or from the spatial Gram (held, or streamed)."""
    config, ctx = problem.config, problem.source.context
    shape = (problem.source.n_positions, problem.rank[1])
    if isinstance(config.init, tuple) and config.init[1] is not None:
        return initialisation.check_user_factor("P", config.init[1], shape, True, ctx)
    method = config.init if isinstance(config.init, str) else "spa"
    if problem.route == SKETCHED:
        gram = NystromOperator(stats["sketch_test"], stats["KX"], problem.sq_norm)
    else:
        gram = StreamedOperator(problem.source) if problem.streamed else stats.get("K_S")
    return initialisation.parts_from_gram(method, gram, shape, rng, ctx)

"""What the stochastic solvers (``paper``, ``adam``) share.

They read the data sample by sample or batch by batch instead of through statistics, so an
*iteration* is one epoch (one pass over the data) and ``max_iter`` counts epochs. After each
epoch the exact objective Σ_i ‖Z_i − Ẑ_i‖² is evaluated by one more statistics pass.
"""

from __future__ import annotations

import time

import tensorly as tl

from . import _backend as B
from . import quartic
from ._distributed import raise_on_every_rank, world_size
from .data import BatchSource
from .operators import MatrixOperator
from .params import Config
from .problem import Problem
from .statistics import accumulate, spatial_gram_terms
from .updates import subspace_objective


def check_single_process(config: Config) -> None:
    """Refuse a multi-process run: these solvers do not all-reduce across processes."""
    if world_size() > 1:
        # raised on every rank, so that no other rank waits for this one in a collective
        raise_on_every_rank(ValueError(
            f"solver={config.solver!r} does not reduce across processes; with "
            "torch.distributed use solver='mu', 'hals' or 'pgd', whose statistics are "
            "all-reduced"
        ))


def exact_objective(source: BatchSource, problem: Problem) -> float:
    """The objective at the problem's (A, P) from one statistics pass. Its time is added to
    ``info["evaluation_time"]``: the original optimiser evaluates no objective, so a fair
    comparison subtracts it."""
    started = time.perf_counter()
    value = _objective(source, problem)
    spent = problem.extra_info.get("evaluation_time", 0.0) + time.perf_counter() - started
    problem.extra_info["evaluation_time"] = spent
    return value


def _objective(source: BatchSource, problem: Problem) -> float:
    config, A, P = problem.config, problem.A, problem.P
    if config.model == "tucker":
        Q = A if config.appearances == "orthonormal" else B.orthonormal_basis(A)
        K_S = accumulate(source, spatial_gram_terms(Q))["K_S"]
        return subspace_objective(P, tl.dot(K_S, P), problem.sq_norm)
    AtA = None if config.appearances == "orthonormal" else tl.dot(tl.transpose(A), A)
    stats = accumulate(source, spatial_gram_terms(A, AtA))
    K1X, K2X = MatrixOperator(stats["K_S"], stats.get("K_S2")).products(P)
    return quartic.objective(P, K1X, K2X, problem.sq_norm)

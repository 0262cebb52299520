"""The original PandA optimiser (``solver="paper"``), kept for parity and as the benchmarks'
peer.

Batch-1 projected gradient on f(A, P) = Σ_i ‖Z_i − A Aᵀ Z_i P Pᵀ‖²_F with a fixed learning
rate and a free A: for each sample a P-step (then P ← max(P, 0)), then an A-step on the
same sample with the new P. One iteration is one epoch of N steps; the original schedule is
a single epoch.
"""

from __future__ import annotations

import time

import numpy as np
import tensorly as tl

from . import _backend as B
from .data import BatchSource
from .loop import check_factors, iterate
from .params import Config
from .problem import Problem, start
from .result import Factorization
from .statistics import accumulate, channel_scatter, sq_norm
from .stochastic import check_single_process, exact_objective

# The original code initialises A from the scatter of this many samples (10 batches of 100).
PAPER_BASIS_SAMPLES = 1000
# How often (in steps) the optimiser looks for non-finite or collapsed factors.
CHECK_EVERY = 100


def fit_paper(source: BatchSource, config: Config, reorder: bool = False) -> Factorization:
    """The original optimiser from `paper_init`; ``info`` gains ``n_steps``,
    ``learning_rate`` and ``evaluation_time``. ``reorder`` evaluates the gradients in a
    cheap product order (see `paper_gradients`)."""
    check_single_process(config)
    lr = config.learning_rate
    if lr is None:
        raise ValueError(
            "solver='paper' needs a learning_rate: the original used 1e-6 to 1e-8 on StyleGAN2 "
            "features, tuned per layer (a step too large zeroes P for good). solver='mu' "
            "needs none"
        )
    started, passes_before = time.perf_counter(), source.passes
    problem = paper_init(source, config, B.random_state(config.random_state))
    problem.started, problem.passes_before = started, passes_before
    steps = 0

    def one_epoch() -> float:
        nonlocal steps
        for batch in source:
            for i in range(batch.size):
                # divergence is detected and explained below, not left to numpy's warnings
                with np.errstate(over="ignore", invalid="ignore"):
                    z = batch.Z[i]
                    g_P, grad_A = paper_gradients(z, problem.A, problem.P, reorder)
                    problem.P = tl.clip(problem.P - lr * g_P, 0, None)
                    problem.A = problem.A - lr * grad_A(problem.P)
                steps += 1
                if steps % CHECK_EVERY == 0:
                    check_factors(problem, f"by step {steps}")
        check_factors(problem, f"by step {steps}")  # before the objective's pass reads them
        problem.extra_info.update(n_steps=steps, learning_rate=lr)
        return exact_objective(source, problem)

    return iterate(problem, one_epoch)


def paper_init(source: BatchSource, config: Config, rng) -> Problem:
    """The original's start, by one pass: A from the left singular vectors of the mean
    channel scatter of the first 1,000 samples (its ``HOSVD``), P ~ U(0, 0.01)."""
    stats = accumulate(
        source,
        lambda Z: {"sq_norm": sq_norm(Z)},
        head=PAPER_BASIS_SAMPLES,
        head_terms=lambda Z: {"scatter": channel_scatter(Z)},
    )
    problem = start(source, config, stats, initialise=False)
    ctx, (R_C, R_S) = source.context, problem.rank
    scatter = tl.to_numpy(stats["head_scatter"]).astype(np.float64) / stats["head_samples"]
    U = np.linalg.svd(scatter)[0]
    dtype = B.dtype_name(ctx)
    problem.A = B.tensor(U[:, :R_C].astype(dtype), ctx)
    problem.P = B.tensor(rng.uniform(0, 0.01, size=(source.n_positions, R_S)).astype(dtype), ctx)
    return problem


def paper_gradients(z, A, P, reorder: bool = False):
    """The original's gradients of ‖z − A Aᵀ z P Pᵀ‖² for one sample z (C×S): ``(g_P,
    grad_A)``, where ``grad_A(P_new)`` is the A-gradient at (A, P_new), since the original
    steps A with the P it has just updated.

    ``reorder=False`` evaluates the products left to right as the original writes them
    (``zᵀ @ A @ Aᵀ @ z @ P`` ...), so that this peer costs what the original costs;
    ``reorder=True`` evaluates the same expressions in a cheap order.
    """
    dot, T = tl.dot, tl.transpose
    if not reorder:
        zt, At, Pt = T(z), T(A), T(P)
        term = dot(dot(dot(dot(zt, A), At), z), P)
        g_P = -4 * term + 2 * (
            dot(dot(dot(dot(dot(dot(dot(dot(P, Pt), zt), A), At), A), At), z), P)
            + dot(dot(dot(dot(dot(dot(dot(dot(zt, A), At), A), At), z), P), Pt), P)
        )
        return g_P, lambda P: _grad_A_original(z, A, P)
    Y = dot(T(A), z)  # Aᵀ z
    AtA = dot(T(A), A)
    YP = dot(Y, P)
    K1P = dot(T(Y), YP)
    K2P = dot(T(Y), dot(AtA, YP))
    g_P = -4 * K1P + 2 * (dot(P, dot(T(P), K2P)) + dot(K2P, dot(T(P), P)))
    return g_P, lambda P: _grad_A_reordered(z, A, P)


def _grad_A_original(z, A, P):
    dot, T = tl.dot, tl.transpose
    zt, At, Pt = T(z), T(A), T(P)
    return -4 * dot(dot(dot(dot(z, P), Pt), zt), A) + 2 * (
        dot(dot(dot(dot(dot(dot(dot(dot(A, At), z), P), Pt), P), Pt), zt), A)
        + dot(dot(dot(dot(dot(dot(dot(dot(z, P), Pt), P), Pt), zt), A), At), A)
    )


def _grad_A_reordered(z, A, P):
    dot, T = tl.dot, tl.transpose
    W = dot(z, P)  # C×R_S
    AtW = dot(T(A), W)
    PtP = dot(T(P), P)
    X1A = dot(W, T(AtW))
    X2A = dot(dot(W, PtP), T(AtW))
    return -4 * X1A + 2 * (dot(A, dot(T(A), X2A)) + dot(X2A, dot(T(A), A)))

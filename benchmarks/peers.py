"""The original PandA optimiser at its best, as the benchmarks' peer.

The same maths as ``solver="paper"`` (`tensorpanda.paper`): from A = the left singular
vectors of the channel scatter of the first 1,000 samples and P ~ U(0, 0.01), one epoch of
batch-1 projected gradient steps on f_i(A, P) = ‖Z_i − A Aᵀ Z_i P Pᵀ‖²_F, a P-step (then
P ← max(P, 0)) followed by an A-step with the new P, at a fixed learning rate. Here it runs
on numpy arrays with its products associated so that no step costs more than
O(C·R_S·(S + R_C)): every product is "a big matrix times a thin one" (K = R_S columns),
never the C×C matrix AᵀA nor the S×S matrix Zᵀ A Aᵀ Z. Which order and how many BLAS
threads run fastest is measured, not assumed (`tune`).

Data are given as ``batches``: a callable returning a fresh iterable of (n, C, S) arrays,
so the peer runs on data held in memory and on data streamed from a generator alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

# The original code initialises A from the scatter of this many samples (10 batches of 100).
BASIS_SAMPLES = 1000
# The paper's learning-rate grid, in units of 1 / mean ‖Z_i‖²_F (the scale at which a
# batch-1 gradient step is of the size of the factors): scale-free, so one grid serves all.
LEARNING_RATE_GRID = (3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003)


@dataclass(frozen=True)
class Setting:
    """How the peer runs: its product order and its number of BLAS threads."""

    order: str
    threads: int

    def __str__(self) -> str:
        return f"{self.order}, {self.threads} BLAS thread{'s' if self.threads > 1 else ''}"


def array_batches(Z: np.ndarray, batch: int):
    """``batches`` for an array held in memory: a fresh iterator of its ``batch``-sample
    slices on every call."""
    return lambda: (Z[b : b + batch] for b in range(0, len(Z), batch))


def limited(batches, n: int):
    """The first ``n`` samples of ``batches``, as ``batches``."""

    def head():
        seen = 0
        for Zb in batches():
            if seen >= n:
                return
            yield Zb[: n - seen]
            seen += len(Zb)

    return head


# -- the start -----------------------------------------------------------------------------------
def start(batches, rank: tuple[int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The original's start (A, P): A from the left singular vectors of the mean channel
    scatter Σ Z_i Z_iᵀ of the first 1,000 samples, P ~ U(0, 0.01) from ``seed``."""
    R_C, R_S = rank
    scatter, seen, dtype = None, 0, None
    for Zb in limited(batches, BASIS_SAMPLES)():
        n, C, S = Zb.shape
        X = np.ascontiguousarray(Zb.transpose(1, 0, 2)).reshape(C, n * S)
        term = X @ X.T
        scatter = term if scatter is None else scatter + term
        seen, dtype = seen + n, Zb.dtype
    U = np.linalg.svd(scatter.astype(np.float64) / seen)[0]
    P = np.random.RandomState(seed).uniform(0, 0.01, size=(S, R_S))
    return U[:, :R_C].astype(dtype), P.astype(dtype)


# -- one step, in two product orders --------------------------------------------------------------
def step_thin(z, A, P, lr):
    """One P-step then one A-step on sample z with every product thin (K = R_S columns):
    O(C·R_S·(S + R_C)) per step. Returns the new (A, P)."""
    W = z @ P  # Z P                               C×K
    AU = A @ (A.T @ W)  # A Aᵀ Z P                 C×K
    K12P = z.T @ np.concatenate([AU, A @ (A.T @ AU)], axis=1)  # Zᵀ M Z P, Zᵀ M² Z P (M = AAᵀ)
    K = P.shape[1]
    K1P, K2P = K12P[:, :K], K12P[:, K:]
    g_P = -4 * K1P + 2 * (P @ (P.T @ K2P) + K2P @ (P.T @ P))
    P = np.maximum(P - lr * g_P, 0)
    W = z @ P  # the A-step uses the new P
    U = A.T @ W  # Aᵀ Z P                          R_C×K
    G = P.T @ P
    AU = A @ U
    # ∇_A = −4 Z N Zᵀ A + 2 (A Aᵀ Z N² Zᵀ A + Z N² Zᵀ A AᵀA), N = P Pᵀ, as rank-K products
    grad_A = (-4 * W + 2 * (AU @ G)) @ U.T + 2 * (W @ G) @ (AU.T @ A)
    return A - lr * grad_A, P


def step_square(z, A, P, lr):
    """The order of ``solver="paper", reorder=True`` (tensorpanda.paper): like
    `step_thin` but through AᵀA (R_C×R_C) and Aᵀ Z (R_C×S), O(R_C·(C·S + C·R_C))."""
    from tensorpanda.paper import paper_gradients

    g_P, grad_A = paper_gradients(z, A, P, reorder=True)
    P = np.maximum(P - lr * g_P, 0)
    return A - lr * grad_A(P), P


ORDERS = {"thin products": step_thin, "square products (paper, reorder=True)": step_square}


# -- an epoch and its objective ------------------------------------------------------------------
def epoch(batches, A, P, lr, order: str = "thin products"):
    """One epoch of batch-1 steps over ``batches`` from (A, P): the new (A, P); non-finite
    factors (a learning rate too large) are left for the caller to see."""
    step = ORDERS[order]
    with np.errstate(over="ignore", invalid="ignore"):
        for Zb in batches():
            for z in Zb:
                A, P = step(z, A, P, lr)
    return A, P


def objective(batches, A, P) -> float:
    """Σ_i ‖Z_i − A Aᵀ Z_i P Pᵀ‖²_F (float64 sums), inf for non-finite factors:
    ‖Z‖² − 2‖Aᵀ Z P‖² + tr((A Aᵀ Z P)ᵀ (A Aᵀ Z P) PᵀP) per sample, batched."""
    if not (np.isfinite(A).all() and np.isfinite(P).all()):
        return np.inf
    G = (P.T @ P).astype(np.float64)
    total = 0.0
    for Zb in batches():
        U = np.matmul(A.T, Zb @ P).astype(np.float64)  # (n, R_C, K)
        AU = np.matmul(A.astype(np.float64), U)
        total += float(np.sum(Zb.astype(np.float64) ** 2)) - 2 * float(np.sum(U**2))
        total += float(np.einsum("nck,nkl,ncl->", AU, G[None], AU))
    return total if np.isfinite(total) else np.inf


def run(batches, rank, lr, setting: Setting, n_steps: int | None = None, seed: int = 0):
    """(seconds, A, P) of the peer: its start and one epoch (of the first ``n_steps``
    samples if given) in ``setting``; the objective is not evaluated (nor timed)."""
    data = batches if n_steps is None else limited(batches, n_steps)
    with threadpool_limits(limits=setting.threads):
        started = time.perf_counter()
        A, P = start(data, rank, seed)
        A, P = epoch(data, A, P, lr, setting.order)
        seconds = time.perf_counter() - started
    return seconds, A, P


# -- tuning: learning rate, product order, threads -------------------------------------------------
def best_learning_rate(batches, rank, steps: int, setting: Setting) -> tuple[float, float]:
    """(learning rate, its objective over all samples) of LEARNING_RATE_GRID (in units of
    1 / mean ‖Z_i‖²_F of the first ``steps`` samples) whose ``steps``-step run ends lowest."""
    head = limited(batches, steps)
    sq = [np.sum(Zb.astype(np.float64) ** 2, axis=(1, 2)) for Zb in head()]
    unit = 1.0 / float(np.mean(np.concatenate(sq)))
    scores = {}
    for g in LEARNING_RATE_GRID:
        _, A, P = run(batches, rank, unit * g, setting, n_steps=steps)
        scores[unit * g] = objective(batches, A, P)
    lr = min(scores, key=scores.get)
    return lr, scores[lr]


def tune(batches, rank, lr, steps: int, threads=(1, 2), repeats: int = 2):
    """(fastest Setting, {Setting: seconds per step}) over product orders × BLAS thread
    counts. A trial of ``steps // 10`` steps first drops the settings over 3× the fastest
    (on a loaded machine one can be 100× slower); the others are timed as the best of
    ``repeats`` interleaved runs of ``steps`` steps."""
    settings = [Setting(order, t) for t in threads for order in ORDERS]
    trial = max(10, steps // 10)
    per_step = {s: run(batches, rank, lr, s, n_steps=trial)[0] / trial for s in settings}
    kept = [s for s in settings if per_step[s] <= 3 * min(per_step.values())]
    timed = {s: np.inf for s in kept}
    for _ in range(repeats):
        for s in kept:
            timed[s] = min(timed[s], run(batches, rank, lr, s, n_steps=steps)[0] / steps)
    per_step.update(timed)
    return min(timed, key=timed.get), per_step

"""Solver benchmark: the Gram solvers against the original PandA optimiser.

Prints, side by side in one run (every number of a table comes from the same process):

(a) on planted data of PandA's sizes, the time each update rule takes to reach the
    objective the ``paper`` optimiser ends at (one epoch of batch-1 steps, the best learning
    rate of a small grid), and the ratio of the paper optimiser's time to it;
(b) for a fit with R_C = C streamed in batches from a memory-mapped file, the fit time
    divided by the time of one bare Gram product Σ Z_iᵀ Z_i over the same batches (the
    floor no fit can beat), and for R_C < C the number of passes over the data;
(c) the peak memory (resident set) of a streamed fit at two data sizes, each in its own
    process, with the data generated batch by batch so it never exists in memory.

Usage (``benchmarks/bench_solvers.py`` and ``tensorpanda bench`` run this module)::

    python benchmarks/bench_solvers.py                 # full sizes (about half an hour)
    python benchmarks/bench_solvers.py --smoke         # tiny sizes, seconds (CI)
    python benchmarks/bench_solvers.py --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass

import numpy as np
import tensorly as tl

import tensorpanda as tp
from tensorpanda.data import as_source
from tensorpanda.solver import Config, validate
from tensorpanda.statistics import gram
from tensorpanda.stochastic import fit_paper

FULL = {
    "a": [(10_000, 512, (16, 16)), (10_000, 256, (8, 8))],
    "b": (20_000, 512, (16, 16)),
    "c": ((10_000, 100_000), 512, (16, 16)),
    "parts": 8,
    "low_rank": 64,
    "paper_grid_steps": 500,
    "batch": 250,
}
SMOKE = {
    "a": [(300, 32, (6, 6))],
    "b": (400, 32, (6, 6)),
    "c": ((200, 400), 32, (6, 6)),
    "parts": 4,
    "low_rank": 8,
    "paper_grid_steps": 50,
    "batch": 50,
}
# The paper's learning-rate grid, in units of 1 / mean ‖Z_i‖²_F (the scale at which a
# batch-1 gradient step is of the size of the factors): scale-free, so one grid serves all.
LEARNING_RATE_GRID = (3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003)


# -- planted data --------------------------------------------------------------------------------
@dataclass
class Planted:
    """Z_i = A G_i Pᵀ + σ E_i with disjoint non-negative parts, A orthonormal (C×C).

    The S positions are cut into ``parts`` consecutive blocks; column k of P is non-zero
    (uniform in [0.5, 1.5], then normalised to unit norm) only on block k. The cores G_i
    and the noise E_i are standard normal; samples are divided by √C.

    Attributes
    ----------
    channels : int
        C, the number of channels.
    spatial : tuple of int
        The spatial shape (H, W); S = H·W positions.
    parts : int
        The number of planted parts, at most S.
    seed : int, default 0
        Seed of the factors and of every batch's cores and noise.
    noise : float, default 0.1
        σ, the noise level.
    P : numpy array of shape (S, parts)
        The planted parts (float32, disjoint supports, unit-norm columns); set on creation.
    A : numpy array of shape (C, C)
        The planted orthonormal appearances (float32); set on creation.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.bench import Planted
    >>> planted = Planted(channels=4, spatial=(3, 3), parts=3)
    >>> planted.A.shape, planted.P.shape
    ((4, 4), (9, 3))
    >>> (planted.P > 0).sum(axis=1).tolist()  # each position belongs to exactly one part
    [1, 1, 1, 1, 1, 1, 1, 1, 1]
    >>> bool(np.allclose(planted.A.T @ planted.A, np.eye(4), atol=1e-6))
    True
    """

    channels: int
    spatial: tuple
    parts: int
    seed: int = 0
    noise: float = 0.1

    def __post_init__(self):
        rng = np.random.default_rng(self.seed)
        S = int(np.prod(self.spatial))
        labels = np.minimum(np.arange(S) * self.parts // S, self.parts - 1)
        P = np.zeros((S, self.parts), np.float32)
        P[np.arange(S), labels] = rng.uniform(0.5, 1.5, S)
        self.P = P / np.linalg.norm(P, axis=0)
        self.A = np.linalg.qr(rng.standard_normal((self.channels, self.channels)))[0].astype(
            np.float32
        )

    def batch(self, start: int, size: int, fresh_noise: bool = True) -> np.ndarray:
        """Samples start .. start+size-1, in float32. With ``fresh_noise=False`` every batch
        of one size gets the same noise from a fixed pool (fast, for long streams whose
        values do not matter, such as the memory benchmark).

        The batch's random stream is seeded with ``(seed, start)``, so the same call always
        returns the same samples, without generating the ones before ``start`` (a sample's
        values depend on the batch it is drawn in).

        Parameters
        ----------
        start : int
            Index of the first sample.
        size : int
            Number of samples.
        fresh_noise : bool, default True
            Draw new noise for the batch; with ``False`` reuse a pool of ``size`` noise
            samples.

        Returns
        -------
        numpy array of shape (size, C, S)
            The samples, float32.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.bench import Planted
        >>> planted = Planted(channels=4, spatial=(3, 3), parts=3)
        >>> Z = planted.batch(10, 5)
        >>> Z.shape, bool(np.array_equal(Z, planted.batch(10, 5)))
        ((5, 4, 9), True)
        """
        rng = np.random.default_rng([self.seed, start])
        C, S = self.channels, self.P.shape[0]
        G = rng.standard_normal((size, C, self.parts), dtype=np.float32)
        Z = np.matmul(self.A, G) @ self.P.T
        if fresh_noise:
            Z += self.noise * rng.standard_normal((size, C, S), dtype=np.float32)
        else:
            Z += self._noise_pool(size)
        return Z / np.float32(np.sqrt(C))  # a float32 scalar keeps the samples float32

    def _noise_pool(self, size: int) -> np.ndarray:
        if getattr(self, "_pool", None) is None or len(self._pool) != size:
            rng = np.random.default_rng([self.seed, 2**31])  # a stream no batch uses
            shape = (size, self.channels, self.P.shape[0])
            self._pool = self.noise * rng.standard_normal(shape, dtype=np.float32)
        return self._pool

    def array(self, n: int, batch: int) -> np.ndarray:
        """The first ``n`` samples as one array, generated ``batch`` samples at a time.

        Parameters
        ----------
        n : int
            Number of samples.
        batch : int
            Samples generated per call to :meth:`batch` (with fresh noise).

        Returns
        -------
        numpy array of shape (n, C, S)
            The samples, float32: the batches ``batch(0, batch)``, ``batch(batch, batch)``, …
            stacked (the last one shorter if ``batch`` does not divide ``n``).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.bench import Planted
        >>> planted = Planted(channels=4, spatial=(3, 3), parts=3)
        >>> Z = planted.array(25, 10)
        >>> Z.shape, bool(np.array_equal(Z[20:], planted.batch(20, 5)))
        ((25, 4, 9), True)
        """
        out = np.empty((n, self.channels, int(np.prod(self.spatial))), np.float32)
        for start in range(0, n, batch):
            out[start : start + batch] = self.batch(start, min(batch, n - start))
        return out


# -- timing helpers ------------------------------------------------------------------------------
def time_to_reach(target: float, **kwargs) -> tuple[float, float, tp.Factorization]:
    """Run tucker2; return (seconds until the objective first reached ``target``, final
    objective, fit). The clock includes the first pass over the data.

    The time is the fit's own elapsed time at the first iteration whose objective is at
    most ``target``, read through a callback; :class:`tensorpanda.ConvergenceWarning` is
    silenced.

    Parameters
    ----------
    target : float
        The objective Σ_i ‖Z_i − Ẑ_i‖²_F to reach.
    **kwargs
        Arguments of :func:`tensorpanda.tucker2` (``data``, ``rank``, ``solver``, …), all
        but ``callback``.

    Returns
    -------
    tuple of (float, float, Factorization)
        The seconds to reach ``target`` (``nan`` if the fit never did), the final objective,
        and the fit.

    Examples
    --------
    >>> import math
    >>> from tensorpanda.bench import Planted, time_to_reach
    >>> Z = Planted(channels=4, spatial=(3, 3), parts=3).array(40, 20)
    >>> seconds, objective, fit = time_to_reach(1e9, data=Z, rank=(4, 3), random_state=0)
    >>> seconds >= 0, objective < 1e9, fit.rank
    (True, True, (4, 3))
    >>> math.isnan(time_to_reach(-1.0, data=Z, rank=(4, 3), random_state=0)[0])  # unreachable
    True
    """
    reached = []

    def callback(state):
        if state.objective <= target and not reached:
            reached.append(state.elapsed)
        return False

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tp.ConvergenceWarning)
        fit = tp.tucker2(callback=callback, **kwargs)
    return (reached[0] if reached else float("nan")), fit.objective, fit


def run_paper(Z, rank, learning_rate, n_steps, reorder=False):
    """The original optimiser for ``n_steps`` single-sample steps (one epoch of Z[:n_steps]).

    Returns (seconds, final objective over all of Z, or inf if it diverged).

    The optimiser starts from ``random_state=0`` with free appearances. The time leaves out
    the per-epoch objective evaluation (the original evaluates none); the objective is
    computed afterwards, outside the timed region.

    Parameters
    ----------
    Z : numpy array of shape (N, C, S)
        The data.
    rank : (int, int)
        (R_C, R_S).
    learning_rate : float
        The step size of every single-sample step.
    n_steps : int
        Number of steps: one epoch over the first ``n_steps`` samples.
    reorder : bool, default False
        Evaluate the gradient's matrix products in the cheaper order (same steps, less
        time).

    Returns
    -------
    tuple of (float, float)
        The seconds the steps took and the objective Σ_i ‖Z_i − Ẑ_i‖²_F over all of Z;
        ``inf`` if the optimiser diverged.

    Examples
    --------
    >>> from tensorpanda.bench import Planted, run_paper
    >>> Z = Planted(channels=4, spatial=(3, 3), parts=3).array(40, 20)
    >>> seconds, objective = run_paper(Z, (4, 3), 0.05, 40)
    >>> seconds > 0, 0 < objective < float((Z.astype(float) ** 2).sum())
    (True, True)
    >>> run_paper(Z, (4, 3), 1e6, 20)[1]  # far too large a step diverges
    inf
    """
    config = validate(
        Config(
            rank=rank, solver="paper", appearances="free", learning_rate=learning_rate,
            max_iter=1, tol=0, random_state=0,
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tp.ConvergenceWarning)
        start = time.perf_counter()
        try:
            fit = fit_paper(as_source(Z[:n_steps], batch_size=1000), config, reorder=reorder)
        except tp.DivergenceError:
            return time.perf_counter() - start, np.inf
        # the original evaluates no objective: the per-epoch evaluation is not its cost
        seconds = time.perf_counter() - start - fit.info["evaluation_time"]
    # the objective over the whole data set, outside the timed region
    error = tp.reconstruction_error(fit, Z, relative=False) ** 2
    return seconds, error


def best_of(run, *args, repeats: int = 3, single_above: float = 60.0, **kwargs):
    """``run(*args, **kwargs) -> (seconds, value, ...)`` repeated ``repeats`` times, keeping
    the fastest, unless one run takes more than ``single_above`` seconds: short timings on a
    shared machine are noisy, and the minimum is the usual estimate of a run's own cost (as
    timeit reports). Returns (seconds, value) of the first run's value.

    Parameters
    ----------
    run : callable
        Returns a tuple whose first two items are (seconds, value).
    *args
        Positional arguments of ``run``.
    repeats : int, default 3
        The most runs to make.
    single_above : float, default 60.0
        Make a single run if the first one takes longer than this many seconds.
    **kwargs
        Keyword arguments of ``run``.

    Returns
    -------
    tuple of (float, object)
        The fewest seconds of the runs and the value of the first run.

    Examples
    --------
    >>> from tensorpanda.bench import best_of
    >>> timings = iter([3.0, 1.0, 2.0])
    >>> def run(label):
    ...     return next(timings), label
    >>> best_of(run, "first")
    (1.0, 'first')
    >>> timings = iter([3.0, 1.0, 2.0])
    >>> best_of(run, "slow", single_above=2.5)  # the first run is slow: no repeats
    (3.0, 'slow')
    """
    seconds, value = run(*args, **kwargs)[:2]
    if seconds <= single_above:
        for _ in range(repeats - 1):
            seconds = min(seconds, run(*args, **kwargs)[0])
    return seconds, value


def best_learning_rate(Z, rank, steps) -> float:
    """The grid value whose run over the first ``steps`` samples ends lowest.

    The grid is :data:`LEARNING_RATE_GRID` in units of 1 / mean ‖Z_i‖²_F over the first
    ``steps`` samples; each candidate runs :func:`run_paper` for ``steps`` steps and is
    scored by its objective over all of Z.

    Parameters
    ----------
    Z : numpy array of shape (N, C, S)
        The data.
    rank : (int, int)
        (R_C, R_S).
    steps : int
        Number of single-sample steps of each trial run (at most N).

    Returns
    -------
    float
        The best learning rate (a grid value times the unit).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.bench import LEARNING_RATE_GRID, Planted, best_learning_rate
    >>> Z = Planted(channels=4, spatial=(3, 3), parts=3).array(40, 20)
    >>> rate = best_learning_rate(Z, (4, 3), 10)
    >>> unit = 1 / np.mean(np.sum(Z[:10].astype(np.float64) ** 2, axis=(1, 2)))
    >>> any(np.isclose(rate, unit * g) for g in LEARNING_RATE_GRID)
    True
    """
    unit = 1.0 / float(np.mean(np.sum(Z[:steps].astype(np.float64) ** 2, axis=(1, 2))))
    scores = {unit * g: run_paper(Z, rank, unit * g, steps)[1] for g in LEARNING_RATE_GRID}
    return min(scores, key=scores.get)


# -- (a) -----------------------------------------------------------------------------------------
def section_a(cfg) -> list[str]:
    """Table (a): time each solver takes to reach the paper optimiser's final objective.

    For each data size of ``cfg["a"]``, planted data is generated, the paper optimiser runs
    one epoch of single-sample steps at the best learning rate of the grid (plain and with
    its products reordered), then ``mu``, ``hals``, ``pgd`` (numpy) and ``adam`` (pytorch,
    minibatches) are timed to the objective it ended at, each the best of 3 runs.

    Parameters
    ----------
    cfg : dict
        A configuration like :data:`SMOKE` or :data:`FULL`; reads ``"a"`` (a list of
        (N, C, spatial) sizes), ``"parts"``, ``"paper_grid_steps"`` and ``"batch"``.

    Returns
    -------
    list of str
        The lines of a markdown table (with a note above it), one row per data size and
        solver.

    Examples
    --------
    Running it imports torch and takes seconds even at :data:`SMOKE` sizes; with no data
    sizes it gives the table's head only:

    >>> from tensorpanda.bench import SMOKE, section_a
    >>> SMOKE["a"]
    [(300, 32, (6, 6))]
    >>> section_a({**SMOKE, "a": []})[2]
    "| data (N, C, S) | solver | time to the paper's objective (s) | ratio paper / solver ..."
    >>> len(section_a(SMOKE))  # doctest: +SKIP
    10
    """
    rows = [
        "Times are the best of 3 runs for runs under a minute, one run above.",
        "",
        "| data (N, C, S) | solver | time to the paper's objective (s) | ratio paper / solver "
        "| final relative error |",
        "|---|---|---|---|---|",
    ]
    for n, C, spatial in cfg["a"]:
        S = int(np.prod(spatial))
        planted = Planted(C, spatial, cfg["parts"])
        Z = planted.array(n, cfg["batch"])
        sq_norm = float(np.sum(Z.astype(np.float64) ** 2))
        rank = (C, cfg["parts"])
        lr = best_learning_rate(Z, rank, cfg["paper_grid_steps"])
        t_paper, f_paper = best_of(run_paper, Z, rank, lr, n)
        t_reordered, _ = best_of(run_paper, Z, rank, lr, n, reorder=True)
        label = f"({n}, {C}, {S})"
        rel = (f_paper / sq_norm) ** 0.5
        rows.append(f"| {label} | paper (lr {lr:g}, {n} steps) | {t_paper:.2f} | 1 | {rel:.4f} |")
        rows.append(
            f"| {label} | paper, products reordered | {t_reordered:.2f} | "
            f"{t_paper / t_reordered:.1f} | {rel:.4f} |"
        )
        for solver in ("mu", "hals", "pgd"):
            t, f = best_of(time_to_reach, f_paper, data=Z, rank=rank, solver=solver,
                           random_state=0)
            rows.append(f"| {label} | {solver} | {_timing(t, t_paper)} | "
                        f"{(f / sq_norm) ** 0.5:.4f} |")
        with tl.backend_context("pytorch"):
            import torch

            t, f = best_of(
                time_to_reach, f_paper, data=torch.from_numpy(Z), rank=rank, solver="adam",
                learning_rate=1e-2, max_iter=10, batch_size=cfg["batch"], random_state=0,
            )
        rows.append(
            f"| {label} | adam (pytorch, minibatch {cfg['batch']}) | {_timing(t, t_paper)} | "
            f"{(f / sq_norm) ** 0.5:.4f} |"
        )
        del Z
    return rows


def _timing(seconds: float, paper_seconds: float) -> str:
    """The time and ratio cells of a solver's row; a solver that never reached the paper
    optimiser's objective says so instead of printing nan."""
    if np.isnan(seconds):
        return "not reached | –"
    return f"{seconds:.3f} | {paper_seconds / seconds:.0f}"


# -- (b) -----------------------------------------------------------------------------------------
def bare_gram(Z, batch: int) -> float:
    """Seconds for Σ_i Z_iᵀ Z_i over the batches: the product every R_C = C fit needs.

    Parameters
    ----------
    Z : numpy array or memmap of shape (N, C, S)
        The data, read ``batch`` samples at a time.
    batch : int
        Number of samples per batch.

    Returns
    -------
    float
        The wall-clock seconds of the product (the product itself is discarded).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.bench import bare_gram
    >>> Z = np.random.default_rng(0).standard_normal((40, 4, 9)).astype(np.float32)
    >>> seconds = bare_gram(Z, 16)
    >>> isinstance(seconds, float), seconds >= 0
    (True, True)
    """
    start = time.perf_counter()
    K = None
    for b in range(0, len(Z), batch):
        X = np.asarray(Z[b : b + batch]).reshape(-1, Z.shape[2])
        K = gram(X) if K is None else K + gram(X)
    return time.perf_counter() - start


def section_b(cfg, folder: str) -> list[str]:
    """Table (b): a streamed R_C = C fit against the bare Gram product, and passes for R_C < C.

    Planted data of size ``cfg["b"]`` is written to a float32 memory-mapped file
    ``features.npy`` in ``folder``; the R_C = C fit and :func:`bare_gram` over the same
    batches are timed twice each, interleaved (best of 2); then an R_C = ``cfg["low_rank"]``
    fit reports its passes over the data and its time.

    Parameters
    ----------
    cfg : dict
        A configuration like :data:`SMOKE` or :data:`FULL`; reads ``"b"`` (one
        (N, C, spatial) size), ``"parts"``, ``"low_rank"`` and ``"batch"``.
    folder : str
        An existing folder for the memory-mapped data file.

    Returns
    -------
    list of str
        The lines of a markdown table.

    Examples
    --------
    >>> import tempfile
    >>> from tensorpanda.bench import section_b
    >>> cfg = {"b": (40, 4, (2, 2)), "parts": 2, "low_rank": 2, "batch": 20}
    >>> rows = section_b(cfg, tempfile.mkdtemp())
    >>> len(rows), rows[5]
    (8, '| (40, 4, 4) | R_C = C: passes over the data | 1 |')
    >>> rows[4]
    '| (40, 4, 4) | **fit / bare Gram** | **...** |'
    """
    n, C, spatial = cfg["b"]
    S = int(np.prod(spatial))
    planted = Planted(C, spatial, cfg["parts"], seed=1)
    path = os.path.join(folder, "features.npy")
    Z = np.lib.format.open_memmap(path, "w+", np.float32, (n, C, S))
    for start in range(0, n, cfg["batch"]):
        Z[start : start + cfg["batch"]] = planted.batch(start, min(cfg["batch"], n - start))
    Z.flush()
    bare_gram(Z, cfg["batch"])  # warm the page cache so both timings read the same way
    grams, fits = [], []
    for _ in range(2):  # interleaved repetitions: the machine is shared and noisy
        grams.append(bare_gram(Z, cfg["batch"]))
        start = time.perf_counter()
        fit = tp.tucker2(Z, (None, cfg["parts"]), batch_size=cfg["batch"], random_state=0)
        fits.append(time.perf_counter() - start)
    low = tp.tucker2(Z, (cfg["low_rank"], cfg["parts"]), batch_size=cfg["batch"], random_state=0)
    del Z
    return [
        "| data (N, C, S), float32 memmap | measure | value |",
        "|---|---|---|",
        f"| ({n}, {C}, {S}) | bare Gram product, best of 2 (s) | {min(grams):.2f} |",
        f"| ({n}, {C}, {S}) | R_C = C fit ({fit.info['solver']}), best of 2 (s) "
        f"| {min(fits):.2f} |",
        f"| ({n}, {C}, {S}) | **fit / bare Gram** | **{min(fits) / min(grams):.2f}** |",
        f"| ({n}, {C}, {S}) | R_C = C: passes over the data | {fit.info['n_passes']} |",
        f"| ({n}, {C}, {S}) | R_C = {cfg['low_rank']} < C: passes to converge "
        f"(tol 1e-6) | {low.info['n_passes']} ({low.info['n_iter']} iterations, "
        f"converged: {low.info['converged']}) |",
        f"| ({n}, {C}, {S}) | R_C = {cfg['low_rank']} < C: fit time (s) | {low.info['time']:.2f} |",
    ]


# -- (c) -----------------------------------------------------------------------------------------
def memory_worker(n: int, C: int, spatial: tuple, parts: int, batch: int) -> None:
    """Fit on n generated samples (never all in memory) and print the peak RSS in MiB.

    Meant to run in a process of its own (:func:`section_c` starts it through
    ``--memory-worker``), so the peak belongs to this fit alone. Prints one line: the peak
    resident memory (MiB), the fit's seconds and the number of samples it saw.

    Parameters
    ----------
    n : int
        Number of samples, generated batch by batch (noise from a fixed pool).
    C : int
        Number of channels.
    spatial : tuple of int
        The spatial shape (H, W).
    parts : int
        Number of planted parts, and R_S of the fit (R_C = C).
    batch : int
        Samples per generated batch.

    Examples
    --------
    >>> import contextlib, io
    >>> from tensorpanda.bench import memory_worker
    >>> with contextlib.redirect_stdout(io.StringIO()) as printed:
    ...     memory_worker(40, 4, (2, 2), 2, 20)
    >>> peak_mib, seconds, samples = printed.getvalue().split()
    >>> float(peak_mib) > 0, float(seconds) >= 0, int(samples)
    (True, True, 40)
    """
    planted = Planted(C, spatial, parts, seed=2)

    def batches():
        for start in range(0, n, batch):
            yield planted.batch(start, min(batch, n - start), fresh_noise=False)

    start = time.perf_counter()
    fit = tp.tucker2(batches, (None, parts), random_state=0)
    seconds = time.perf_counter() - start
    print(f"{peak_resident_mib():.1f} {seconds:.2f} {fit.info['n_samples']}")


def peak_resident_mib() -> float:
    """This process's peak resident memory (VmHWM). Unlike getrusage's ru_maxrss it is not
    inherited from the parent across fork and exec.

    Falls back on ``getrusage`` where ``/proc/self/status`` has no ``VmHWM`` line.

    Returns
    -------
    float
        The peak resident set size, in MiB.

    Examples
    --------
    >>> from tensorpanda.bench import peak_resident_mib
    >>> peak_resident_mib() > 0
    True
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def section_c(cfg) -> list[str]:
    """Table (c): peak memory of a streamed fit at two data sizes.

    Each size runs :func:`memory_worker` in a fresh Python process (``python -m
    tensorpanda.bench --memory-worker ...``); a ratio of peaks near 1 shows that memory
    does not grow with the number of samples.

    Parameters
    ----------
    cfg : dict
        A configuration like :data:`SMOKE` or :data:`FULL`; reads ``"c"`` (two sample
        counts, C and the spatial shape (H, W)), ``"parts"`` and ``"batch"``.

    Returns
    -------
    list of str
        The lines of a markdown table: one row per size and the ratio of the peaks.

    Raises
    ------
    subprocess.CalledProcessError
        If a worker process fails.

    Examples
    --------
    Each size starts a Python process (a second or more each), so only the configuration
    is shown running:

    >>> from tensorpanda.bench import SMOKE, section_c
    >>> SMOKE["c"]  # (sample counts, C, spatial shape)
    ((200, 400), 32, (6, 6))
    >>> section_c(SMOKE)[-1]  # doctest: +SKIP
    '| **ratio 400 / 200** | **1.0...** | |'
    """
    sizes, C, spatial = cfg["c"]
    rows = [
        "| samples N (C, S) | peak resident memory (MiB) | fit time (s) |",
        "|---|---|---|",
    ]
    peaks = []
    for n in sizes:
        out = subprocess.run(
            [sys.executable, "-m", "tensorpanda.bench", "--memory-worker", str(n), str(C),
             *map(str, spatial), str(cfg["parts"]), str(cfg["batch"])],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        peak, seconds, seen = float(out[0]), float(out[1]), int(out[2])
        assert seen == n
        peaks.append(peak)
        rows.append(f"| {n} ({C}, {int(np.prod(spatial))}) | {peak:.0f} | {seconds:.1f} |")
    rows.append(f"| **ratio {sizes[1]} / {sizes[0]}** | **{peaks[1] / peaks[0]:.3f}** | |")
    return rows


# -- main ----------------------------------------------------------------------------------------
def header(args) -> list[str]:
    """The lines above the tables: the command that was run and the machine it ran on.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments, with ``argv`` (the list of command-line arguments) set.

    Returns
    -------
    list of str
        Markdown lines: the command, a blank line, and the machine, library versions and
        active TensorLy backend.

    Examples
    --------
    >>> import argparse
    >>> from tensorpanda.bench import header
    >>> args = argparse.Namespace(argv=["--smoke"])
    >>> header(args)[0]
    'Command: `python benchmarks/bench_solvers.py --smoke`'
    """
    import torch

    return [
        "Command: `" + " ".join(["python", "benchmarks/bench_solvers.py", *args.argv]) + "`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
        f"tensorly {tl.__version__}, backend {tl.get_backend()}, float32. All numbers of a "
        "table come from one run of the script.",
    ]


def main(argv=None) -> int:
    """Run the benchmark from the command line: print the tables, optionally write them.

    Options: ``--smoke`` (the :data:`SMOKE` sizes instead of :data:`FULL`), ``--sections``
    (which of ``a``, ``b``, ``c`` to run, default all), ``--markdown FILE`` (also write the
    tables to FILE). The hidden ``--memory-worker n C H W parts batch`` runs
    :func:`memory_worker` (for :func:`section_c`).

    Parameters
    ----------
    argv : list of str, optional
        The command-line arguments; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    SystemExit
        If the arguments are not valid (from argparse).

    Examples
    --------
    >>> import contextlib, io, os, tempfile
    >>> from tensorpanda.bench import main
    >>> with contextlib.redirect_stdout(io.StringIO()) as printed:  # as section (c) runs it
    ...     status = main(["--memory-worker", "40", "4", "2", "2", "2", "20"])
    >>> status, printed.getvalue().split()[-1]  # exit status, samples the worker saw
    (0, '40')
    >>> out = os.path.join(tempfile.mkdtemp(), "bench.md")
    >>> main(["--smoke", "--sections", "b", "--markdown", out])
    <BLANKLINE>
    ## (b) A streamed R_C = C fit against the bare Gram product
    ...
    0
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--sections", default="abc", help="which of a, b, c to run")
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--memory-worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_worker:
        n, C, H, W, parts, batch = map(int, args.memory_worker)
        memory_worker(n, C, (H, W), parts, batch)
        return 0
    args.argv = sys.argv[1:] if argv is None else list(argv)
    cfg = SMOKE if args.smoke else FULL
    lines = header(args)
    with tempfile.TemporaryDirectory(prefix="tensorpanda-bench-") as folder:
        for key, title, run in (
            ("a", "(a) Time to reach the paper optimiser's final objective", section_a),
            ("b", "(b) A streamed R_C = C fit against the bare Gram product", section_b),
            ("c", "(c) Peak memory of a streamed fit", section_c),
        ):
            if key in args.sections:
                rows = run(cfg, folder) if key == "b" else run(cfg)
                lines += ["", f"## {title}", "", *rows]
                print("\n".join(["", f"## {title}", "", *rows]), flush=True)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write("# Solver benchmarks\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

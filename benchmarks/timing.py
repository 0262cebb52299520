"""Timing helpers the benchmark sections share: a fit's time to an objective, the bare Gram
product (the floor of every Gram route), peak memory, and summaries of paired ratios."""

from __future__ import annotations

import resource
import statistics
import sys
import time
import warnings

import numpy as np
from scipy.linalg import blas

import tensorpanda as tp


def time_to_reach(target: float, stop: bool = True, **kwargs):
    """(seconds until tucker2's objective first reached ``target`` (nan if never), final
    objective, fit): the fit's own clock read by a callback, so it includes the first pass.
    With ``stop`` the fit stops there (its objective is then the one at the target)."""
    reached = []

    def callback(state):
        if state.objective <= target and not reached:
            reached.append(state.elapsed)
        return bool(reached) and stop

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tp.ConvergenceWarning)
        fit = tp.tucker2(callback=callback, **kwargs)
    return (reached[0] if reached else float("nan")), fit.objective, fit


def best_of(run, *args, repeats: int = 3, single_above: float = 60.0, **kwargs):
    """(fewest seconds, first value) of ``repeats`` calls of ``run -> (seconds, value, ...)``,
    one call if it takes over ``single_above`` s: short timings on a shared machine are noisy,
    and the minimum estimates a run's own cost (as timeit reports)."""
    seconds, value = run(*args, **kwargs)[:2]
    if seconds <= single_above:
        for _ in range(repeats - 1):
            seconds = min(seconds, run(*args, **kwargs)[0])
    return seconds, value


# -- the floor: one bare Gram product ------------------------------------------------------------
def _gemm(X):
    return X.T @ X


def _syrk(X):
    # the upper triangle of XᵀX in half the flops of a general product
    routine = blas.ssyrk if X.dtype == np.float32 else blas.dsyrk
    return routine(1.0, X, trans=1, lower=0)


GRAM_FORMS = {"XᵀX (gemm)": _gemm, "syrk (upper triangle)": _syrk}


def bare_gram(batches, form: str) -> float:
    """Seconds for Σ_i Z_iᵀ Z_i (S×S) over ``batches``, each batch reshaped to (n·C, S) and
    multiplied in one BLAS call of ``form``: the product every R_C = C Gram fit needs."""
    gram = GRAM_FORMS[form]
    started = time.perf_counter()
    K = None
    for Zb in batches():
        X = np.asarray(Zb).reshape(-1, Zb.shape[2])
        K = gram(X) if K is None else K + gram(X)
    return time.perf_counter() - started


def fastest_gram_form(batches, repeats: int = 2) -> tuple[str, dict]:
    """(the faster GRAM_FORMS entry, {form: best seconds}), interleaved."""
    seconds = {form: np.inf for form in GRAM_FORMS}
    for _ in range(repeats):
        for form in GRAM_FORMS:
            seconds[form] = min(seconds[form], bare_gram(batches, form))
    return min(seconds, key=seconds.get), seconds


def progress(message: str) -> None:
    """A time-stamped line on stderr, so that a long run shows where it is."""
    print(time.strftime("[%H:%M:%S]"), message, file=sys.stderr, flush=True)


# -- memory and summaries ------------------------------------------------------------------------
def peak_resident_mib() -> float:
    """This process's peak resident memory in MiB (VmHWM: unlike getrusage's ru_maxrss, not
    inherited from the parent across fork and exec; getrusage where there is no VmHWM)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def spread(values, digits: int = 1, none: str = "–") -> str:
    """"median (min–max)" of ``values`` (nan entries dropped), ``none`` when none is left."""
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return none
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"

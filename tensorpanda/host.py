"""On a CPU, a Gram fit runs on numpy whatever the TensorLy backend.

A Gram fit spends its time in passes over the data (large products) and in the update rules
on the held statistics: thousands of products of S×R or C×R matrices, where each operation
pays its framework's dispatch cost (tens of microseconds for torch or jax on a CPU, about
one for numpy; jax also compiles each new batch shape). When the data lives in host memory
(numpy arrays, CPU torch or jax tensors) the fit therefore runs on numpy, reading each batch
without a copy, and hands the factors back in the user's backend, dtype and device; the
callback sees them there too. Data on an accelerator stays there: the statistics and the
S×S problem are computed on the device.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace

import tensorly as tl

from . import _backend as B
from .data import BatchSource, backend_context, solver_dtype_name
from .params import Config
from .statistics import blas_controller

# Statistics up to this many rows get one BLAS thread in the update rules (see one_thread).
ONE_THREAD_MAX_ROWS = 1024


def runs_on_numpy(source: BatchSource) -> bool:
    """Whether a Gram fit of ``source`` runs on numpy: another backend is active and the
    first batch is in host memory (read without losing it)."""
    if tl.get_backend() == "numpy":
        return False
    first = source.first_raw_batch()
    return first is not None and B.in_host_memory(first)


def fit_on_numpy(source: BatchSource, config: Config, run):
    """``run(source, config)`` (a Gram fit) on the numpy backend; the factors (and the
    callback's) come back in the context the active backend would have given them.

    The user's data is still produced under the user's backend: a generator that builds its
    batches with ``tl.tensor`` runs as it would outside the fit.
    """
    first = source.first_raw_batch()
    backend, dtype = tl.get_backend(), solver_dtype_name(first)
    user_context = backend_context(first, dtype)
    callback = config.callback
    if callback is not None:
        config = replace(config, callback=lambda state: callback(
            replace(state, A=_back(state.A, backend, user_context),
                    P=_back(state.P, backend, user_context))))
    source.producer_backend = backend
    try:
        with tl.backend_context("numpy"):
            source.read_through_numpy()
            source.context = backend_context(first, dtype)
            result = run(source, config)
    finally:
        source.context, source.producer_backend = user_context, None
    result.A = _back(result.A, backend, user_context)
    result.P = _back(result.P, backend, user_context)
    return result


def _back(X, backend: str, context: dict):
    """A numpy factor as a tensor of ``backend`` in ``context``."""
    with tl.backend_context(backend):
        return B.to_backend(X, context)


def one_thread(n_rows: int):
    """A context that runs numpy's BLAS on one thread while the update rules work on
    statistics of ``n_rows`` rows (up to `ONE_THREAD_MAX_ROWS`).

    Their products (say 64×64 by 64×8) end before BLAS threads could share them, and on a
    machine whose cores are busy each product waits for its threads to be scheduled: R_C < C
    on 3,000 DCGAN feature maps took 94 s with two threads under load, 6.8 s with one.
    """
    if tl.get_backend() != "numpy" or n_rows > ONE_THREAD_MAX_ROWS:
        return nullcontext()
    return blas_controller().limit(limits=1, user_api="blas")

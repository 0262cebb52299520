"""Section (c): TensorLy's non-negative Tucker beside tensorpanda's on the same data, and
section (e): one fit on each TensorLy backend, side by side.

(c) TensorLy has no Tucker-2: a sample mode left whole must be a factor of its Tucker
model, an N×N factor, here fixed to the identity (``fixed_modes=[0]``, with TensorLy's own
non-negative SVD start for the other two modes). Each of its mode products then multiplies
by that identity, O(N²·C·S) per product, so it runs at a small N. It also constrains the
core to be non-negative where tensorpanda's Tucker cores are free least-squares cores, so
the two fit related but different models; both errors are over the same data.
"""

from __future__ import annotations

import importlib
import statistics
import time
import warnings

import numpy as np
import tensorly as tl

import tensorpanda as tp

from .speed import label, planted
from .timing import progress


# -- (c) -----------------------------------------------------------------------------------------
def tensorly_fit(X, rank, n_iter_max: int = 100) -> tuple[float, float, int]:
    """(seconds, relative error, iterations) of tensorly's ``non_negative_tucker_hals`` on
    X (N, C, S) with the sample mode fixed to the identity (its other defaults kept)."""
    from tensorly.decomposition import non_negative_tucker_hals
    from tensorly.decomposition._tucker import initialize_tucker

    n = X.shape[0]
    started = time.perf_counter()
    core, (A, P) = initialize_tucker(X, list(rank), modes=[1, 2], random_state=0,
                                     init="svd", non_negative=True)
    init = (core, [np.eye(n, dtype=X.dtype), A, P])
    (core, factors), errors = non_negative_tucker_hals(
        X, (n, *rank), init=init, fixed_modes=[0], return_errors=True, random_state=0,
        n_iter_max=n_iter_max,
    )
    seconds = time.perf_counter() - started
    fitted = tl.tucker_to_tensor((core, factors))
    error = float(np.linalg.norm(X - fitted) / np.linalg.norm(X))
    return seconds, error, len(errors)


def tensorpanda_fit(X, rank, batch: int) -> tuple[float, float, int]:
    """(seconds, relative error, iterations) of tensorpanda's fully non-negative Tucker-2."""
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tp.ConvergenceWarning)
        fit = tp.tucker2(X, rank, model="tucker", appearances="nonnegative", random_state=0,
                         batch_size=batch)
    seconds = time.perf_counter() - started
    return seconds, (max(fit.objective, 0) / fit.info["sq_norm"]) ** 0.5, fit.info["n_iter"]


def section_tensorly(cfg) -> list[str]:
    """Table (c): both fits of max(Z, 0) for planted Z, interleaved ``cfg['repeats']`` times."""
    n, C, spatial = cfg["tensorly"]
    rank = (cfg["tensorly_rank"], cfg["n_parts"])
    X = np.maximum(planted(C, spatial, cfg["n_parts"], seed=4).array(n, cfg["batch"]), 0)
    runs = {"tensorly": [], "tensorpanda": []}
    for repeat in range(cfg["tensorly_repeats"]):
        progress(f"(c) {label(n, C, spatial)}: TensorLy and tensorpanda, round {repeat + 1}")
        runs["tensorly"].append(tensorly_fit(X, rank, cfg["tensorly_iter"]))
        runs["tensorpanda"].append(tensorpanda_fit(X, rank, cfg["batch"]))
    S = int(np.prod(spatial))
    big = 10_000**2 * C * S / 1e12
    rows = [
        f"Data: max(Z, 0) of planted Z (post-ReLU-like, non-negative); rank (R_C, R_S) = "
        f"{rank}; times are the best of {cfg['tensorly_repeats']}, interleaved; TensorLy at most "
        f"{cfg['tensorly_iter']} iterations (its default: 100), its tol left at its default.",
        "",
        "| data (N, C, S) | fit | model | time (s) | iterations | final relative error |",
        "|---|---|---|---|---|---|",
    ]
    models = {
        "tensorly": ("TensorLy non_negative_tucker_hals, sample mode = fixed N×N identity",
                     "A, P, cores ≥ 0"),
        "tensorpanda": ("tensorpanda tucker2(model='tucker', appearances='nonnegative')",
                        "A, P ≥ 0, free cores"),
    }
    for key, (fit, model) in models.items():
        seconds = min(r[0] for r in runs[key])
        _, error, iterations = runs[key][0]
        rows.append(f"| {label(n, C, spatial)} | {fit} | {model} | {seconds:.3f} "
                    f"| {iterations} | {error:.5f} |")
    return rows + [
        "",
        "TensorLy cannot solve the same problem: it has no Tucker-2, so the sample mode is an "
        "N×N factor (here fixed to the identity) that each of its mode products multiplies "
        f"by, O(N²·C·S) per product ({big:.3g} T multiply-adds at N = 10,000 for this C, S), "
        "and its core is constrained non-negative where tensorpanda's cores are free: its "
        "error is that of a narrower model, at a small N.",
    ]


# -- (e) -----------------------------------------------------------------------------------------
def backend_data(Z: np.ndarray, name: str):
    """Z as a tensor of backend ``name`` (torch shares numpy's memory; jax copies)."""
    if name == "pytorch":
        import torch

        return torch.from_numpy(Z)
    with tl.backend_context(name):
        return tl.tensor(Z)


def available_backends(names) -> tuple[list[str], list[str]]:
    """(backends whose package imports, those that do not)."""
    module = {"numpy": "numpy", "pytorch": "torch", "jax": "jax"}
    ok, missing = [], []
    for name in names:
        try:
            importlib.import_module(module[name])
            ok.append(name)
        except ImportError:
            missing.append(name)
    return ok, missing


def backend_runs(Z, names, rank, cfg) -> dict:
    """{backend: [(seconds, relative error), ...]}: the default fit on each backend,
    ``cfg['repeats']`` interleaved rounds."""
    tensors = {name: backend_data(Z, name) for name in names}
    runs = {name: [] for name in names}
    for _ in range(cfg["repeats"]):
        for name in names:
            with tl.backend_context(name):
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", tp.ConvergenceWarning)
                    fit = tp.tucker2(tensors[name], rank, random_state=0,
                                     batch_size=cfg["batch"])
                seconds = time.perf_counter() - started
            error = (max(float(fit.objective), 0) / float(fit.info["sq_norm"])) ** 0.5
            runs[name].append((seconds, error, fit.info["solver"]))
    return runs


def section_backends(cfg) -> list[str]:
    """Table (e): the default fit (R_C = C) on numpy, pytorch and jax at each size."""
    names, missing = available_backends(("numpy", "pytorch", "jax"))
    rows = [
        f"The default fit, rank (C, {cfg['n_parts']}), data converted to each backend before "
        f"timing; {cfg['repeats']} interleaved rounds.",
        "",
        "| data (N, C, S) | backend | min (s) | median (s) | min / numpy's | median / numpy's "
        "| final relative error |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, C, spatial in cfg["speed"]:
        progress(f"(e) {label(n, C, spatial)}: {', '.join(names)}")
        Z = planted(C, spatial, cfg["n_parts"], seed=0).array(n, cfg["batch"])
        runs = backend_runs(Z, names, (C, cfg["n_parts"]), cfg)
        base = [r[0] for r in runs["numpy"]]
        for name in names:
            seconds = [r[0] for r in runs[name]]
            rows.append(
                f"| {label(n, C, spatial)} | {name} ({runs[name][0][2]}) | {min(seconds):.3f} "
                f"| {statistics.median(seconds):.3f} | {min(seconds) / min(base):.2f} "
                f"| {statistics.median(seconds) / statistics.median(base):.2f} "
                f"| {runs[name][0][1]:.5f} |"
            )
        del Z
    if missing:
        rows += ["", f"Not installed, not run: {', '.join(missing)}."]
    return rows

"""Section (a): the default solver against the original optimiser at its best, beside the
floor, and section (b): passes over the data with R_C < C.

(a) For each size, on planted float32 data held in memory: the peer (`peers`, the
original optimiser with thin products at its faster thread count and the best learning
rate of its grid) and the Gram fits (the default solver, and ``appearances="free"``, the
paper's own model) timed to the peer's final objective, with one bare Gram product
Σ Z_iᵀ Z_i (the floor of any Gram route) in the same pair; ``pairs`` interleaved pairs,
each ratio taken within a pair. The faithful ``solver="paper"`` runs once, for parity.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

import tensorpanda as tp

from . import peers
from .planted import Planted
from .timing import bare_gram, fastest_gram_form, progress, spread, time_to_reach


def planted(C: int, spatial: tuple, n_parts: int, seed: int, n_appearances=None) -> Planted:
    """The benchmark's planted data: parts as horizontal bands, unit cores, σ = 0.1,
    samples divided by √C, float32, generated batch by batch."""
    return Planted(C, spatial, n_parts, n_appearances, layout="rows", noise=0.1,
                   normalize=True, seed=seed, dtype="float32")


def label(n: int, C: int, spatial: tuple) -> str:
    """The data cell of a row: (N, C, H×W)."""
    return f"({n}, {C}, {spatial[0]}×{spatial[1]})"


# -- (a) -----------------------------------------------------------------------------------------
def faithful_paper(Z, rank, lr, batch: int, threads: int) -> tuple[float, float]:
    """(seconds, objective) of ``solver="paper"`` (left-to-right products) with ``threads``
    BLAS threads, its per-epoch objective evaluation taken out of its time, as the original
    evaluates none."""
    with warnings.catch_warnings(), threadpool_limits(limits=threads):
        warnings.simplefilter("ignore", tp.ConvergenceWarning)
        started = time.perf_counter()
        fit = tp.tucker2(Z, rank, solver="paper", appearances="free", learning_rate=lr,
                         max_iter=1, random_state=0, batch_size=batch)
        seconds = time.perf_counter() - started - fit.info.get("evaluation_time", 0.0)
    return seconds, fit.objective


def tuned_peer(batches, rank, cfg) -> tuple[float, peers.Setting, str]:
    """(learning rate, fastest setting, a sentence on the tuning) of the peer on ``batches``."""
    plain = peers.Setting("thin products", 1)
    lr, _ = peers.best_learning_rate(batches, rank, cfg["grid_steps"], plain)
    setting, seconds = peers.tune(batches, rank, lr, cfg["tune_steps"])
    timings = "; ".join(f"{s}: {1e3 * t:.3f}" for s, t in seconds.items())
    note = (f"Peer tuning (ms per step, best of 2 runs of {cfg['tune_steps']} steps after a "
            f"trial that drops settings over 3× the fastest): {timings}; kept: **{setting}**, "
            f"learning rate {lr:.4g} (the best of the grid over {cfg['grid_steps']} steps).")
    return lr, setting, note


def paired_runs(Z, batches, rank, lr, setting, form, cfg) -> dict:
    """Seconds of each run in ``cfg['pairs']`` interleaved pairs: the peer, the default fit
    and the free-A fit (each to the peer's objective), the bare Gram product; and the
    peer's objective and the fits' final objectives and solver."""
    out = {key: [] for key in ("peer", "default", "free", "floor")}
    target = None
    for _ in range(cfg["pairs"]):
        seconds, A, P = peers.run(batches, rank, lr, setting)
        out["peer"].append(seconds)
        if target is None:
            target = peers.objective(batches, A, P)
        for key, extra in (("default", {}), ("free", {"appearances": "free"})):
            t, f, fit = time_to_reach(target, data=Z, rank=rank, random_state=0,
                                      batch_size=cfg["batch"], **extra)
            out[key].append(t)
            out[f"{key}_objective"], out[f"{key}_solver"] = f, fit.info["solver"]
        out["floor"].append(bare_gram(batches, form))
    out["peer_objective"] = target
    return out


def speed_rows(n: int, C: int, spatial: tuple, cfg) -> tuple[list[str], list[str]]:
    """(table rows, notes) of section (a) at one size."""
    Z = planted(C, spatial, cfg["n_parts"], seed=0).array(n, cfg["batch"])
    batches = peers.array_batches(Z, cfg["batch"])
    rank = (C, cfg["n_parts"])
    sq_norm = float(np.sum(Z.astype(np.float64) ** 2))
    progress(f"(a) {label(n, C, spatial)}: tuning the peer")
    lr, setting, note = tuned_peer(batches, rank, cfg)
    form, form_seconds = fastest_gram_form(batches)
    progress(f"(a) {label(n, C, spatial)}: {cfg['pairs']} pairs, peer: {setting}")
    runs = paired_runs(Z, batches, rank, lr, setting, form, cfg)
    progress(f"(a) {label(n, C, spatial)}: the faithful paper optimiser")
    t_faithful, f_faithful = faithful_paper(Z, rank, lr, cfg["batch"], setting.threads)

    def rel(f):
        return f"{(max(f, 0) / sq_norm) ** 0.5:.5f}"

    def ratios(a, b):
        return [x / y for x, y in zip(runs[a], runs[b], strict=True)]

    data, k = label(n, C, spatial), len(runs["peer"])
    rows = [
        f"| {data} | bare Gram product ΣZᵢᵀZᵢ, {form} (the floor) | {spread(runs['floor'], 3)} "
        f"| {spread(ratios('peer', 'floor'))} | 1 | – |",
        f"| {data} | original optimiser at its best ({setting}) | {spread(runs['peer'], 3)} "
        f"| 1 | {spread(ratios('peer', 'floor'))} | {rel(runs['peer_objective'])} |",
    ]
    for key, what in (("default", "default"), ("free", "appearances='free'")):
        rows.append(
            f"| {data} | {what} ({runs[key + '_solver']}) to the peer's objective "
            f"| {spread(runs[key], 3, 'not reached')} | {spread(ratios('peer', key))} "
            f"| {spread(ratios(key, 'floor'), 2)} | {rel(runs[key + '_objective'])} |"
        )
    rows.append(
        f"| {data} | original optimiser, faithful left-to-right products (solver='paper'), "
        f"for parity, 1 run, the peer's thread count | {t_faithful:.3f} "
        f"| {np.median(runs['peer']) / t_faithful:.2f} "
        f"| {t_faithful / np.median(runs['floor']):.1f} | {rel(f_faithful)} |"
    )
    forms = "; ".join(f"{f}: {t:.3f} s" for f, t in form_seconds.items())
    notes = [f"{data}: {note} Floor forms (best of 2): {forms}; kept: {form}. {k} pairs."]
    return rows, notes


def section_speed(cfg) -> list[str]:
    """Table (a) over the sizes of ``cfg['speed']``."""
    rows = [
        "Times: median (min–max) over interleaved pairs; each ratio is taken within a pair. "
        "The fits stop at the peer's objective (their error is the one there).",
        "",
        "| data (N, C, S) | run | time (s) | peer / run | run / floor | final relative error |",
        "|---|---|---|---|---|---|",
    ]
    notes = []
    for n, C, spatial in cfg["speed"]:
        more, note = speed_rows(n, C, spatial, cfg)
        rows += more
        notes += note
    return rows + [""] + [f"- {line}" for line in notes]


# -- (b) -----------------------------------------------------------------------------------------
def section_passes(cfg) -> list[str]:
    """Table (b): passes over the data and iterations to converge with R_C < C, per rule."""
    n, C, spatial = cfg["passes"]
    R_C, R_S = cfg["low_rank"], cfg["n_parts"]
    Z = planted(C, spatial, R_S, seed=3, n_appearances=R_C).array(n, cfg["batch"])
    sq_norm = float(np.sum(Z.astype(np.float64) ** 2))
    rows = [
        f"Planted data with {R_C} appearances; rank (R_C, R_S) = ({R_C}, {R_S}); "
        "each rule from its default start (random_state=0), default tol.",
        "",
        "| data (N, C, S) | rule | passes over the data | iterations | converged "
        "| time (s) | final relative error |",
        "|---|---|---|---|---|---|---|",
    ]
    for solver in (None, "hals", "mu", "pgd"):
        extra = {} if solver is None else {"solver": solver}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", tp.ConvergenceWarning)
            fit = tp.tucker2(Z, (R_C, R_S), random_state=0, batch_size=cfg["batch"], **extra)
        info = fit.info
        name = f"default ({info['solver']})" if solver is None else solver
        rows.append(
            f"| {label(n, C, spatial)} | {name} | {info['n_passes']} | {info['n_iter']} "
            f"| {info['converged']} | {info['time']:.2f} "
            f"| {(max(fit.objective, 0) / sq_norm) ** 0.5:.5f} |"
        )
    return rows

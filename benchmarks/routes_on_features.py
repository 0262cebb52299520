"""The routes of a Gram fit on the demo's DCGAN features: held Gram against its sketch.

Fits R_S = 8 parts with R_C = C at the DCGAN-faces generator's 16×16 layer (``main.8``,
C = 128) and 32×32 layer (``main.11``, C = 64) with each ``statistics`` route of
``--routes`` forced (``streamed`` too if asked: hundreds of passes), and
prints per fit the passes over the data, iterations, objective / Σ‖Z_i‖², the pass at
which it first reached the held Gram's final objective, and seconds (interleaved over
``--repeats`` rounds, median). Seeds of the generator's latents vary across ``--seeds``
data sets; the table gives mean ± standard deviation over them. docs/solvers.md shows it.

    python benchmarks/routes_on_features.py                 # about 4 minutes on 2 cores
    python benchmarks/routes_on_features.py --samples 1000 --seeds 1
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import torch

import tensorpanda as tp
from tensorpanda.benchmarks.rules_on_features import features


def fit(Z, route: str, target: float | None = None) -> dict:
    """One fit with ``statistics=route``: passes, iterations, objective share, seconds,
    and the pass at which its objective first reached ``target`` (None if never)."""
    reached = []

    def callback(state):
        if target is not None and not reached and state.objective <= target:
            reached.append(state.n_passes)

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tp.ConvergenceWarning)
        result = tp.tucker2(Z, (None, 8), statistics=route, callback=callback)
    info = result.info
    return {"passes": info["n_passes"], "iterations": info["n_iter"],
            "share": info["objective"] / info["sq_norm"], "objective": info["objective"],
            "seconds": time.perf_counter() - start, "reached": reached[0] if reached else None}


def layer_rows(layer: str, samples: int, seeds: int, repeats: int, routes) -> list[str]:
    """Markdown rows of one layer: each route's mean ± std over the data seeds (the held
    Gram first: its final objective is the others' target)."""
    found = {route: [] for route in ("gram", *routes)}
    for seed in range(seeds):
        Z = features(samples, layer, seed=seed)
        for _ in range(repeats):  # interleaved: every route sees the same machine state
            held = fit(Z, "gram")
            found["gram"].append({**held, "reached": held["passes"]})
            for route in routes:
                found[route].append(fit(Z, route, target=held["objective"]))
    shape = f"{layer} ({Z.shape[1]}×{Z.shape[2]}×{Z.shape[3]})"
    rows = []
    for route, runs in found.items():
        reached = [r["reached"] for r in runs if r["reached"] is not None]
        rows.append(
            f"| {shape} | `{route}` | {_mean_std([r['passes'] for r in runs], 1)} "
            f"| {_mean_std([r['iterations'] for r in runs], 0)} "
            f"| {_mean_std([r['share'] for r in runs], 6)} "
            f"| {_mean_std(reached, 1) if reached else 'never'} "
            f"({len(reached)}/{len(runs)}) "
            f"| {statistics.median(r['seconds'] for r in runs):.2f} |")
    return rows


def _mean_std(values, digits: int) -> str:
    values = [float(v) for v in values]
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--layers", default="main.8,main.11")
    parser.add_argument("--routes", default="sketched",
                        help="routes besides the held Gram, e.g. sketched,streamed")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"DCGAN-faces, N = {args.samples} per data set, {args.seeds} data set(s) (latent "
          f"seeds 0..{args.seeds - 1}), R_C = C, R_S = 8, pgd, tol = 1e-6; "
          f"{platform.machine()}, numpy {np.__version__}, tensorpanda {tp.__version__}")
    print()
    print("| layer (C×H×W) | statistics | passes | iterations | objective / sum of squares "
          "| pass that reached the held Gram's final objective (fits that did) "
          "| seconds (median) |")
    print("|---|---|---|---|---|---|---|")
    for layer in args.layers.split(","):
        print("\n".join(layer_rows(layer, args.samples, args.seeds, args.repeats,
                                    args.routes.split(","))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

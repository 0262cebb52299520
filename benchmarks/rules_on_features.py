"""Every Gram rule on the demo's DCGAN features: iterations, passes, final error.

Fits R_S = 8 parts at the DCGAN-faces generator's 8×8 layer (``main.5``, C = 256) on
10,000 streamed samples, with R_C = C and R_C = 64, for each of ``pgd``, ``hals`` and
``mu``, plus one ``pgd`` fit with ``tol=0`` (the lowest objective the rules reach), and
prints a Markdown table (docs/solvers.md shows it).

    python benchmarks/rules_on_features.py            # about 2 minutes on 2 cores
    python benchmarks/rules_on_features.py --samples 2000
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings

import numpy as np
import torch

import tensorpanda as tp
from tensorpanda.adapters import load

RULES = ("pgd", "hals", "mu")


def features(n: int, layer: str, seed: int = 0) -> np.ndarray:
    """n feature maps of the DCGAN-faces generator at ``layer``, as one float32 array."""
    gan = load("dcgan-faces")
    latents = gan.sample_latents(n, seed=seed)
    batches = gan.features(latents, layer, batch_size=500, progress=False)
    return torch.cat(list(batches)).numpy()


def row(Z, rank, solver, tol=None) -> dict:
    """One fit's iterations, passes, relative error and objective share."""
    params = {} if tol is None else {"tol": tol, "max_iter": 5000}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tp.ConvergenceWarning)
        fit = tp.tucker2(Z, rank, solver=solver, **params)
    share = fit.info["objective"] / fit.info["sq_norm"]
    return {"iterations": fit.info["n_iter"], "passes": fit.info["n_passes"],
            "error": np.sqrt(share), "share": share, "seconds": time.perf_counter() - start}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--layer", default="main.5")
    parser.add_argument("--rank-c", type=int, default=64, help="R_C of the R_C < C rows")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    Z = features(args.samples, args.layer)
    print(f"DCGAN-faces {args.layer} {Z.shape[1:]}, N = {len(Z)}, R_S = 8; "
          f"{platform.machine()}, numpy {np.__version__}, tensorpanda {tp.__version__}")
    print()
    print("| R_C | rule | iterations | passes | relative error | objective / Σ‖Z_i‖² | "
          "above the best (R_C = C) | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    best = row(Z, (None, 8), "pgd", tol=0.0)["share"]
    for rank_c in (None, args.rank_c):
        for solver in RULES:
            r = row(Z, (rank_c, 8), solver)
            above = f"{100 * (r['share'] / best - 1):.3f}%" if rank_c is None else ""
            print(f"| {'C' if rank_c is None else rank_c} | `{solver}` | {r['iterations']} | "
                  f"{r['passes']} | {r['error']:.5f} | {r['share']:.6f} | {above} | "
                  f"{r['seconds']:.1f} |", flush=True)
    print(f"\nLowest objective with R_C = C (pgd, tol = 0): {best:.6f} Σ‖Z_i‖²")
    return 0


if __name__ == "__main__":
    sys.exit(main())

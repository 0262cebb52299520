"""Fit times of two or more checkouts of tensorpanda, side by side on the same data.

For a change that must not alter behaviour (a refactor): each fit runs in a fresh process
with one checkout first on ``sys.path``, the checkouts interleaved within every repetition
(so the shared machine's load hits them alike), and the table gives each checkout's median
time, its ratio to the first, and whether every checkout reached the same objective,
iterations and passes.

    python benchmarks/compare_checkouts.py OLD_CHECKOUT NEW_CHECKOUT [...]
    python benchmarks/compare_checkouts.py --smoke . .          # seconds; run by the tests

A checkout is a folder holding ``tensorpanda/`` (e.g. ``git worktree add /tmp/old REV``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

# (N, C, S, solver, R_C): PandA's sizes, an R_C = C and an R_C < C fit each
FULL = [(10_000, 256, 64, "hals", "all"), (10_000, 256, 64, "hals", "64"),
        (10_000, 256, 64, "mu", "all"), (4_000, 512, 256, "hals", "all"),
        (4_000, 512, 256, "hals", "64"), (4_000, 512, 256, "mu", "all")]
SMOKE = [(200, 16, 16, "hals", "all"), (200, 16, 16, "hals", "4")]

# One fit on planted data (8 disjoint parts, orthonormal A, noise), timed without the data.
FIT_ONCE = """
import sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import tensorpanda as tp
N, C, S = (int(a) for a in sys.argv[2:5])
solver, R_C = sys.argv[5], sys.argv[6]
rng = np.random.default_rng(0)
P = np.zeros((S, 8), np.float32)
P[np.arange(S), np.arange(S) * 8 // S] = 1
A = np.linalg.qr(rng.standard_normal((C, C)))[0].astype(np.float32)
Z = (A @ rng.standard_normal((N, C, 8), dtype=np.float32)) @ P.T
Z += 0.1 * rng.standard_normal((N, C, S), dtype=np.float32)
side = int(round(S ** 0.5))
Z = Z.reshape(N, C, side, S // side)
start = time.perf_counter()
fit = tp.tucker2(Z, (None if R_C == "all" else int(R_C), 8), solver=solver, batch_size=250)
print(time.perf_counter() - start, repr(fit.objective), fit.info["n_iter"], fit.info["n_passes"])
"""


def fit_once(checkout: Path, case: tuple) -> tuple[float, tuple]:
    """(seconds, (objective, iterations, passes)) of one fit with ``checkout``'s code."""
    env = {**os.environ, "TENSORLY_BACKEND": "numpy"}
    out = subprocess.run(
        [sys.executable, "-c", FIT_ONCE, str(checkout), *map(str, case)],
        capture_output=True, text=True, env=env, check=True,
    ).stdout.split()
    return float(out[0]), tuple(out[1:])


def compare(checkouts: list[Path], cases: list[tuple], repeats: int) -> list[str]:
    """The markdown table: median seconds per checkout, ratios to the first, same result."""
    names = [c.name or str(c) for c in checkouts]
    rows = [
        "| data (N, C, S) | solver, R_C | " + " | ".join(f"{n} (s)" for n in names)
        + " | " + " | ".join(f"{n} / {names[0]}" for n in names[1:]) + " | same result |",
        "|---|---|" + "---|" * (2 * len(names)) + "",
    ]
    for case in cases:
        times = [[] for _ in checkouts]
        results = set()
        for _ in range(repeats):
            for i, checkout in enumerate(checkouts):  # interleaved within each repetition
                seconds, result = fit_once(checkout, case)
                times[i].append(seconds)
                results.add(result)
        medians = [statistics.median(t) for t in times]
        rows.append(
            f"| ({case[0]}, {case[1]}, {case[2]}) | {case[3]}, {case[4]} | "
            + " | ".join(f"{m:.3f}" for m in medians) + " | "
            + " | ".join(f"{m / medians[0]:.2f}" for m in medians[1:])
            + f" | {'yes' if len(results) == 1 else 'NO'} |"
        )
    return rows


def main(argv=None) -> int:
    """Parse the checkouts, run the comparison, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="+", type=Path, help="folders holding tensorpanda/")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    args = parser.parse_args(argv)
    missing = [c for c in args.checkouts if not (c / "tensorpanda" / "__init__.py").is_file()]
    if len(args.checkouts) < 2 or missing:
        parser.error("give two or more folders that each hold tensorpanda/ "
                     f"(missing: {', '.join(map(str, missing)) or 'a second checkout'})")
    checkouts = [c.resolve() for c in args.checkouts]
    rows = compare(checkouts, SMOKE if args.smoke else FULL, 1 if args.smoke else args.repeats)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

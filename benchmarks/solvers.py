"""Solver benchmark: tensorpanda's fits against the original PandA optimiser at its best,
the bare Gram product, TensorLy, and each other's backends.

Prints Markdown tables (every number of a table from the same process, ratios within
interleaved pairs):

(a) the default solver and ``appearances="free"`` timed to the final objective of the
    original optimiser at its best (`peers`: thin products, its faster BLAS thread
    count, the best learning rate of its grid), beside one bare Gram product Σ Z_iᵀ Z_i
    (the floor of any Gram route), and the faithful ``solver="paper"`` for parity
    (`speed`);
(b) passes over the data and iterations with R_C < C, per update rule (`speed`);
(c) TensorLy's non-negative Tucker beside tensorpanda's, same data (`peer_libraries`);
(d) large maps (S = 32×32, 64×64), streamed: time against the peer, peak memory, route
    (`large_maps`);
(e) the default fit on the numpy, pytorch and jax backends (`peer_libraries`);
(f) the peak memory of a streamed fit at two data sizes, each in its own process.

The data of every table is planted (`tensorpanda.benchmarks.planted`): disjoint
non-negative parts, orthonormal appearances, Gaussian cores, noise.

Usage (``benchmarks/bench_solvers.py`` and ``tensorpanda bench`` run this module)::

    python benchmarks/bench_solvers.py                      # full sizes (hours: see docs)
    python benchmarks/bench_solvers.py --smoke              # tiny sizes, about 20 s of CPU (CI)
    python benchmarks/bench_solvers.py --sections ab --samples 1000 --pairs 3   # minutes
    python benchmarks/bench_solvers.py --sizes 256x32x32,512x64x64   # large maps only
    python benchmarks/bench_solvers.py --markdown /tmp/bench.md

Progress lines go to stderr with the time, the tables to stdout (and ``--markdown``).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import tensorly as tl

import tensorpanda as tp

from .large_maps import section_large
from .peer_libraries import section_backends, section_tensorly
from .speed import planted, section_passes, section_speed
from .timing import best_of, peak_resident_mib  # noqa: F401  (best_of: the tests' import)

FULL = {
    "speed": [(10_000, 256, (8, 8)), (10_000, 512, (16, 16))],
    "pairs": 5,
    "passes": (10_000, 256, (8, 8)),
    "low_rank": 64,
    "tensorly": (100, 256, (8, 8)),
    "tensorly_rank": 16,
    "tensorly_iter": 100,
    "tensorly_repeats": 2,
    "large": [(256, (32, 32)), (512, (32, 32)), (256, (64, 64)), (512, (64, 64))],
    "large_n": 10_000,
    "large_pairs": 1,
    "paper_steps": 100,
    "score_samples": 2000,
    "memory": ((10_000, 100_000), 512, (16, 16)),
    "n_parts": 8,
    "grid_steps": 500,
    "tune_steps": 500,
    "batch": 250,
    "repeats": 3,
}
SMOKE = {
    "speed": [(300, 32, (6, 6))],
    "pairs": 2,
    "passes": (300, 32, (6, 6)),
    "low_rank": 8,
    "tensorly": (30, 16, (6, 6)),
    "tensorly_rank": 4,
    "tensorly_iter": 5,
    "tensorly_repeats": 2,
    "large": [(16, (12, 12))],
    "large_n": 200,
    "large_pairs": 1,
    "paper_steps": 10,
    "score_samples": 200,
    "memory": ((200, 400), 32, (6, 6)),
    "n_parts": 4,
    "grid_steps": 50,
    "tune_steps": 50,
    "batch": 50,
    "repeats": 2,
}
# -- (f) -----------------------------------------------------------------------------------------
def memory_worker(n: int, C: int, spatial: tuple, n_parts: int, batch: int) -> None:
    """Fit on n samples generated batch by batch and print "peak MiB, seconds, samples seen";
    run in a process of its own (``--memory-worker``) so the peak is this fit's alone."""
    import time

    model = planted(C, spatial, n_parts, seed=2)

    def batches():
        for start in range(0, n, batch):
            yield model.batch(start, min(batch, n - start), fresh_noise=False)

    start = time.perf_counter()
    fit = tp.tucker2(batches, (None, n_parts), random_state=0)
    seconds = time.perf_counter() - start
    print(f"{peak_resident_mib():.1f} {seconds:.2f} {fit.info['n_samples']}")


def section_memory(cfg) -> list[str]:
    """Table (f): the peak memory of a streamed fit at two data sizes, each in a fresh
    process; a ratio of peaks near 1 shows memory does not grow with the number of samples."""
    sizes, C, spatial = cfg["memory"]
    rows = [
        "| samples N (C, S) | peak resident memory (MiB) | fit time (s) |",
        "|---|---|---|",
    ]
    peaks = []
    for n in sizes:
        out = subprocess.run(
            [sys.executable, "-m", "tensorpanda.benchmarks.solvers", "--memory-worker", str(n),
             str(C), *map(str, spatial), str(cfg["n_parts"]), str(cfg["batch"])],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        peak, seconds, seen = float(out[0]), float(out[1]), int(out[2])
        if seen != n:
            raise RuntimeError(f"the memory worker saw {seen} samples, not {n}")
        peaks.append(peak)
        rows.append(f"| {n} ({C}, {int(np.prod(spatial))}) | {peak:.0f} | {seconds:.1f} |")
    rows.append(f"| **ratio {sizes[1]} / {sizes[0]}** | **{peaks[1] / peaks[0]:.3f}** | |")
    return rows


SECTIONS = {
    "a": ("(a) Speed against the original optimiser at its best, and the floor", section_speed),
    "b": ("(b) Passes over the data with R_C < C", section_passes),
    "c": ("(c) TensorLy's non-negative Tucker on the same data", section_tensorly),
    "d": ("(d) Large maps, streamed", section_large),
    "e": ("(e) One fit on each backend", section_backends),
    "f": ("(f) Peak memory of a streamed fit against N", section_memory),
}


# -- the header and the sizes --------------------------------------------------------------------
def versions() -> str:
    """The versions of the libraries the timings depend on."""
    import scipy
    import torch

    parts = [f"Python {platform.python_version()}", f"numpy {np.__version__}",
             f"scipy {scipy.__version__}", f"torch {torch.__version__}",
             f"tensorly {tl.__version__}", f"tensorpanda {tp.__version__}"]
    try:
        import jax

        parts.append(f"jax {jax.__version__}")
    except ImportError:
        parts.append("jax not installed")
    return ", ".join(parts)


def threads() -> str:
    """The BLAS libraries with their default thread counts, and torch's."""
    import torch
    from threadpoolctl import threadpool_info

    blas = ", ".join(f"{p['internal_api']} {p.get('version')} ({p['num_threads']} threads)"
                     for p in threadpool_info())
    return f"BLAS: {blas}; torch threads: {torch.get_num_threads()}"


def processor() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "processor unknown"


def header(args) -> list[str]:
    """The lines above the tables: the command that was run and the machine it ran on."""
    return [
        "Command: `" + " ".join(["python", "benchmarks/bench_solvers.py", *args.argv]) + "`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores "
        f"({processor()}). {versions()}. {threads()}. "
        f"Backend {tl.get_backend()}, float32 data. The Gram fits run with the default thread "
        "counts; the original optimiser with the faster of 1 and 2 BLAS threads. All numbers "
        "of a table come from one run of the script.",
    ]


def parse_sizes(text: str) -> list[tuple[int, tuple[int, int]]]:
    """``"256x32x32,512x64x64"`` as [(C, (H, W)), ...]; a ValueError naming the bad entry."""
    sizes = []
    for entry in text.split(","):
        try:
            C, H, W = (int(x) for x in entry.strip().lower().split("x"))
        except ValueError:
            raise ValueError(f"--sizes entries are CxHxW, e.g. 256x32x32; not {entry!r}") from None
        sizes.append((C, (H, W)))
    return sizes


def sized(cfg: dict, args) -> dict:
    """``cfg`` with the command line's --samples, --pairs and --sizes applied."""
    cfg = dict(cfg)
    if args.samples:
        n = args.samples
        cfg["speed"] = [(n, C, s) for _, C, s in cfg["speed"]]
        cfg["passes"] = (n, *cfg["passes"][1:])
        cfg["large_n"] = n
        cfg["score_samples"] = min(cfg["score_samples"], n)
        cfg["memory"] = ((n, 10 * n), *cfg["memory"][1:])
    if args.pairs:
        cfg["pairs"] = cfg["large_pairs"] = args.pairs
    if args.sizes:
        cfg["large"] = parse_sizes(args.sizes)
    return cfg


# -- main ----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The command line of the harness."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (under a minute)")
    parser.add_argument("--sections", help="which of a-f to run (default: all; 'd' with --sizes)")
    parser.add_argument("--samples", type=int, help="N for sections a, b, d, e (and N, 10·N for f)")
    parser.add_argument("--pairs", type=int, help="interleaved pairs in sections a and d")
    parser.add_argument("--sizes", help="large-map sizes CxHxW,... (runs section d only "
                        "unless --sections says otherwise)")
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --markdown")
    parser.add_argument("--memory-worker", nargs=6, help=argparse.SUPPRESS)
    return parser


def main(argv=None) -> int:
    """The command line: print the tables, optionally write them (``--markdown FILE``); the
    hidden ``--memory-worker`` serves table (f)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.memory_worker:
        n, C, H, W, n_parts, batch = map(int, args.memory_worker)
        memory_worker(n, C, (H, W), n_parts, batch)
        return 0
    if args.markdown:
        # refused before the benchmark runs (minutes), not after: never a lost file either
        from tensorpanda._checks import writable_path

        try:
            writable_path(Path(args.markdown).expanduser(), args.overwrite)
        except (OSError, ValueError) as err:
            parser.error(str(err).replace("overwrite=True", "--overwrite"))
    sections = args.sections or ("d" if args.sizes else "".join(SECTIONS))
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"--sections takes letters from {''.join(SECTIONS)}, not {''.join(unknown)}")
    try:
        cfg = sized(SMOKE if args.smoke else FULL, args)
    except ValueError as err:
        parser.error(str(err))
    args.argv = sys.argv[1:] if argv is None else list(argv)
    lines = header(args)
    print("\n".join(lines), flush=True)
    for key in sections:
        title, run = SECTIONS[key]
        block = ["", f"## {title}", "", *run(cfg)]
        lines += block
        print("\n".join(block), flush=True)
    if args.markdown:
        from tensorpanda._checks import atomic_write

        text = "# Solver benchmarks\n\n" + "\n".join(lines) + "\n"
        atomic_write(Path(args.markdown).expanduser(),
                     lambda tmp: tmp.write_text(text, encoding="utf-8"), args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())

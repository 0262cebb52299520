"""Solver benchmark: tensorpanda's fits against the original PandA optimiser at its best,
the bare Gram product, TensorLy, and each other's backends.

The implementation lives in `tensorpanda.benchmarks.solvers` (``tensorpanda bench``
runs it too); see its docstring for what each table measures.

    python benchmarks/bench_solvers.py --smoke
    python benchmarks/bench_solvers.py --sizes 256x32x32,512x64x64
    python benchmarks/bench_solvers.py --markdown /tmp/bench.md
"""

import sys

from tensorpanda.benchmarks.solvers import main

if __name__ == "__main__":
    sys.exit(main())

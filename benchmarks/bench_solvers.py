"""Solver benchmark: the Gram solvers against the original PandA optimiser.

The implementation lives in :mod:`tensorpanda.benchmarks.solvers` (``tensorpanda bench``
runs it too); see its docstring for what each table measures.

    python benchmarks/bench_solvers.py --smoke
    python benchmarks/bench_solvers.py --markdown docs/benchmarks.md
"""

import sys

from tensorpanda.benchmarks.solvers import main

if __name__ == "__main__":
    sys.exit(main())

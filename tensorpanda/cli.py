"""The ``tensorpanda`` command.

Each subcommand is a small function; bad arguments, missing files and unknown names end
with a one-line message and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

EXAMPLES = """examples:
  tensorpanda fit features.npy --rank all 8 --out factors.safetensors
  tensorpanda info factors.safetensors
"""


def _rank(values: list[str]) -> tuple:
    def one(v: str):
        return None if v in ("all", "None", "C") else int(v)

    try:
        return one(values[0]), one(values[1])
    except ValueError:
        raise ValueError(
            f"--rank takes two integers R_C R_S (R_C may be 'all'), got {values}"
        ) from None


def cmd_fit(args) -> int:
    import numpy as np

    import tensorpanda as tp

    data_path = Path(args.data)
    if not data_path.is_file():
        raise FileNotFoundError(f"no data file at {data_path}")
    if data_path.suffix != ".npy":
        raise ValueError(f"fit reads an array saved with numpy.save (.npy), not {data_path.name}")
    # a memmap: the solver streams it in batches, so it need not fit in memory
    Z = np.load(data_path, mmap_mode="r", allow_pickle=False)
    fit = tp.tucker2(
        Z,
        _rank(args.rank),
        model=args.model,
        solver=args.solver,
        init=args.init,
        tol=args.tol,
        max_iter=args.max_iter,
        batch_size=args.batch_size,
        random_state=args.seed,
    )
    fit.save(args.out, overwrite=args.overwrite)
    print(
        f"{args.out}: rank {fit.rank}, relative error {fit.relative_error:.4f}, "
        f"{fit.info['n_iter']} iterations, {fit.info['time']:.2f} s"
    )
    return 0


def cmd_info(args) -> int:
    import tensorpanda as tp

    fit = tp.load(args.file)
    summary = {
        "model": fit.model,
        "appearances": fit.appearances,
        "rank": list(fit.rank),
        "channels": fit.n_channels,
        "spatial_shape": list(fit.spatial_shape),
        **{k: v for k, v in fit.info.items()},
    }
    print(json.dumps(summary, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tensorpanda",
        description="Parts and appearances of feature maps (PandA, semi-nonnegative Tucker-2).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="fit factors to an array of feature maps (.npy)")
    fit.add_argument("data", help=".npy file of shape (N, C, H, W) or (N, C, S)")
    fit.add_argument("--rank", nargs=2, required=True, metavar=("R_C", "R_S"))
    fit.add_argument("--model", default="panda", choices=["panda", "tucker"])
    fit.add_argument("--solver", default="mu", choices=["mu", "hals", "pgd"])
    fit.add_argument("--init", default="svd", choices=["svd", "nndsvd", "random"])
    fit.add_argument("--tol", type=float, default=1e-6)
    fit.add_argument("--max-iter", type=int, default=None)
    fit.add_argument("--batch-size", type=int, default=None)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--out", required=True, help=".safetensors or .npz file to write")
    fit.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    fit.set_defaults(run=cmd_fit)

    info = sub.add_parser("info", help="print a factors file's metadata")
    info.add_argument("file")
    info.set_defaults(run=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return args.run(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError) as err:
        print(f"tensorpanda {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

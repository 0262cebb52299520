"""One rank of the distributed failure tests: scenarios in which the ranks disagree or one
rank fails, run one after another in the same process group; writes what each raised.

Run as: python distributed_failures_worker.py RANK WORLD_SIZE FOLDER SCENARIO...
(with $TENSORLY_BACKEND set). Writes FOLDER/result{RANK}.json.
"""

import datetime
import json
import os
import sys
import warnings

import numpy as np
import tensorly as tl
import torch.distributed as dist

import tensorpanda as tp
from tensorpanda import _distributed
from tensorpanda.data import as_source
from tensorpanda.params import make_config
from tensorpanda.statistics import accumulate, spatial_gram_terms

FIT = {"rank": (2, 2), "max_iter": 5, "random_state": 0, "batch_size": 4}


def samples(rank: int, shape=(4, 3, 4), dtype="float64"):
    """12 random samples (rank-dependent values, not layout)."""
    return np.random.default_rng(rank).random((12, *shape)).astype(dtype)


def nan_from_second_pass(rank: int):
    """A re-iterable source whose values turn NaN (on rank 1) from its second pass on."""
    Z, passes = samples(rank), []

    def batches():
        passes.append(1)
        bad = Z.copy()
        if rank == 1 and len(passes) > 1:
            bad[7, 2, 1, 1] = np.nan
        return iter([bad[:6], bad[6:]])

    return batches


def scenario(name: str, rank: int):
    """Run one scenario on this rank; what it returned or raised, as JSON."""
    other = rank == 1
    if name == "channels":
        return tp.tucker2(samples(rank, (5 if other else 4, 3, 4)), **FIT)
    if name == "layout":  # the same S = 12, another (H, W)
        return tp.tucker2(samples(rank, (4, 4, 3) if other else (4, 3, 4)), **FIT)
    if name == "dtype":
        return tp.tucker2(samples(rank, dtype="float32" if other else "float64"), **FIT)
    if name == "nonfinite":
        Z = samples(rank)
        if other:
            Z[5, 1, 0, 0] = np.nan
        return tp.tucker2(Z, **FIT)
    if name == "nonfinite_later":
        return tp.tucker2(nan_from_second_pass(rank), **FIT)
    if name == "refusal":  # rank 1 refuses before reading its data, rank 0 fits
        if other:
            _distributed.raise_on_every_rank(ValueError("rank one refuses this fit"))
        return tp.tucker2(samples(rank), **FIT)
    if name == "rank_header":  # the first pass, as a fit runs it, with ranks that differ
        config = make_config((2, 3) if other else (2, 2), {}, "tucker2")
        return accumulate(as_source(samples(rank)), spatial_gram_terms(), config=config)
    if name == "rank":
        return tp.tucker2(samples(rank), **{**FIT, "rank": (2, 3) if other else (2, 2)})
    if name == "solver":
        return tp.tucker2(samples(rank), **FIT, solver="mu" if other else "hals")
    if name == "adam":
        return tp.tucker2(samples(rank), **FIT, solver="adam" if other else "hals")
    if name == "misaligned":  # rank 0's fit stops after one iteration, then it fits again
        if other:
            return tp.tucker2(samples(rank), **FIT)
        tp.tucker2(samples(rank), **FIT, callback=lambda state: True)
        return tp.tucker2(samples(rank), **FIT)
    if name == "seedless":  # random starts without a seed: the ranks must draw the same
        return tp.tucker2(samples(rank), **{**FIT, "random_state": None, "init": "random"})
    if name == "gone":  # rank 1 leaves the group (a failure before any fit), rank 0 fits
        return None if other else tp.tucker2(samples(rank), **FIT)
    if name == "ok":  # after all the failures the group still works
        return tp.tucker2(samples(rank), **FIT)
    raise AssertionError(f"unknown scenario {name}")


def main(rank: int, world_size: int, folder: str, names: list) -> None:
    tl.set_backend(os.environ.get("TENSORLY_BACKEND", "numpy"))
    if tl.get_backend() == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    dist.init_process_group(
        "gloo", rank=rank, world_size=world_size, init_method=f"file://{folder}/rendezvous",
        timeout=datetime.timedelta(seconds=60),  # a hang becomes an error, not a stuck test
    )
    warnings.simplefilter("ignore")  # the short fits stop at max_iter on purpose
    results = {}
    for name in names:
        try:
            out = scenario(name, rank)
        except Exception as error:  # what each rank raised is the point of the test
            results[name] = {"error": type(error).__name__, "message": str(error)}
        else:
            P = out["K_S"] if isinstance(out, dict) else getattr(out, "P", np.zeros(0))
            results[name] = {"P": np.asarray(tl.to_numpy(P), dtype=float).tolist()}
        print(rank, name, results[name], flush=True)
    with open(os.path.join(folder, f"result{rank}.json"), "w") as f:
        json.dump(results, f)
    dist.destroy_process_group()


if __name__ == "__main__":  # pytest --doctest-modules imports this file too
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:])

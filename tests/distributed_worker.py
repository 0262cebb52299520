"""One rank of the distributed test: fit on this rank's share, write the factors.

Run as: python distributed_worker.py RANK WORLD_SIZE FOLDER  (with $TENSORLY_BACKEND set).
"""

import os
import sys

import numpy as np
import tensorly as tl
import torch.distributed as dist

import tensorpanda as tp

# (name, R_C, statistics) of the fits each rank makes; the test repeats them on one process
FITS = (("full", None, "auto"), ("low", 6, "auto"), ("sketched", None, "sketched"))


def main(rank: int, world_size: int, folder: str) -> None:
    tl.set_backend(os.environ.get("TENSORLY_BACKEND", "numpy"))
    if tl.get_backend() == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    dist.init_process_group(
        "gloo", rank=rank, world_size=world_size, init_method=f"file://{folder}/rendezvous"
    )
    Z = np.load(os.path.join(folder, f"share{rank}.npy"))
    for name, R_C, statistics in FITS:
        fit = tp.tucker2(tl.tensor(Z), (R_C, 4), random_state=0, batch_size=16,
                         statistics=statistics)
        np.savez(
            os.path.join(folder, f"{name}{rank}.npz"),
            A=tl.to_numpy(fit.A),
            P=tl.to_numpy(fit.P),
            n_samples=fit.info["n_samples"],
            objective=fit.objective,
        )
    dist.destroy_process_group()


if __name__ == "__main__":  # pytest --doctest-modules imports this file too
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])

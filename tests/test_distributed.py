"""Distributed fitting: two real processes with torch.distributed (gloo, CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorly as tl

import tensorpanda as tp
from helpers import host, planted

WORKER = Path(__file__).with_name("distributed_worker.py")


@pytest.mark.slow
def test_two_processes_equal_one_process_on_the_union(tmp_path):
    Z, _, _ = planted(n=100, noise=0.05)
    shares = [Z[:60], Z[60:]]  # unequal shares on purpose
    for rank, share in enumerate(shares):
        np.save(tmp_path / f"share{rank}.npy", share)
    env = {**os.environ, "TENSORLY_BACKEND": tl.get_backend()}
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(rank), "2", str(tmp_path)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for rank in range(2)
    ]
    for worker in workers:
        output, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0, output
    for name, R_C in (("full", None), ("low", 6)):
        single = tp.tucker2(tl.tensor(Z), (R_C, 4), random_state=0, batch_size=16)
        for rank in range(2):
            with np.load(tmp_path / f"{name}{rank}.npz") as got:
                assert int(got["n_samples"]) == len(Z)
                np.testing.assert_allclose(got["P"], host(single.P), rtol=1e-7, atol=1e-10)
                np.testing.assert_allclose(got["A"], host(single.A), rtol=1e-7, atol=1e-10)
                assert float(got["objective"]) == pytest.approx(single.objective, rel=1e-10)

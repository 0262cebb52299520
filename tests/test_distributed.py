"""Distributed fitting: two real processes with torch.distributed (gloo, CPU)."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorly as tl
from distributed_worker import FITS

import tensorpanda as tp
from helpers import host, planted
from tensorpanda import problem, stochastic

WORKER = Path(__file__).with_name("distributed_worker.py")
FAILURES_WORKER = Path(__file__).with_name("distributed_failures_worker.py")


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
    for name, R_C, statistics in FITS:
        single = tp.tucker2(tl.tensor(Z), (R_C, 4), random_state=0, batch_size=16,
                            statistics=statistics)
        for rank in range(2):
            with np.load(tmp_path / f"{name}{rank}.npz") as got:
                assert int(got["n_samples"]) == len(Z)
                np.testing.assert_allclose(got["P"], host(single.P), rtol=1e-7, atol=1e-10)
                np.testing.assert_allclose(got["A"], host(single.A), rtol=1e-7, atol=1e-10)
                assert float(got["objective"]) == pytest.approx(single.objective, rel=1e-10)


# What every rank must raise (a ValueError) when the ranks disagree or one fails, for each
# scenario of distributed_failures_worker.py: words of its message.
DISAGREE = "the 2 processes of the torch.distributed group disagree: "
ON_RANK_1 = "on rank 1 of 2 processes: "
NONFINITE = ON_RANK_1 + "the data contains non-finite values: sample "
FAILURES = {
    "channels": DISAGREE + "number of channels C differs (4 on rank 0, 5 on rank 1)",
    "layout": DISAGREE + "spatial shape (H, W) differs ((3, 4) on rank 0, (4, 3) on rank 1)",
    "dtype": DISAGREE + "dtype differs ('float64' on rank 0, 'float32' on rank 1)",
    "nonfinite": NONFINITE + "5",
    "nonfinite_later": NONFINITE + "7",
    "refusal": ON_RANK_1 + "rank one refuses this fit",
    "rank_header": DISAGREE + "rank (R_C, R_S) differs ((2, 2) on rank 0, (2, 3) on rank 1)",
    "rank": DISAGREE + "rank (R_C, R_S) differs ((2, 2) on rank 0, (2, 3) on rank 1)",
    "solver": DISAGREE + "solver differs ('hals' on rank 0, 'mu' on rank 1)",
    "adam": ON_RANK_1 + "solver='adam' does not reduce across processes",
}
# The fit's parameters reach the header through the first pass (problem.first_pass), and a
# stochastic solver's refusal reaches the other ranks through raise_on_every_rank; until
# those call sites pass them on, a fit with other parameters on one rank is not checked.
FIRST_PASS_WIRED = "config=config" in inspect.getsource(problem.first_pass)
WIRED = {
    "rank": FIRST_PASS_WIRED,
    "solver": FIRST_PASS_WIRED,
    "adam": "raise_on_every_rank" in inspect.getsource(stochastic.check_single_process),
    "seedless": "shared_seed" in inspect.getsource(problem.start),
}
# rank 0's fit stops after one iteration and it starts another, while rank 1 goes on: the
# pass count (which restarts with each fit's first pass) or the statistics tell.
FAILURES["misaligned"] = (
    "group are at different passes of their fits (1 on rank 0, 4 on rank 1, counting"
    if FIRST_PASS_WIRED
    else "group summed different statistics in this pass: what each rank summed differs"
)
# "gone" comes last: rank 1 leaves the group there
SCENARIOS = [name for name in [*FAILURES, "seedless", "ok", "gone"] if WIRED.get(name, True)]


@pytest.fixture(scope="module")
def failures(tmp_path_factory):
    """Both ranks' results of every scenario, run one after another in one process group."""
    folder = tmp_path_factory.mktemp("failures")
    env = {**os.environ, "TENSORLY_BACKEND": tl.get_backend()}
    workers = [
        subprocess.Popen(
            [sys.executable, str(FAILURES_WORKER), str(rank), "2", str(folder), *SCENARIOS],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for rank in range(2)
    ]
    try:
        for worker in workers:
            output, _ = worker.communicate(timeout=120)  # no rank may hang
            assert worker.returncode == 0, output
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    return [json.loads((folder / f"result{rank}.json").read_text()) for rank in range(2)]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAILURES))
def test_every_rank_raises_the_same_clear_error(failures, name):
    if not WIRED.get(name, True):
        pytest.skip(f"the {name!r} check needs its call site (see WIRED)")
    got = [results[name] for results in failures]
    assert got[0] == got[1], got  # the same error on every rank
    assert got[0]["error"] == "ValueError", got[0]
    assert FAILURES[name] in got[0]["message"], got[0]["message"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["seedless", "ok"])
def test_every_rank_fits_the_same_parts(failures, name):
    """After all the failures the group still fits; without a seed the ranks share one."""
    if not WIRED.get(name, True):
        pytest.skip(f"the {name!r} check needs its call site (see WIRED)")
    got = [results[name] for results in failures]
    assert "P" in got[0], got[0]
    np.testing.assert_array_equal(got[0]["P"], got[1]["P"])


@pytest.mark.slow
def test_a_rank_that_left_is_reported_not_waited_for(failures):
    """A rank that stops before a fit (an error of its own): the other is told, at once."""
    got = failures[0]["gone"]
    assert got["error"] == "RuntimeError", got
    assert got["message"].startswith("rank 0: summing the statistics across the 2 processes "
                                     "failed ("), got["message"]
    assert "Another process most likely stopped before this point" in got["message"]

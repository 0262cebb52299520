"""The benchmarks run in their --smoke mode, so that they cannot rot; the planted-data
generator they share with the tests keeps its promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import planted
from tensorpanda.benchmarks.planted import Planted
from tensorpanda.benchmarks.solvers import best_of, main

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.backend_independent


@pytest.mark.parametrize("n_appearances", [None, 3])
def test_planted_factors_are_disjoint_parts_and_orthonormal_appearances(n_appearances):
    model = Planted(6, (4, 5), 3, n_appearances, seed=0)
    P, A = model.P, model.A
    assert P.shape == (20, 3) and A.shape == (6, n_appearances or 6)
    assert (P >= 0).all() and ((P > 0).sum(axis=1) == 1).all()  # one part per position
    np.testing.assert_allclose(np.linalg.norm(P, axis=0), 1)
    np.testing.assert_allclose(A.T @ A, np.eye(A.shape[1]), atol=1e-12)


def test_planted_layouts_cut_stripes_and_bands():
    columns = Planted(2, (4, 6), 3, layout="columns").labels().reshape(4, 6)
    rows = Planted(2, (6, 4), 3, layout="rows").labels().reshape(6, 4)
    assert (columns == np.repeat([0, 1, 2], 2)).all()  # vertical stripes, two columns each
    assert (rows == np.repeat([0, 1, 2], 2)[:, None]).all()  # horizontal bands, two rows each
    with pytest.raises(ValueError, match="non-empty"):
        Planted(2, (3, 3), 4)
    with pytest.raises(ValueError, match="layout must be one of"):
        Planted(2, (3, 3), 2, layout="diagonal")
    with pytest.raises(ValueError, match="n_appearances"):
        Planted(2, (3, 3), 2, 3)


def test_planted_batches_are_reproducible_and_stack_into_the_array():
    model = Planted(4, (3, 3), 3, seed=5, dtype="float32", normalize=True)
    Z = model.array(25, 10)
    assert Z.shape == (25, 4, 9) and Z.dtype == np.float32
    np.testing.assert_array_equal(Z[20:], model.batch(20, 5))
    np.testing.assert_array_equal(model.batch(10, 5), model.batch(10, 5))
    with pytest.raises(TypeError, match="int seed"):
        Planted(4, (3, 3), 3, seed=np.random.RandomState(0)).batch(0, 5)


def test_pooled_noise_is_the_same_in_every_batch():
    model = Planted(4, (3, 3), 3, 2, seed=5)
    pooled = model.batch(0, 5, fresh_noise=False), model.batch(5, 5, fresh_noise=False)
    assert not np.array_equal(*pooled)  # the signals differ
    # outside the span of the factors only the noise is left, and it is the same
    outside = [(np.eye(4) - model.A @ model.A.T) @ Z @ (np.eye(9) - model.P @ model.P.T)
               for Z in pooled]
    np.testing.assert_allclose(outside[0], outside[1], atol=1e-12)
    assert np.abs(outside[0]).max() > 1e-3


def test_planted_samples_follow_the_model():
    model = Planted(5, (2, 4), 2, core_scales=[3.0, 1.0], noise=0.0, seed=1)
    Z = model.sample(400)
    # without noise every sample is A G_i Pᵀ: projecting on the factors loses nothing
    G = model.A.T @ Z @ model.P
    np.testing.assert_allclose(model.A @ G @ model.P.T, Z, atol=1e-12)
    np.testing.assert_allclose(G.std(axis=(0, 1)), [3.0, 1.0], rtol=0.1)
    plain, divided = (Planted(5, (2, 4), 2, normalize=normalize, seed=1).sample(3)
                      for normalize in (False, True))
    np.testing.assert_allclose(divided * np.sqrt(5), plain)  # normalize divides by √C


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_tests_planted_data_comes_from_the_generator(dtype):
    Z, A, P = planted(n=7, channels=5, height=2, width=4, n_parts=2, dtype=dtype)
    assert Z.shape == (7, 5, 2, 4) and Z.dtype == dtype
    assert A.dtype == P.dtype == np.float64
    model = Planted(5, (2, 4), 2, core_scales=[3.0, 1.0], noise=0.01,
                    seed=np.random.RandomState(0))
    np.testing.assert_array_equal(A, model.A)
    np.testing.assert_array_equal(Z, model.sample(7).reshape(7, 5, 2, 4).astype(dtype))


def test_best_of_keeps_the_fastest_run_unless_the_first_is_slow():
    timings = iter([3.0, 1.0, 2.0])
    assert best_of(lambda label: (next(timings), label), "first") == (1.0, "first")
    timings = iter([3.0, 1.0, 2.0])
    assert best_of(lambda: (next(timings), "slow"), single_above=2.5) == (3.0, "slow")


def test_memory_worker_sees_every_sample(capsys):
    assert main(["--memory-worker", "40", "4", "2", "2", "2", "20"]) == 0
    peak_mib, seconds, samples = capsys.readouterr().out.split()
    assert float(peak_mib) > 0 and float(seconds) >= 0 and int(samples) == 40


@pytest.mark.slow
def test_solver_benchmark_smoke(tmp_path):
    out = tmp_path / "bench.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_solvers.py"), "--smoke",
         "--markdown", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    for title in ("(a) Time to reach", "(b) A streamed R_C = C fit", "(c) Peak memory"):
        assert title in text
    # every solver row carries a number, and the memory ratio is printed
    assert text.count("| mu |") == 1 and "**ratio" in text


@pytest.mark.slow
@pytest.mark.generator
def test_locality_evaluation_smoke(tmp_path):
    pytest.importorskip("gan_face_generate")
    out = tmp_path / "results.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "eval_locality.py"), "--smoke",
         "--markdown", str(out), "--figure", str(tmp_path / "grids")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    for method in ("| PandA |", "| SeFa |", "| GANSpace |", "| uniform change (reference) |"):
        assert method in text
    grids = sorted((tmp_path / "grids").glob("*.png"))
    assert len(grids) == 2
    for grid in grids:  # the page links each grid, relative to itself
        assert f"](grids/{grid.name})" in text


@pytest.mark.slow
@pytest.mark.backend_independent
def test_checkout_comparison_smoke():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare_checkouts.py"), "--smoke",
         str(ROOT), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    rows = result.stdout.strip().splitlines()
    assert len(rows) == 4  # header, rule, two cases
    assert all(row.endswith("| yes |") for row in rows[2:])  # the same code: the same fit
    refused = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare_checkouts.py"), str(ROOT)],
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 2 and "two or more folders" in refused.stderr

"""The benchmarks run in their --smoke mode, so that they cannot rot; the planted-data
generator they share with the tests keeps its promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tensorpanda as tp
from helpers import planted
from tensorpanda.benchmarks import large_maps, peer_libraries, peers, timing
from tensorpanda.benchmarks.planted import Planted
from tensorpanda.benchmarks.solvers import best_of, main, parse_sizes

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


def _table(text: str, title: str) -> list[list[str]]:
    """The body rows (cells) of the first Markdown table after the heading ``title``."""
    section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


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
    assert "Machine:" in text and "BLAS:" in text and "tensorly 0." in text
    speed = _table(text, "(a) Speed against the original optimiser")
    assert len(speed) == 5 and all(len(row) == 6 for row in speed)
    floor, peer, default, free, faithful = speed
    assert "floor" in floor[1] and "at its best" in peer[1] and "faithful" in faithful[1]
    assert "for parity" in faithful[1] and "appearances='free'" in free[1]
    for row in (floor, peer, default, free):  # every time is a number: no run failed
        assert 0 <= float(row[2].split()[0]) < np.inf
    # the peer is the faithful optimiser's maths: the same objective up to float32 rounding
    # accumulated over the epoch (exact in float64: test_peer_is_the_original_optimiser)
    assert abs(float(peer[5]) - float(faithful[5])) <= 1e-3
    passes = _table(text, "(b) Passes over the data")
    assert [row[1].split()[0] for row in passes] == ["default", "hals", "mu", "pgd"]
    assert all(int(row[2]) >= 1 and int(row[3]) >= 1 for row in passes)
    tensorly_rows = _table(text, "(c) TensorLy")
    assert len(tensorly_rows) == 2 and "cannot solve the same problem" in text
    assert all(0 < float(row[5]) < 1 for row in tensorly_rows)
    large = _table(text, "(d) Large maps")
    # data only, the floor, the peer, the default fit, the faithful paper (extrapolated)
    assert len(large) in (5, 6) and all(float(row[4]) > 0 for row in large)  # peak MiB
    backends = _table(text, "(e) One fit on each backend")
    assert backends[0][1].startswith("numpy") and backends[0][4] == "1.00"
    # the same fit on every backend: the same error, up to float32 rounding
    errors = [float(row[6]) for row in backends]
    assert max(errors) - min(errors) <= 1e-4 * errors[0]
    assert "**ratio" in text


def test_peer_is_the_original_optimiser(tmp_path):
    """Both product orders of the peer end where solver='paper' (left to right) ends."""
    Z = Planted(10, (4, 5), 3, noise=0.1, normalize=True, seed=0).array(120, 40)
    rank, lr = (10, 3), 0.5 / np.mean(np.sum(Z**2, axis=(1, 2)))
    fit = tp.tucker2(Z, rank, solver="paper", appearances="free", learning_rate=lr,
                     max_iter=1, random_state=0)
    batches = peers.array_batches(Z, 32)
    ends = [peers.run(batches, rank, lr, peers.Setting(order, 1))[1:] for order in peers.ORDERS]
    for A, P in ends:
        np.testing.assert_allclose(peers.objective(batches, A, P), fit.objective, rtol=1e-9)
        np.testing.assert_allclose(P, np.asarray(fit.P), atol=1e-12)
    # a rate far too large diverges: the objective says so instead of a number
    _, A, P = peers.run(batches, rank, 1e6 * lr, peers.Setting("thin products", 1))
    assert peers.objective(batches, A, P) == np.inf


def test_peer_objective_is_the_summed_residual():
    rng = np.random.default_rng(1)
    Z, A, P = rng.standard_normal((7, 5, 6)), rng.standard_normal((5, 3)), rng.random((6, 2))
    direct = sum(np.sum((z - A @ A.T @ z @ P @ P.T) ** 2) for z in Z)
    np.testing.assert_allclose(peers.objective(peers.array_batches(Z, 3), A, P), direct,
                               rtol=1e-10)


def test_limited_batches_stop_inside_a_batch():
    Z = np.arange(10 * 2 * 3, dtype=float).reshape(10, 2, 3)
    head = list(peers.limited(peers.array_batches(Z, 4), 6)())
    assert [len(b) for b in head] == [4, 2]
    np.testing.assert_array_equal(np.concatenate(head), Z[:6])


def test_tuning_times_every_setting_and_keeps_the_fastest():
    Z = Planted(6, (3, 3), 2, normalize=True, seed=0, dtype="float32").array(40, 20)
    best, seconds = peers.tune(peers.array_batches(Z, 20), (6, 2), 0.1, 20)
    assert set(seconds) == {peers.Setting(o, t) for o in peers.ORDERS for t in (1, 2)}
    assert all(0 < s < np.inf for s in seconds.values())
    assert seconds[best] <= 3 * min(seconds.values())  # a dropped setting only lost a trial


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gram_forms_compute_the_gram(dtype):
    X = np.random.default_rng(0).standard_normal((50, 7)).astype(dtype)
    for form in timing.GRAM_FORMS.values():  # syrk fills the upper triangle
        np.testing.assert_allclose(np.triu(form(X)), np.triu(X.T @ X), rtol=1e-5)
    batches = peers.array_batches(X.reshape(10, 5, 7), 3)
    best, seconds = timing.fastest_gram_form(batches)
    assert best in timing.GRAM_FORMS and seconds[best] == min(seconds.values())


def test_spread_is_median_and_range_without_nans():
    assert timing.spread([3.0, 1.0, 2.0]) == "2.0 (1.0–3.0)"
    assert timing.spread([2.0, np.nan], 2) == "2.00"
    assert timing.spread([np.nan], none="not reached") == "not reached"


def test_tensorly_and_tensorpanda_fit_the_same_nonnegative_data():
    X = np.maximum(Planted(6, (3, 4), 2, seed=0).array(12, 12), 0)
    for seconds, error, iterations in (peer_libraries.tensorly_fit(X, (3, 2), 5),
                                       peer_libraries.tensorpanda_fit(X, (3, 2), 12)):
        assert seconds > 0 and 0 < error < 1 and iterations >= 1


def test_backends_fit_the_same_data_to_the_same_error():
    names, _ = peer_libraries.available_backends(["numpy", "pytorch"])
    Z = Planted(6, (3, 4), 2, normalize=True, seed=0, dtype="float32").array(60, 30)
    runs = peer_libraries.backend_runs(Z, names, (6, 2), {"repeats": 1, "batch": 30})
    errors = [runs[name][0][1] for name in names]
    np.testing.assert_allclose(errors, errors[0], rtol=1e-4)


def test_large_map_workers_measure_the_peer_and_the_fit():
    job = {"n": 30, "C": 4, "H": 5, "W": 5, "n_parts": 2, "batch": 10}
    peer = large_maps.worker({**job, "kind": "peer", "lr": 0.05, "order": "thin products",
                              "threads": 1})
    assert np.isfinite(peer["objective"]) and peer["peak_mib"] > 0
    fit = large_maps.worker({**job, "kind": "fit", "target": np.inf})
    assert fit["seconds"] <= fit["time"] and fit["statistics"] in ("gram", "streamed")
    assert fit["n_passes"] >= 1
    assert large_maps.batch_size(512, 4096, 250) == 8 and large_maps.batch_size(8, 4, 250) == 250


def test_sizes_and_sections_are_checked(capsys):
    assert parse_sizes("256x32x32, 512X64x64") == [(256, (32, 32)), (512, (64, 64))]
    with pytest.raises(ValueError, match="CxHxW"):
        parse_sizes("256x32")
    for argv, message in ((["--sections", "az"], "not z"), (["--sizes", "1x2"], "CxHxW")):
        with pytest.raises(SystemExit):
            main(argv)
        assert message in capsys.readouterr().err


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

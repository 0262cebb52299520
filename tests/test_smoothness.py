"""The spatial smoothness prior: the grid Laplacian, the penalised objective and its effect."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import tensorly as tl

import tensorpanda as tp
from helpers import MONOTONE_SLACK, RTOL, congruence, host, planted, to_backend
from tensorpanda.benchmarks.planted import Planted
from tensorpanda.smoothness import grid_laplacian, laplacian_times, roughness

RULES = ["mu", "hals", "pgd"]
SHAPES = [(7,), (1, 5), (3, 4), (4, 3), (5, 5)]


def dense_laplacian(shape) -> np.ndarray:
    """D − W of the 4-neighbour grid graph, built from the positions' coordinates."""
    H, W = (shape[0], 1) if len(shape) == 1 else shape
    y, x = np.divmod(np.arange(H * W), W)
    adjacent = (np.abs(y[:, None] - y) + np.abs(x[:, None] - x)) == 1
    return np.diag(adjacent.sum(axis=1)) - adjacent.astype(np.float64)


def neighbour_differences(P: np.ndarray, shape) -> float:
    """Σ over the parts and over adjacent positions of the squared differences."""
    H, W = (shape[0], 1) if len(shape) == 1 else shape
    maps = P.T.reshape(-1, H, W)
    return float(np.sum(np.diff(maps, axis=1) ** 2) + np.sum(np.diff(maps, axis=2) ** 2))


def direct_objectives(Z, fit, smoothness):
    """(Σ_i ‖Z_i − A Aᵀ Z_i P Pᵀ‖², λ Σ neighbour differences², λ), in float64 numpy."""
    Z = np.asarray(Z, dtype=np.float64).reshape(Z.shape[0], Z.shape[1], -1)
    A, P = host(fit.A).astype(np.float64), host(fit.P).astype(np.float64)
    residual = Z - A @ (A.T @ Z @ P) @ P.T
    weight = smoothness * np.sum(Z**2) / Z.shape[2]
    return np.sum(residual**2), weight * neighbour_differences(P, fit.spatial_shape), weight


def quiet_fit(data, rank, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tp.ConvergenceWarning)
        return tp.tucker2(data, rank, **params)


# ---- the Laplacian --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_laplacian_times_is_the_dense_grid_laplacian(shape, dtype):
    S = int(np.prod(shape))
    X = np.random.RandomState(0).standard_normal((S, 3)).astype(dtype)
    expected = dense_laplacian(shape) @ X.astype(np.float64)
    got = host(laplacian_times(to_backend(X), shape))
    assert got.shape == (S, 3)
    np.testing.assert_allclose(got, expected, rtol=RTOL[dtype], atol=RTOL[dtype] * 10)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_grid_laplacian_is_the_dense_grid_laplacian(shape):
    L = grid_laplacian(shape)
    assert isinstance(L, np.ndarray)  # a numpy matrix on every backend
    np.testing.assert_array_equal(L, dense_laplacian(shape))


def test_the_errors_leave_the_penalty_out():
    """relative_error and the estimator's reconstruction_err_ measure the data alone."""
    Z = tl.tensor(planted(n=60, channels=8, height=5, width=6, n_parts=3)[0])
    fit = tp.tucker2(Z, (None, 3), smoothness=3.0)
    direct = float(np.sqrt(fit.info["data_objective"] / fit.info["sq_norm"]))
    assert fit.relative_error == pytest.approx(direct)
    assert fit.objective > fit.data_objective
    est = tp.Tucker2((None, 3), smoothness=3.0).fit(Z)
    assert est.reconstruction_err_ == pytest.approx(est.factorization_.data_objective ** 0.5)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_roughness_is_the_sum_of_squared_neighbour_differences(shape):
    S = int(np.prod(shape))
    P = np.random.RandomState(1).uniform(size=(S, 4))
    expected = neighbour_differences(P, shape)
    assert roughness(to_backend(P), shape) == pytest.approx(expected, rel=1e-12)
    # constants cost nothing; a unit checkerboard, the roughest map, stays within the
    # Laplacian's largest eigenvalue (< 8 on a 4-neighbour grid)
    assert roughness(to_backend(np.ones((S, 1))), shape) == pytest.approx(0, abs=1e-12)
    if len(shape) == 2 and min(shape) > 1:
        y, x = np.divmod(np.arange(S), shape[1])
        board = ((-1.0) ** (y + x))[:, None] / np.sqrt(S)
        assert 0 < roughness(to_backend(board), shape) <= 8


# ---- the penalised objective ----------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("appearances", ["orthonormal", "free"])
@pytest.mark.parametrize("full", [True, False], ids=["RC=C", "RC<C"])
def test_penalised_objective_never_increases(rule, appearances, full, dtype):
    Z, _, _ = planted(n=60, channels=10, height=5, width=4, n_parts=3, noise=0.3, dtype=dtype)
    rank = (None if full else 4, 3)
    fit = quiet_fit(to_backend(Z), rank, solver=rule, appearances=appearances,
                    smoothness=0.5, init="random", random_state=0, tol=0, max_iter=15,
                    inner_max_iter=2)
    sq_norm = float(np.sum(Z.astype(np.float64) ** 2))
    history = np.asarray(fit.history)
    assert len(history) == 15
    assert np.all(np.diff(history) <= MONOTONE_SLACK[dtype] * sq_norm)
    # the history is of the penalised objective: its last value is the direct evaluation
    data, penalty, _ = direct_objectives(Z, fit, 0.5)
    assert penalty > 0
    assert history[-1] == pytest.approx(data + penalty, rel=RTOL[dtype], abs=1e-6 * sq_norm)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("full", [True, False], ids=["RC=C", "RC<C"])
def test_info_splits_the_objective_into_data_and_penalty(rule, full, dtype):
    Z, _, _ = planted(n=80, channels=12, height=4, width=6, n_parts=3, noise=0.2, dtype=dtype)
    fit = quiet_fit(to_backend(Z), (None if full else 5, 3), solver=rule, smoothness=0.8,
                    random_state=0)
    info = fit.info
    sq_norm = float(np.sum(Z.astype(np.float64) ** 2))
    tolerance = {"rel": RTOL[dtype], "abs": 1e-6 * sq_norm}
    assert info["data_objective"] + info["penalty"] == pytest.approx(info["objective"],
                                                                    **tolerance)
    data, penalty, weight = direct_objectives(Z, fit, 0.8)
    assert info["data_objective"] == pytest.approx(data, **tolerance)
    assert info["penalty"] == pytest.approx(penalty, **tolerance)
    assert info["smoothness_weight"] == pytest.approx(weight, rel=RTOL[dtype])
    assert fit.objective == info["objective"]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("full", [True, False], ids=["RC=C", "RC<C"])
def test_zero_smoothness_is_the_same_fit_as_none(rule, full):
    Z, _, _ = planted(n=60, channels=10, height=4, width=4, n_parts=3, noise=0.3)
    rank = (None if full else 4, 3)
    plain = quiet_fit(to_backend(Z), rank, solver=rule, random_state=0, max_iter=20)
    zero = quiet_fit(to_backend(Z), rank, solver=rule, random_state=0, max_iter=20,
                     smoothness=0)
    np.testing.assert_array_equal(host(zero.P), host(plain.P))
    np.testing.assert_array_equal(host(zero.A), host(plain.A))
    assert zero.history == plain.history
    assert "penalty" not in zero.info


# ---- what it does to the parts --------------------------------------------------------------


def test_parts_get_smoother_as_smoothness_grows():
    # parts with values uniform in [0.5, 1.5] (rough inside) under noise
    Z, _, _ = planted(n=200, channels=16, height=8, width=8, n_parts=4, noise=0.5)
    data = to_backend(Z)
    rough, errors = [], []
    for s in [0.0, 0.1, 0.3, 1.0, 3.0]:
        fit = quiet_fit(data, (None, 4), smoothness=s, random_state=0, tol=1e-10)
        P = host(fit.P).astype(np.float64)
        rough.append(neighbour_differences(P / np.linalg.norm(P, axis=0), (8, 8)))
        errors.append(direct_objectives(Z, fit, s)[0])
    assert np.all(np.diff(rough) < 0), rough
    # smoothing is paid for in data error, which grows with it
    assert np.all(np.diff(errors) >= -1e-9 * errors[0]), errors


def test_the_same_smoothness_means_the_same_at_any_scale_and_sample_count():
    # λ grows with Σ‖Z_i‖² as the data term does: scaling the data or repeating the samples
    # leaves the penalised problem's minimiser where it was
    Z, _, _ = planted(n=100, channels=12, height=6, width=6, n_parts=3, noise=0.5)
    fits = [quiet_fit(to_backend(X), (None, 3), smoothness=1.0, random_state=0, tol=1e-12)
            for X in (Z, 30 * Z, np.concatenate([Z, Z]))]
    P = host(fits[0].P)
    assert fits[0].info["penalty"] > 1e-3 * fits[0].info["objective"]
    for other in fits[1:]:
        np.testing.assert_allclose(host(other.P), P, atol=1e-6)


@pytest.mark.parametrize("smoothness", [0.3, 1.0])
def test_blocky_planted_parts_are_still_recovered(smoothness, dtype):
    # irregular blocks, each constant inside (smooth but for its edges)
    model = Planted(16, (12, 12), 4, layout="blocks", core_scales=np.linspace(3, 1, 4),
                    noise=0.1, seed=3)
    blocks = np.eye(4)[model.labels()]
    model.P = blocks / np.linalg.norm(blocks, axis=0)
    Z = model.sample(300).reshape(300, 16, 12, 12).astype(dtype)
    fit = quiet_fit(to_backend(Z), (None, 4), smoothness=smoothness, random_state=0)
    assert congruence(host(fit.P), model.P) >= 0.99
    assert fit.info["penalty"] > 0


# ---- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-0.1, -1, math.nan, math.inf, True, False, "1", None, [1]])
def test_bad_smoothness_is_refused(bad):
    Z, _, _ = planted(n=10, channels=4, height=2, width=3, n_parts=2)
    with pytest.raises(ValueError, match="smoothness"):
        tp.tucker2(to_backend(Z), (None, 2), smoothness=bad)


@pytest.mark.parametrize("params", [
    {"solver": "adam"},
    {"solver": "paper", "appearances": "free"},
    {"model": "tucker"},
    {"model": "tucker", "appearances": "nonnegative"},
], ids=["adam", "paper", "tucker", "tucker-nonnegative"])
def test_smoothness_outside_panda_gram_solvers_is_refused(params):
    Z, _, _ = planted(n=10, channels=4, height=2, width=3, n_parts=2)
    with pytest.raises(ValueError, match="smoothness"):
        tp.tucker2(to_backend(Z), (None, 2), smoothness=0.5, **params)

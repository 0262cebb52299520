"""Refinement: sample-specific parts with A fixed, tied to the shared parts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorly as tl

import tensorpanda as tp
from helpers import MONOTONE_SLACK, congruence, host, planted, to_backend

SOLVERS = ["mu", "hals", "pgd"]


@pytest.fixture(scope="module")
def fitted():
    Z, _, P_true = planted(n=200, channels=16, height=6, width=8, n_parts=4, noise=0.05)
    return Z, P_true, tp.tucker2(to_backend(Z), (None, 4), random_state=0)


def _sample_error(fit, P, z):
    A = host(fit.A)
    return np.sum((z - A @ A.T @ z @ P @ P.T) ** 2)


def _tied_objective(fit, P_i, z, tie):
    """‖z − A Aᵀ z P_i P_iᵀ‖² + tie · ‖Aᵀ z‖²/S · ‖P_i − P‖², written out in numpy."""
    A, P = host(fit.A), host(fit.P)
    mu = tie * np.sum((A.T @ z) ** 2) / z.shape[1]
    return _sample_error(fit, P_i, z) + mu * np.sum((P_i - P) ** 2)


def _moved_sample(fit, P_true):
    """A sample whose stripes are shifted by one column, and the shifted parts."""
    shifted = np.roll(P_true.reshape(6, 8, 4), 1, axis=1).reshape(48, 4)
    A = host(fit.A)
    z = A @ np.random.RandomState(5).standard_normal((16, 4)) * 3 @ shifted.T
    return z, shifted


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("tie", [0.0, "auto", 10.0])
def test_refined_parts_fit_each_sample_at_least_as_well(fitted, solver, tie):
    Z, _, fit = fitted
    refined = tp.refine(fit, to_backend(Z[:5]), solver=solver, tie=tie)
    assert tuple(tl.shape(refined)) == (5, 48, 4)
    refined = host(refined)
    assert refined.min() >= 0
    for i in range(5):
        z = Z[i].reshape(16, -1)
        assert _sample_error(fit, refined[i], z) <= _sample_error(fit, host(fit.P), z) * (
            1 + 1e-9
        )


@pytest.fixture(scope="module")
def fitted_free(fitted):
    """A free (non-orthonormal) A with R_C < C: the quartic's K2 differs from K1."""
    Z, P_true, _ = fitted
    return Z, P_true, tp.tucker2(to_backend(Z), (6, 4), appearances="free", random_state=0)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("tie", [0.1, 1.0, 10.0])
@pytest.mark.parametrize("appearances", ["orthonormal", "free"])
def test_tied_objective_never_increases(fitted, fitted_free, solver, tie, appearances):
    """g after k updates (k = 0, 1, …, 12 from the same start) is non-increasing."""
    Z, _, fit = fitted if appearances == "orthonormal" else fitted_free
    z = Z[7].reshape(16, -1)
    values = [_tied_objective(fit, host(fit.P), z, tie)]
    for k in range(1, 13):
        P_i = host(tp.refine(fit, to_backend(Z[7:8]), solver=solver, tie=tie, max_iter=k,
                             tol=0.0))[0]
        assert P_i.min() >= 0
        values.append(_tied_objective(fit, P_i, z, tie))
    slack = MONOTONE_SLACK[str(Z.dtype)] * np.sum(z**2)
    assert np.all(np.diff(values) <= slack), np.diff(values)
    assert values[-1] < values[0]  # and it does move


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_tie_trades_fit_for_closeness_to_the_shared_parts(fitted, solver):
    Z, _, fit = fitted
    P = host(fit.P)
    distance, error = [], []
    for tie in [0.0, 1.0, 100.0]:
        refined = host(tp.refine(fit, to_backend(Z[:5]), solver=solver, tie=tie, max_iter=500))
        distance.append(np.mean([np.linalg.norm(P_i - P) for P_i in refined]))
        error.append(np.mean([_sample_error(fit, P_i, Z[i].reshape(16, -1))
                              for i, P_i in enumerate(refined)]))
    assert distance[0] > distance[1] > distance[2] > 0
    assert error[0] <= error[1] * (1 + 1e-6) and error[1] <= error[2] * (1 + 1e-6)


@pytest.mark.parametrize("solver", SOLVERS)
def test_an_infinite_or_huge_tie_returns_the_shared_parts(fitted, solver):
    Z, _, fit = fitted
    P = host(fit.P)
    same = host(tp.refine(fit, to_backend(Z[:3]), solver=solver, tie=math.inf))
    assert all(np.array_equal(P_i, P) for P_i in same)
    close = host(tp.refine(fit, to_backend(Z[:3]), solver=solver, tie=1e12))
    assert np.abs(close - P).max() <= 1e-6 * np.abs(P).max()


@pytest.mark.parametrize("solver", SOLVERS)
def test_the_tie_does_not_depend_on_the_data_scale(fitted, solver):
    """μ_i is relative to the sample's Gram: scaling Z by 1000 gives the same parts."""
    Z, _, fit = fitted
    plain = host(tp.refine(fit, to_backend(Z[:2]), solver=solver, tie=1.0, max_iter=20))
    scaled = host(tp.refine(fit, to_backend(Z[:2] * 1e3), solver=solver, tie=1.0, max_iter=20))
    np.testing.assert_allclose(scaled, plain, rtol=1e-5, atol=1e-7 * np.abs(plain).max())


@pytest.mark.parametrize("tie", [0.0, "auto"])
def test_refinement_follows_a_sample_whose_parts_moved(fitted, tie):
    """A sample whose stripes are shifted by one column: its refined parts follow them, with
    the default tie as without one."""
    _, P_true, fit = fitted
    z, shifted = _moved_sample(fit, P_true)
    refined = host(tp.refine(fit, to_backend(z.reshape(1, 16, 6, 8)), max_iter=500, tie=tie))[0]
    assert congruence(refined, shifted) > 0.95
    assert congruence(host(fit.P), shifted) < 0.9


def test_tucker_factors_refine_without_a_tie(fitted):
    Z, _, _ = fitted
    fit = tp.tucker2(to_backend(Z), (None, 4), model="tucker", random_state=0)
    refined = host(tp.refine(fit, to_backend(Z[:2])))
    assert refined.shape == (2, 48, 4) and refined.min() >= 0
    same = host(tp.refine(fit, to_backend(Z[:2]), tie=math.inf))
    assert np.array_equal(same[0], host(fit.P))
    with pytest.raises(ValueError, match="defined for model='panda' only"):
        tp.refine(fit, to_backend(Z[:1]), tie=1.0)


def test_refine_rejects_bad_arguments(fitted):
    Z, _, fit = fitted
    with pytest.raises(ValueError, match="unknown solver 'sgd'"):
        tp.refine(fit, to_backend(Z[:1]), solver="sgd")
    with pytest.raises(ValueError, match="does not match factors fitted on 16 channels"):
        tp.refine(fit, to_backend(Z[:1, :8]))
    for bad in [-1.0, math.nan, "strong", True, None, [1.0]]:
        with pytest.raises(ValueError, match="tie must be 'auto' or a number >= 0"):
            tp.refine(fit, to_backend(Z[:1]), tie=bad)
    with pytest.raises(ValueError, match="max_iter must be a positive integer"):
        tp.refine(fit, to_backend(Z[:1]), max_iter=0)


# -- the smoothness prior ----------------------------------------------------------------------
def _roughness(P, shape=(6, 8)):
    """tr(Pᵀ L P) on the grid, written out: squared differences between 4-neighbours."""
    maps = P.T.reshape(-1, *shape)
    return float(np.sum(np.diff(maps, axis=1) ** 2) + np.sum(np.diff(maps, axis=2) ** 2))


def _smoothed_objective(fit, P_i, z, tie, smoothness):
    """The tied objective plus λ_i tr(P_iᵀ L P_i), λ_i = smoothness · ‖z‖² / S."""
    weight = smoothness * np.sum(z**2) / z.shape[1]
    return _tied_objective(fit, P_i, z, tie) + weight * _roughness(P_i)


@pytest.mark.parametrize("solver", SOLVERS)
def test_smoothness_prior_lowers_its_objective_and_the_roughness(fitted, solver):
    Z, _, fit = fitted
    plain = host(tp.refine(fit, to_backend(Z[:4]), solver=solver, tie=0.0))
    smooth = host(tp.refine(fit, to_backend(Z[:4]), solver=solver, tie=0.0, smoothness=3.0))
    assert smooth.min() >= 0
    for i in range(4):
        z = Z[i].reshape(16, -1)
        start = _smoothed_objective(fit, host(fit.P), z, 0.0, 3.0)
        assert _smoothed_objective(fit, smooth[i], z, 0.0, 3.0) <= start * (1 + 1e-9)
        assert _roughness(smooth[i]) < _roughness(plain[i])


def test_smoothness_auto_is_the_fits_own(fitted):
    Z, _, _ = fitted
    fit = tp.tucker2(to_backend(Z), (None, 4), smoothness=0.5)
    auto = host(tp.refine(fit, to_backend(Z[:2])))
    given = host(tp.refine(fit, to_backend(Z[:2]), smoothness=0.5))
    none = host(tp.refine(fit, to_backend(Z[:2]), smoothness=0.0))
    np.testing.assert_allclose(auto, given, rtol=1e-6, atol=1e-9)
    assert not np.allclose(auto, none)


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf, "smooth", True])
def test_bad_smoothness_is_refused(fitted, value):
    Z, _, fit = fitted
    with pytest.raises(ValueError, match="smoothness must be"):
        tp.refine(fit, to_backend(Z[:1]), smoothness=value)


def test_smoothness_is_refused_for_tucker(fitted):
    Z, _, _ = fitted
    fit = tp.tucker2(to_backend(Z), (None, 4), model="tucker")
    with pytest.raises(ValueError, match="model='panda' only"):
        tp.refine(fit, to_backend(Z[:1]), tie=0, smoothness=1.0)
    assert tl.shape(tp.refine(fit, to_backend(Z[:1]), tie=0))[0] == 1  # "auto": 0

"""The Gram solvers: monotone updates, planted recovery, constraints, dtypes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tensorly as tl

import tensorpanda as tp
from helpers import MONOTONE_SLACK, RTOL, congruence, host, planted, to_backend

RULES = ["mu", "hals", "pgd"]
VARIANTS = [
    ("panda", "orthonormal"),
    ("panda", "free"),
    ("tucker", "orthonormal"),
    ("tucker", "nonnegative"),
]


def _start(Z, rank, appearances, seed=1):
    """A random start (A, P) for warm-started fits."""
    rng = np.random.RandomState(seed)
    C, S = Z.shape[1], int(np.prod(Z.shape[2:]))
    if appearances == "nonnegative":
        A = rng.uniform(size=(C, rank[0]))
    else:
        A = np.linalg.qr(rng.standard_normal((C, rank[0])))[0]
    P = rng.uniform(size=(S, rank[1]))
    return A.astype(Z.dtype), (P / np.linalg.norm(P, axis=0)).astype(Z.dtype)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("model,appearances", VARIANTS)
@pytest.mark.parametrize("full", [True, False], ids=["RC=C", "RC<C"])
def test_objective_never_increases_over_warm_started_iterations(
    rule, model, appearances, full, dtype
):
    Z, _, _ = planted(n=60, channels=10, height=4, width=4, n_parts=3, noise=0.3, dtype=dtype)
    rank = (10 if full else 4, 3)
    A, P = _start(Z, rank, appearances)
    data = to_backend(Z)
    previous = tp.reconstruction_error(
        tp.Factorization(to_backend(A), to_backend(P), model, appearances, (4, 4)),
        data,
        relative=False,
    ) ** 2
    sq_norm = float((Z.astype(np.float64) ** 2).sum())
    for _ in range(4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", tp.ConvergenceWarning)
            fit = tp.tucker2(
                data, rank, model=model, appearances=appearances, solver=rule,
                init=(A, P), max_iter=1, inner_max_iter=1,
            )
        assert fit.objective <= previous + MONOTONE_SLACK[dtype] * sq_norm
        # the solver's own bookkeeping of the objective matches a direct evaluation
        direct = tp.reconstruction_error(fit, data, relative=False) ** 2
        assert direct == pytest.approx(fit.objective, rel=RTOL[dtype], abs=1e-6 * sq_norm)
        assert host(fit.P).min() >= 0
        if appearances == "nonnegative":
            assert host(fit.A).min() >= 0
        previous = fit.objective
        A, P = host(fit.A), host(fit.P)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("init", ["svd", "nndsvd"])
def test_planted_parts_are_recovered_with_all_channels(rule, init, dtype):
    # (a random start can end in a local minimum where two parts share a column: the
    # spectral starts are the recommended ones, and "svd" is the default)
    Z, _, P_true = planted(dtype=dtype)
    fit = tp.tucker2(to_backend(Z), rank=(None, 4), solver=rule, init=init, random_state=0)
    assert congruence(host(fit.P), P_true) >= 0.99
    assert fit.info["converged"]
    assert fit.info["n_passes"] == 1  # R_C = C: a single pass over the data


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("appearances", ["orthonormal", "free"])
def test_planted_factors_are_recovered_with_fewer_appearances(rule, appearances, dtype):
    Z, A_true, P_true = planted(channels=24, n_appearances=6, dtype=dtype)
    fit = tp.tucker2(
        to_backend(Z), rank=(6, 4), solver=rule, appearances=appearances, random_state=0
    )
    assert congruence(host(fit.P), P_true) >= 0.99
    # A is identified up to a rotation within its span: compare the subspaces
    A = host(fit.A).astype(np.float64)
    Q = np.linalg.qr(A)[0]
    cosines = np.linalg.svd(Q.T @ A_true, compute_uv=False)
    assert cosines.min() >= 0.99
    assert fit.relative_error < 0.05


def test_fit_keeps_dtype_and_backend(dtype):
    Z, _, _ = planted(n=50, dtype=dtype)
    data = to_backend(Z)
    fit = tp.tucker2(data, rank=(8, 3), random_state=0)
    for factor in (fit.A, fit.P):
        assert tl.is_tensor(factor)
        assert str(tl.to_numpy(factor).dtype) == dtype
        assert type(factor) is type(data)


def test_float32_agrees_with_float64():
    Z, _, _ = planted(n=200, noise=0.1)
    f64 = tp.tucker2(to_backend(Z), rank=(None, 4), random_state=0)
    f32 = tp.tucker2(to_backend(Z.astype("float32")), rank=(None, 4), random_state=0)
    assert congruence(host(f32.P), host(f64.P)) > 0.999
    assert f32.relative_error == pytest.approx(f64.relative_error, rel=1e-3)


def test_fit_is_reproducible_for_a_seed():
    Z, _, _ = planted(n=80)
    a = tp.tucker2(to_backend(Z), rank=(6, 4), init="random", random_state=3)
    b = tp.tucker2(to_backend(Z), rank=(6, 4), init="random", random_state=3)
    assert np.array_equal(host(a.P), host(b.P))
    assert np.array_equal(host(a.A), host(b.A))


def test_history_is_recorded_and_callback_can_stop():
    Z, _, _ = planted(n=80, noise=0.5)
    seen = []

    def callback(state):
        seen.append((state.iteration, state.objective))
        return state.iteration == 3

    fit = tp.tucker2(to_backend(Z), rank=(None, 4), init="random", tol=0, callback=callback)
    assert [i for i, _ in seen] == [1, 2, 3]
    assert fit.history == [f for _, f in seen]
    assert fit.info["stopped_by_callback"] and fit.info["n_iter"] == 3


def test_max_iter_without_convergence_warns():
    Z, _, _ = planted(n=80, noise=0.5)
    with pytest.warns(tp.ConvergenceWarning, match="max_iter=2"):
        fit = tp.tucker2(to_backend(Z), rank=(None, 4), init="random", tol=0, max_iter=2)
    assert fit.info["n_iter"] == 2 and not fit.info["converged"]


def test_parts_maps_and_appearance_basis():
    Z, _, _ = planted(n=100)
    fit = tp.tucker2(to_backend(Z), rank=(None, 4), random_state=0)
    assert tuple(tl.shape(fit.parts)) == (4, 6, 8)
    A = host(fit.A).astype(np.float64)
    # with R_C = C, A is the (orthonormal) eigenbasis of the channel scatter
    np.testing.assert_allclose(A.T @ A, np.eye(A.shape[1]), atol=1e-5)
    scatter = np.einsum("ncs,nds->cd", *(2 * [Z.reshape(100, 24, -1).astype(np.float64)]))
    values = np.diag(A.T @ scatter @ A)
    assert np.all(np.diff(values) <= 1e-6 * values[0])  # sorted, largest first

"""The sketched route for large maps (`tensorpanda.sketch`): the Nyström operator is exact
where it should be, the fit's recorded objective is the exact one and never increases, it
recovers planted parts, ends as low as the held Gram, and the route is chosen (and refused)
for the right reasons."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tensorly as tl
from conftest import BACKEND

import tensorpanda as tp
from helpers import MONOTONE_SLACK, RTOL, congruence, host
from tensorpanda._backend import to_host
from tensorpanda.benchmarks.planted import Planted
from tensorpanda.params import make_config
from tensorpanda.problem import HELD, SKETCHED, STREAMED, route
from tensorpanda.sketch import NystromOperator, sketch_width

N_SEEDS = 10 if BACKEND == "numpy" else 2


def _planted(seed, spatial=(18, 22), channels=12, n_parts=6, dtype="float64", n=200):
    """Irregular blocks with positive cores (post-ReLU-like), as in test_recovery."""
    model = Planted(channels, spatial, n_parts, layout="blocks", positive_cores=True,
                    noise=0.1, seed=seed, dtype=dtype)
    return tl.tensor(model.sample(n), dtype=getattr(tl, dtype)), model.P


def _exact_objective(Z, P) -> float:
    """Σ_i ‖Z_i − Z_i P Pᵀ‖² computed from the samples themselves (float64)."""
    # to_host reads torch and jax tensors whichever backend is active (the callback runs
    # inside a fit that works on numpy)
    Z, P = to_host(Z).astype(np.float64), to_host(P).astype(np.float64)
    return float(np.sum((Z - Z @ P @ P.T) ** 2))


def _fit(Z, rank, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tp.ConvergenceWarning)
        return tp.tucker2(Z, rank, **params)


# -- the operator ---------------------------------------------------------------------------------
def _gram_and_test(seed=0, S=60, width=10):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((200, S)) * np.linspace(3, 0.1, S)  # a decaying spectrum
    return X.T @ X, rng.standard_normal((S, width))


def test_nystrom_is_exact_on_the_sketched_span_and_keeps_the_trace():
    with tl.backend_context("numpy"):
        K, W = _gram_and_test()
        op = NystromOperator(W, K @ W, trace=np.trace(K))
        x = W @ np.random.default_rng(1).standard_normal((W.shape[1], 3))
        assert np.allclose(op.products(x)[0], K @ x, rtol=1e-8, atol=1e-8 * np.abs(K).max())
        dense = op.products(np.eye(K.shape[0]))[0]
        assert np.isclose(np.trace(dense), np.trace(K), rtol=1e-10)
        assert np.linalg.eigvalsh((dense + dense.T) / 2).min() > -1e-8 * np.trace(K)
        # without the trace it is the plain Nyström approximation: below K (K − K̃ ⪰ 0)
        plain = NystromOperator(W, K @ W).products(np.eye(K.shape[0]))[0]
        assert np.linalg.eigvalsh(K - plain).min() > -1e-8 * np.trace(K)


def test_nystrom_of_a_full_basis_is_the_gram_itself():
    with tl.backend_context("numpy"):
        K, _ = _gram_and_test(S=30)
        W = np.random.default_rng(2).standard_normal((30, 30))
        op = NystromOperator(W, K @ W, trace=np.trace(K))
        assert np.allclose(op.products(np.eye(30))[0], K, atol=1e-8 * np.abs(K).max())


# -- the fit --------------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["pgd", "hals", "mu"])
def test_every_seed_recovers_the_planted_parts(solver):
    failed = []
    for seed in range(N_SEEDS):
        Z, P = _planted(seed)
        fit = _fit(Z, (None, 6), solver=solver, statistics="sketched")
        assert fit.info["route"] == SKETCHED and fit.info["statistics"] == "sketched"
        score = congruence(host(fit.P), P)
        if score < 0.99:
            failed.append((seed, round(score, 3)))
    assert not failed, f"(seed, congruence) of the fits that missed the planted parts: {failed}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_recorded_objective_is_exact_and_never_increases(dtype):
    Z, _ = _planted(3, dtype=dtype)
    seen = []
    fit = _fit(Z, (None, 6), statistics="sketched", tol=0, max_iter=6,
               callback=lambda state: seen.append(_exact_objective(Z, state.P)))
    history = np.array(fit.history)
    assert np.allclose(history, seen, rtol=RTOL[dtype])
    slack = MONOTONE_SLACK[dtype] * fit.info["sq_norm"]
    assert np.all(np.diff(history) <= slack)
    assert np.all(host(fit.P) >= 0)
    # the first pass reads K Ω, then each iteration is one pass
    assert fit.info["n_passes"] == 1 + fit.info["n_iter"]


def test_ends_as_low_as_the_held_gram():
    for seed in range(3):
        Z, _ = _planted(seed, n=300)
        held = _fit(Z, (None, 6), statistics="gram")
        sketched = _fit(Z, (None, 6), statistics="sketched")
        assert sketched.info["converged"]
        assert sketched.objective <= held.objective * (1 + 1e-4)


def test_smoothness_prior_on_the_sketch():
    Z, _ = _planted(4)
    held = _fit(Z, (None, 6), statistics="gram", smoothness=1.0)
    sketched = _fit(Z, (None, 6), statistics="sketched", smoothness=1.0)
    info = sketched.info
    assert info["penalty"] > 0
    assert np.isclose(info["objective"], info["data_objective"] + info["penalty"])
    assert np.isclose(info["data_objective"], _exact_objective(Z, sketched.P),
                      rtol=RTOL[str(host(Z).dtype)])
    assert sketched.objective <= held.objective * (1 + 1e-4)


def test_a_users_start_is_kept():
    Z, P = _planted(5)
    start = np.full(host(P).shape, 0.1) + host(P)
    fit = _fit(Z, (None, 6), statistics="sketched", init=(None, tl.tensor(start)), max_iter=1)
    assert congruence(host(fit.P), P) > 0.99


# -- the route ------------------------------------------------------------------------------------
def _route(rank, C, S, **params):
    config = make_config(rank, params, "tucker2")
    return route(config, C, S, {"dtype": tl.float32})


def test_auto_route_sketches_large_maps_only():
    name, why = _route((None, 8), 512, 64 * 64)
    assert name == SKETCHED and "cheaper than forming it" in why
    assert _route((None, 8), 256, 8 * 8)[0] == HELD
    # R_C < C: A stays in the objective, so the data enters through K_S(A): no sketch
    assert _route((64, 8), 512, 64 * 64)[0] in (HELD, STREAMED)
    assert _route((None, 8), 512, 64 * 64, model="tucker")[0] != SKETCHED


def test_auto_route_is_taken_and_reported():
    Z, _ = _planted(0, spatial=(40, 40), channels=4, n_parts=2, n=20)
    fit = _fit(Z, (None, 2))
    assert fit.info["route"] == SKETCHED and "Gram" in fit.info["route_reason"]


@pytest.mark.parametrize("params", [dict(rank=(6, 8)), dict(model="tucker"),
                                    dict(appearances="free")])
def test_sketched_is_refused_where_a_stays_in_the_objective(params):
    Z, _ = _planted(0)
    rank = params.pop("rank", (None, 6))
    with pytest.raises(ValueError, match="statistics='sketched' needs"):
        tp.tucker2(Z, rank, statistics="sketched", **params)


def test_partial_fit_still_holds_the_gram_of_a_large_map():
    Z, _ = _planted(0, spatial=(40, 40), channels=4, n_parts=2, n=20)
    est = tp.Tucker2((None, 2))
    est.partial_fit(Z[:10]).partial_fit(Z[10:])
    assert est.factorization_.info["route"] == HELD
    assert est.n_samples_seen_ == 20


def test_sketch_width():
    assert sketch_width(4096, 8) == 24 and sketch_width(10, 8) == 10

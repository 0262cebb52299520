"""The public API: function and estimator, data sources, cores, partial_fit."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import tensorly as tl

import tensorpanda as tp
from helpers import congruence, host, planted, to_backend


@pytest.fixture(scope="module")
def data():
    Z, _, _ = planted(n=120, noise=0.05)
    return Z


def _same(a: tp.Factorization, b: tp.Factorization, exact=True):
    for x, y in ((a.A, b.A), (a.P, b.P)):
        if exact:
            assert np.array_equal(host(x), host(y))
        else:
            np.testing.assert_allclose(host(x), host(y), rtol=1e-6, atol=1e-9)


# A value other than the default for every parameter, in two valid sets (the smoothness
# prior is for model="panda", non-negative appearances for model="tucker"); checked only by
# the fake fit below.
COMMON = {
    "rank": (3, 2), "solver": "mu", "init": "random", "tol": 1e-3, "max_iter": 7,
    "inner_max_iter": 3, "statistics": "streamed", "batch_size": 5, "basis_samples": 11,
    "learning_rate": 0.5, "random_state": 3, "callback": print,
}
NON_DEFAULTS = [
    {**COMMON, "model": "tucker", "appearances": "nonnegative"},
    {**COMMON, "appearances": "free", "smoothness": 0.5},
]


@pytest.mark.backend_independent
@pytest.mark.parametrize("non_defaults", NON_DEFAULTS, ids=["tucker", "panda"])
def test_function_and_estimator_forward_every_parameter_to_one_fit(monkeypatch, non_defaults):
    """TensorLy's forwarding check: each public entry point hands every parameter, unchanged,
    to the one fitting path (monkeypatched to record what it receives)."""
    from tensorpanda import estimator, fitting

    seen = []
    monkeypatch.setattr(fitting, "fit", lambda source, config: seen.append(config))
    monkeypatch.setattr(estimator, "fit", lambda source, config: seen.append(config))
    monkeypatch.setattr(estimator.Tucker2, "_set", lambda self, result: None)
    parameters = inspect.signature(tp.Tucker2).parameters
    covered = {k for d in NON_DEFAULTS for k, v in d.items()
               if k == "rank" or v != parameters[k].default}
    assert covered == set(parameters)
    Z = np.zeros((4, 3, 2, 2))
    params = {k: v for k, v in non_defaults.items() if k != "rank"}
    tp.tucker2(Z, non_defaults["rank"], **params)
    tp.Tucker2(non_defaults["rank"], **params).fit(Z)
    assert seen[0] == seen[1]
    for name, value in non_defaults.items():
        assert getattr(seen[0], name) == value, name


def test_signatures_list_every_parameter_with_its_default():
    function = inspect.signature(tp.tucker2).parameters
    estimator = inspect.signature(tp.Tucker2).parameters
    assert list(function) == ["data", *estimator]
    for name, param in estimator.items():
        assert param.default == function[name].default, name
    with pytest.raises(TypeError, match="unknown parameter.*'tolerance'"):
        tp.tucker2(np.ones((2, 2, 2)), (None, 1), tolerance=1e-3)
    with pytest.raises(TypeError, match="unknown parameter.*'tolerance'"):
        tp.Tucker2((None, 1), tolerance=1e-3)


@pytest.mark.parametrize("rank", [(None, 4), (6, 4)])
def test_function_and_estimator_agree(data, rank):
    fit = tp.tucker2(to_backend(data), rank, random_state=0)
    est = tp.Tucker2(rank, random_state=0).fit(to_backend(data))
    _same(fit, est.factorization_)
    assert est.n_iter_ == fit.info["n_iter"] and est.history_ == fit.history
    assert est.reconstruction_err_ == pytest.approx(fit.objective**0.5)


def test_partial_fit_over_all_batches_equals_fit(data):
    fit = tp.Tucker2((None, 4), random_state=0, batch_size=25, basis_samples=60).fit(
        to_backend(data)
    )
    est = tp.Tucker2((None, 4), random_state=0, basis_samples=60)
    for start in range(0, len(data), 25):
        est.partial_fit(to_backend(data[start : start + 25]))
    _same(fit.factorization_, est.factorization_)
    assert est.n_samples_seen_ == len(data)


def test_partial_fit_explains_what_it_cannot_do(data):
    with pytest.raises(ValueError, match="R_C = C"):
        tp.Tucker2((5, 4)).partial_fit(to_backend(data[:20]))
    est = tp.Tucker2((None, 4)).partial_fit(to_backend(data[:20]))
    with pytest.raises(ValueError, match="earlier partial_fit batches"):
        est.partial_fit(to_backend(data[:20, :, :3]))


@pytest.mark.parametrize("rank", [(None, 4), (6, 4)])
def test_streaming_sources_equal_the_in_memory_fit(data, rank, tmp_path):
    reference = tp.tucker2(to_backend(data), rank, random_state=0, batch_size=30)
    batches = [to_backend(data[i : i + 30]) for i in range(0, len(data), 30)]
    memmap = np.lib.format.open_memmap(tmp_path / "z.npy", "w+", data.dtype, data.shape)
    memmap[:] = data
    sources = {
        "list": batches,
        "callable": lambda: iter(batches),
        "memmap": memmap,
        "flattened": to_backend(data.reshape(len(data), data.shape[1], -1)),
    }
    for name, source in sources.items():
        fit = tp.tucker2(source, rank, random_state=0, batch_size=30)
        _same(reference, fit, exact=name != "flattened")


def test_a_generator_is_enough_for_a_one_pass_fit_but_not_for_more(data):
    batches = (to_backend(data[i : i + 40]) for i in range(0, len(data), 40))
    fit = tp.tucker2(batches, (None, 4), random_state=0)
    assert fit.info["n_passes"] == 1
    again = (to_backend(data[i : i + 40]) for i in range(0, len(data), 40))
    with pytest.raises(ValueError, match="one-shot iterator"):
        tp.tucker2(again, (6, 4), random_state=0)
    once = (to_backend(data[i : i + 40]) for i in range(0, len(data), 40))
    with pytest.raises(ValueError, match="fit_transform reads the data twice"):
        tp.Tucker2((None, 4)).fit_transform(once)


def test_fit_transform_on_a_list_of_batches_equals_it_on_the_array(data):
    batches = [to_backend(data[i : i + 40]) for i in range(0, len(data), 40)]
    on_list = tp.Tucker2((6, 4), random_state=0, batch_size=40).fit_transform(batches)
    on_array = tp.Tucker2((6, 4), random_state=0, batch_size=40).fit_transform(to_backend(data))
    np.testing.assert_allclose(host(on_list), host(on_array), rtol=1e-6, atol=1e-8)


def test_streamed_statistics_match_the_held_gram(data):
    for rank in [(None, 4), (6, 4)]:
        held = tp.tucker2(to_backend(data), rank, random_state=0, statistics="gram")
        streamed = tp.tucker2(to_backend(data), rank, random_state=0, statistics="streamed")
        assert streamed.info["statistics"] == "streamed"
        assert congruence(host(held.P), host(streamed.P)) > 0.999
        assert streamed.objective == pytest.approx(held.objective, rel=1e-4)


@pytest.mark.parametrize("model", ["panda", "tucker"])
def test_transform_and_inverse_transform(data, model):
    est = tp.Tucker2((6, 4), model=model, random_state=0).fit(to_backend(data))
    cores = est.transform(to_backend(data))
    assert tuple(tl.shape(cores)) == (len(data), 6, 4)
    Zhat = est.inverse_transform(cores)
    assert tuple(tl.shape(Zhat)) == data.shape
    error = np.sum((host(Zhat) - data) ** 2)
    assert error == pytest.approx(est.factorization_.objective, rel=1e-6)
    np.testing.assert_allclose(
        host(est.fit_transform(to_backend(data))), host(cores), rtol=1e-6, atol=1e-9
    )


def test_tucker_cores_are_least_squares(data):
    fit = tp.tucker2(to_backend(data), (6, 4), model="tucker", random_state=0)
    cores = host(fit.transform(to_backend(data)))
    A, P = host(fit.A), host(fit.P)
    Z = data.reshape(len(data), data.shape[1], -1)
    # perturbing a core can only increase that sample's error
    base = np.sum((Z[0] - A @ cores[0] @ P.T) ** 2)
    bumped = np.sum((Z[0] - A @ (cores[0] + 1e-3) @ P.T) ** 2)
    assert bumped > base


def test_unfitted_estimator_says_so():
    with pytest.raises(ValueError, match="not fitted"):
        tp.Tucker2((None, 2)).transform(np.zeros((1, 2, 2, 2)))


def test_set_params_rejects_unknown_names():
    est = tp.Tucker2((None, 2)).set_params(solver="hals")
    assert est.get_params()["solver"] == "hals"
    with pytest.raises(ValueError, match="unknown parameter"):
        est.set_params(learning_rat=1.0)

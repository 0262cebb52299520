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


def test_estimator_forwards_every_keyword_to_the_function():
    function = inspect.signature(tp.tucker2).parameters
    estimator = inspect.signature(tp.Tucker2.__init__).parameters
    assert [p for p in function if p != "data"] == [p for p in estimator if p != "self"]
    for name, param in estimator.items():
        if name != "self":
            assert param.default == function[name].default, name


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

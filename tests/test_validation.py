"""Bad input gets a clear error naming the problem and the fix."""

from __future__ import annotations

import numpy as np
import pytest

import tensorpanda as tp
from helpers import planted, to_backend


@pytest.fixture(scope="module")
def Z():
    return planted(n=40, channels=8, height=4, width=4, n_parts=2)[0]


@pytest.mark.parametrize("bad,kind", [(np.nan, "NaN"), (np.inf, "inf")])
def test_non_finite_data_is_named_with_its_sample(Z, bad, kind):
    Z = Z.copy()
    Z[17, 3, 1, 2] = bad
    with pytest.raises(ValueError, match=rf"sample 17 .*contains {kind}.*nan_to_num"):
        tp.tucker2(to_backend(Z), (None, 2), batch_size=10)


def test_float32_overflow_is_explained(Z):
    huge = (Z * 1e30).astype("float32")
    with pytest.raises(ValueError, match="overflow"):
        tp.tucker2(to_backend(huge), (None, 2))


@pytest.mark.parametrize("shape", [(5, 4), (5,), (2, 3, 4, 5, 6)])
def test_wrong_number_of_dimensions(shape):
    with pytest.raises(ValueError, match=r"expected \(N, C, S\) or \(N, C, H, W\)"):
        tp.tucker2(to_backend(np.ones(shape)), (None, 1))


@pytest.mark.parametrize(
    "rank,message",
    [
        ((0, 2), "R_C must be a positive integer"),
        ((2, -1), "R_S must be a positive integer"),
        ((9, 2), "R_C = 9 exceeds the number of channels C = 8"),
        ((None, 17), "R_S = 17 exceeds the number of positions S = 16"),
        (3, r"rank must be a pair \(R_C, R_S\)"),
        ((2.5, 2), "R_C must be a positive integer"),
    ],
)
def test_bad_ranks(Z, rank, message):
    with pytest.raises(ValueError, match=message):
        tp.tucker2(to_backend(Z), rank)


def test_batches_whose_shapes_disagree(Z):
    batches = [to_backend(Z[:10]), to_backend(Z[10:20, :, :3])]
    with pytest.raises(ValueError, match="every sample must have the same"):
        tp.tucker2(batches, (None, 2))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"solver": "als"}, "unknown solver 'als'; choose one of 'mu', 'hals', 'pgd'"),
        ({"model": "cp"}, "unknown model 'cp'; choose one of 'panda', 'tucker'"),
        ({"init": "nmf"}, "unknown init 'nmf'; choose one of 'spa', 'svd', 'nndsvd', 'random'"),
        ({"statistics": "disk"}, "unknown statistics 'disk'"),
        ({"appearances": "nonnegative"}, "not available for model='panda'"),
        ({"model": "tucker", "appearances": "free"}, "not available for model='tucker'"),
        ({"solver": "paper"}, "appearances='free'"),
        ({"tol": -1}, "tol must be a non-negative number"),
        ({"max_iter": 0}, "max_iter must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"init": ("a",)}, "pair"),
    ],
)
def test_unknown_or_invalid_parameters(Z, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tp.tucker2(to_backend(Z), (None, 2), **kwargs)


def test_bad_random_state_and_callback(Z):
    with pytest.raises(TypeError, match="random_state"):
        tp.tucker2(to_backend(Z), (None, 2), random_state="seed")
    with pytest.raises(TypeError, match="callback"):
        tp.tucker2(to_backend(Z), (None, 2), callback=3)


def test_bad_initial_factors(Z):
    A = np.linalg.qr(np.random.RandomState(0).standard_normal((8, 3)))[0]
    P = np.ones((16, 2))
    with pytest.raises(ValueError, match=r"initial P has shape \(16, 2\), expected \(16, 3\)"):
        tp.tucker2(to_backend(Z), (3, 3), init=(A, P))
    with pytest.raises(ValueError, match="negative entries"):
        tp.tucker2(to_backend(Z), (3, 2), init=(A, -P))
    with pytest.raises(ValueError, match="not orthonormal"):
        tp.tucker2(to_backend(Z), (3, 2), init=(2 * A, P))


def test_data_that_is_not_numeric_or_not_data():
    with pytest.raises(TypeError, match="not str"):
        tp.tucker2("features.npy", (None, 2))
    with pytest.raises(TypeError, match="complex"):
        tp.tucker2(np.ones((3, 2, 2, 2), dtype=complex), (None, 1))
    with pytest.raises(TypeError, match="not numeric"):
        tp.tucker2(np.full((3, 2, 2, 2), "0.5"), (None, 1))
    with pytest.raises(ValueError, match="all zeros"):
        tp.tucker2(to_backend(np.zeros((3, 2, 2, 2))), (None, 1))
    with pytest.raises(ValueError, match="no samples"):
        tp.tucker2(to_backend(np.zeros((0, 2, 2, 2))), (None, 1))


def test_a_data_callable_that_changes_between_passes(Z):
    calls = []

    def shrinking():
        calls.append(1)
        return iter([to_backend(Z[: 40 - 10 * len(calls)])])

    with pytest.raises(ValueError, match="same samples on every call"):
        tp.tucker2(shrinking, (4, 2))


def test_a_convergence_warning_points_at_the_callers_line(Z):
    with pytest.warns(tp.ConvergenceWarning, match="max_iter=2") as caught:
        tp.tucker2(to_backend(Z), (4, 2), tol=0, max_iter=2)
    assert caught[0].filename == __file__


@pytest.mark.backend_independent
def test_the_paper_optimisers_single_default_epoch_does_not_warn(Z, recwarn):
    fit = tp.tucker2(Z, (4, 2), solver="paper", appearances="free", learning_rate=1e-3)
    assert fit.info["n_iter"] == 1
    assert not [w for w in recwarn if issubclass(w.category, tp.ConvergenceWarning)]


def test_initial_factors_as_a_list_mean_the_same_as_a_tuple(Z):
    rng = np.random.default_rng(1)
    A = np.linalg.qr(rng.standard_normal((8, 3)))[0]
    P = rng.random((16, 2))
    kwargs = dict(max_iter=3, tol=0)
    with pytest.warns(tp.ConvergenceWarning):
        as_tuple = tp.tucker2(to_backend(Z), (3, 2), init=(to_backend(A), to_backend(P)), **kwargs)
    with pytest.warns(tp.ConvergenceWarning):
        as_list = tp.tucker2(to_backend(Z), (3, 2), init=[to_backend(A), to_backend(P)], **kwargs)
    assert as_list.history == pytest.approx(as_tuple.history, rel=1e-10)


def test_relative_error_of_all_zero_data_is_refused(Z):
    fit = tp.tucker2(to_backend(Z), (None, 2))
    zeros = to_backend(np.zeros_like(Z))
    with pytest.raises(ValueError, match="all zero.*relative=False"):
        tp.reconstruction_error(fit, zeros)
    assert tp.reconstruction_error(fit, zeros, relative=False) == 0


def test_a_saliency_threshold_outside_the_unit_interval(Z):
    fit = tp.tucker2(to_backend(Z), (None, 2))
    with pytest.raises(ValueError, match=r"threshold must lie in \[0, 1\]"):
        tp.saliency(fit, to_backend(Z[:2]), appearance=0, threshold=1.5)

"""Refinement: sample-specific parts with A fixed."""

from __future__ import annotations

import numpy as np
import pytest
import tensorly as tl

import tensorpanda as tp
from helpers import congruence, host, planted, to_backend


@pytest.fixture(scope="module")
def fitted():
    Z, _, P_true = planted(n=200, channels=16, height=6, width=8, n_parts=4, noise=0.05)
    return Z, P_true, tp.tucker2(to_backend(Z), (None, 4), random_state=0)


def _sample_error(fit, P, z):
    A = host(fit.A)
    return np.sum((z - A @ A.T @ z @ P @ P.T) ** 2)


@pytest.mark.parametrize("solver", ["mu", "hals", "pgd"])
def test_refined_parts_fit_each_sample_at_least_as_well(fitted, solver):
    Z, _, fit = fitted
    refined = tp.refine(fit, to_backend(Z[:5]), solver=solver)
    assert tuple(tl.shape(refined)) == (5, 48, 4)
    refined = host(refined)
    assert refined.min() >= 0
    for i in range(5):
        z = Z[i].reshape(16, -1)
        assert _sample_error(fit, refined[i], z) <= _sample_error(fit, host(fit.P), z) * (
            1 + 1e-9
        )


def test_refinement_follows_a_sample_whose_parts_moved(fitted):
    """A sample whose stripes are shifted by one column: its refined parts follow them."""
    Z, P_true, fit = fitted
    rng = np.random.RandomState(5)
    shifted = np.roll(P_true.reshape(6, 8, 4), 1, axis=1).reshape(48, 4)
    A = host(fit.A)
    z = A @ rng.standard_normal((16, 4)) * 3 @ shifted.T
    refined = host(tp.refine(fit, to_backend(z.reshape(1, 16, 6, 8)), max_iter=500))[0]
    assert congruence(refined, shifted) > 0.95
    assert congruence(host(fit.P), shifted) < 0.9


def test_refine_rejects_bad_arguments(fitted):
    Z, _, fit = fitted
    with pytest.raises(ValueError, match="unknown solver 'sgd'"):
        tp.refine(fit, to_backend(Z[:1]), solver="sgd")
    with pytest.raises(ValueError, match="does not match factors fitted on 16 channels"):
        tp.refine(fit, to_backend(Z[:1, :8]))

"""SeFa and GANSpace: the closed-form and PCA baselines."""

from __future__ import annotations

import numpy as np
import pytest

import tensorpanda as tp
from helpers import host, to_backend


def test_sefa_directions_are_orthonormal_sorted_eigenvectors():
    rng = np.random.RandomState(0)
    W = rng.standard_normal((40, 10)) * rng.uniform(0.1, 3, size=(1, 10))
    d = tp.sefa(to_backend(W))
    U = host(d.U)
    np.testing.assert_allclose(U @ U.T, np.eye(10), atol=1e-10)
    assert np.all(np.diff(d.scores) <= 0)
    # the same eigenproblem solved independently: rows normalised, then eig(WᵀW)
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    values, vectors = np.linalg.eigh(Wn.T @ Wn)
    np.testing.assert_allclose(d.scores, values[::-1], rtol=1e-10)
    np.testing.assert_allclose(np.abs(U @ vectors[:, ::-1]), np.eye(10), atol=1e-8)
    assert host(tp.sefa(to_backend(W), 3).U).shape == (3, 10)


def test_pca_components_are_orthonormal_and_match_the_covariance():
    rng = np.random.RandomState(1)
    Y = rng.standard_normal((300, 4)) @ rng.standard_normal((4, 50)) + 0.01 * rng.standard_normal(
        (300, 50)
    )
    p = tp.pca(to_backend(Y), 4)
    C = host(p.components)
    np.testing.assert_allclose(C @ C.T, np.eye(4), atol=1e-10)
    values = np.linalg.eigvalsh(np.cov(Y.T))[::-1][:4]
    np.testing.assert_allclose(p.variances, values, rtol=1e-6)


def test_ganspace_maps_components_back_to_the_latents_that_cause_them():
    """For a linear generator y = M z, moving z along u_i moves y along component i."""
    rng = np.random.RandomState(2)
    z = rng.standard_normal((2000, 6))
    M = rng.standard_normal((6, 30))
    d = tp.ganspace(to_backend(z), to_backend(z @ M), 3)
    U = host(d.U)
    np.testing.assert_allclose(np.linalg.norm(U, axis=1), 1, atol=1e-10)
    moves = U @ M
    moves /= np.linalg.norm(moves, axis=1, keepdims=True)
    components = np.linalg.svd(z @ M - (z @ M).mean(0), full_matrices=False)[2][:3]
    np.testing.assert_allclose(np.abs(moves @ components.T), np.eye(3), atol=1e-3)


def test_baseline_arguments_are_checked():
    with pytest.raises(ValueError, match="must be a matrix"):
        tp.sefa(to_backend(np.ones(5)))
    with pytest.raises(ValueError, match=r"integer in 1..4"):
        tp.sefa(to_backend(np.ones((3, 4))), 5)
    with pytest.raises(ValueError, match="same number of samples"):
        tp.ganspace(to_backend(np.ones((5, 2))), to_backend(np.ones((4, 3))), 1)

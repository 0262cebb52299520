"""The stochastic solvers: the original PandA optimiser ('paper') and minibatch Adam."""

from __future__ import annotations

import numpy as np
import pytest
import tensorly as tl
import torch

import tensorpanda as tp
from helpers import congruence, host, planted, to_backend
from tensorpanda.paper import paper_gradients

# the paper optimiser runs a fixed number of epochs: reaching max_iter is its normal end
pytestmark = pytest.mark.filterwarnings("ignore::tensorpanda.ConvergenceWarning")


def _autograd_gradients(z, A, P):
    """Gradients of ‖z − A Aᵀ z P Pᵀ‖² by torch autograd (independent of the paper code)."""
    z, A, P = (torch.tensor(x, dtype=torch.float64) for x in (z, A, P))
    A.requires_grad_(True)
    P.requires_grad_(True)
    loss = ((z - A @ A.T @ z @ P @ P.T) ** 2).sum()
    g_A, g_P = torch.autograd.grad(loss, (A, P))
    return g_A.numpy(), g_P.numpy()


@pytest.mark.parametrize("reorder", [False, True])
def test_paper_gradients_are_the_loss_gradients(reorder):
    rng = np.random.RandomState(0)
    z, A, P = rng.standard_normal((7, 12)), rng.standard_normal((7, 5)), rng.uniform(size=(12, 3))
    g_P, grad_A = paper_gradients(to_backend(z), to_backend(A), to_backend(P), reorder)
    want_A, want_P = _autograd_gradients(z, A, P)
    np.testing.assert_allclose(host(g_P), want_P, rtol=1e-10)
    np.testing.assert_allclose(host(grad_A(to_backend(P))), want_A, rtol=1e-10)


def test_paper_follows_the_original_schedule():
    """One epoch on three samples equals the original's loop written out by hand."""
    Z, _, _ = planted(n=3, channels=6, height=3, width=3, n_parts=2)
    lr = 1e-3
    fit = tp.tucker2(
        to_backend(Z), (6, 2), solver="paper", appearances="free", learning_rate=lr,
        random_state=0, max_iter=1, tol=0,
    )
    # the original: A from the SVD of the mean channel scatter, P ~ U(0, 0.01) ...
    z = Z.reshape(3, 6, 9)
    A = np.linalg.svd(np.einsum("ncs,nds->cd", z, z) / 3)[0][:, :6]
    P = np.random.RandomState(0).uniform(0, 0.01, size=(9, 2))
    for zi in z:  # ... then for each sample a P-step, projection, and an A-step
        g_A, g_P = _autograd_gradients(zi, A, P)
        P = np.maximum(P - lr * g_P, 0)
        g_A, _ = _autograd_gradients(zi, A, P)
        A = A - lr * g_A
    np.testing.assert_allclose(host(fit.P), P, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(host(fit.A), A, rtol=1e-8, atol=1e-12)
    assert fit.info["n_steps"] == 3


def test_paper_lowers_the_objective_with_a_reasonable_rate():
    Z, _, _ = planted(n=200, channels=8, height=4, width=4, n_parts=2, noise=0.05)
    losses = []
    fit = tp.tucker2(
        to_backend(Z), (8, 2), solver="paper", appearances="free", learning_rate=2e-3,
        random_state=0, max_iter=3, tol=0,
        callback=lambda s: losses.append(s.objective),
    )
    assert losses[-1] < losses[0]
    assert fit.relative_error < 0.5


def test_paper_learning_rate_that_blows_up_is_reported():
    Z, _, _ = planted(n=50, channels=8, height=4, width=4, n_parts=2)
    with pytest.raises(tp.DivergenceError, match=r"learning_rate=.*Lower it"):
        tp.tucker2(
            to_backend(Z), (8, 2), solver="paper", appearances="free", learning_rate=10.0
        )
    with pytest.raises(ValueError, match="needs a learning_rate"):
        tp.tucker2(to_backend(Z), (8, 2), solver="paper", appearances="free")


def test_paper_step_that_zeroes_the_parts_is_reported():
    Z, _, _ = planted(n=50, channels=8, height=4, width=4, n_parts=2)
    with pytest.raises(tp.DivergenceError, match="clamped every entry of P to zero"):
        # a positive data shift makes the first P-gradient positive everywhere
        tp.tucker2(
            to_backend(Z + 5), (8, 2), solver="paper", appearances="free", learning_rate=0.5
        )


@pytest.mark.skipif(tl.get_backend() == "numpy", reason="adam needs an autograd backend")
@pytest.mark.parametrize("model", ["panda", "tucker"])
def test_adam_fits_planted_data(model):
    Z, _, P_true = planted(n=200, noise=0.05)
    fit = tp.tucker2(
        to_backend(Z), (None, 4), model=model, solver="adam", learning_rate=1e-2,
        batch_size=50, max_iter=30, random_state=0,
    )
    assert fit.history[-1] < fit.history[0]  # stochastic: a trend, not a monotone sequence
    assert host(fit.P).min() >= 0
    if model == "panda":
        assert congruence(host(fit.P), P_true) >= 0.99
    gram = tp.tucker2(to_backend(Z), (None, 4), model=model, random_state=0)
    assert fit.relative_error < gram.relative_error * 1.05


@pytest.mark.skipif(tl.get_backend() != "numpy", reason="the numpy backend has no autograd")
def test_adam_on_numpy_says_which_backend_to_use():
    Z, _, _ = planted(n=20)
    with pytest.raises(ValueError, match="tl.set_backend\\('pytorch'\\)"):
        tp.tucker2(to_backend(Z), (None, 2), solver="adam")

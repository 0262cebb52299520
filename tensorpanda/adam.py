"""Projected Adam on minibatches (``solver="adam"``), with the backend's autograd.

One step per batch, one iteration per epoch: P is clipped to P ≥ 0 after each step, an
orthonormal A is re-orthonormalised (QR), a non-negative A clipped. For S×S statistics too
large to hold; the Gram solvers are faster whenever they fit. Needs the pytorch or jax
backend.
"""

from __future__ import annotations

import time

import numpy as np
import tensorly as tl

from . import _backend as B
from .data import BatchSource
from .exceptions import DivergenceError
from .loop import check_factors, iterate
from .params import ADAM_LEARNING_RATE, Config
from .problem import first_pass, start
from .result import Factorization
from .stochastic import check_single_process, exact_objective


def fit_adam(source: BatchSource, config: Config) -> Factorization:
    """Fit by projected Adam from the Gram solvers' start (learning rate default 1e-3)."""
    check_single_process(config)
    if tl.get_backend() not in ("pytorch", "jax"):
        raise ValueError(
            "solver='adam' needs the backend's autograd: tl.set_backend('pytorch') or "
            "tl.set_backend('jax') (on numpy, use solver='mu', 'hals' or 'pgd')"
        )
    started, passes_before = time.perf_counter(), source.passes
    stats = first_pass(source, config)
    problem = start(source, config, stats)
    problem.started, problem.passes_before = started, passes_before
    optimiser = _Adam(config.learning_rate or ADAM_LEARNING_RATE)
    orthonormal = config.appearances == "orthonormal"
    epochs = 0

    def one_epoch() -> float:
        nonlocal epochs
        epochs += 1
        for batch in source:
            when = f"in epoch {epochs}, batch {batch.index}"
            Z = B.to_backend(batch.Z, source.context)
            value, g_A, g_P = _value_and_grad(problem.A, problem.P, Z, config.model, orthonormal)
            if not np.isfinite(value):
                raise DivergenceError(
                    f"solver='adam' diverged {when}: the loss became non-finite with "
                    f"learning_rate={optimiser.lr:g}. Lower it (try learning_rate="
                    f"{optimiser.lr / 10:g}) or use a Gram solver ('hals', 'mu', 'pgd'), "
                    "which needs no step size"
                )
            A, P = optimiser.step([problem.A, problem.P], [g_A, g_P])
            problem.P = tl.clip(P, 0, None)
            if orthonormal:
                A = B.orthonormal_basis(A)
            elif config.appearances == "nonnegative":
                A = tl.clip(A, 0, None)
            problem.A = A
            # after every step: the next loss of a Tucker model would solve with PᵀP = 0
            check_factors(problem, when)
        return exact_objective(source, problem)

    return iterate(problem, one_epoch)


def _loss(A, P, Z, model: str, orthonormal: bool):
    """Σ_i ‖Z_i − Ẑ_i‖² of a batch, differentiable on the pytorch and jax backends."""
    if model == "panda":
        core = tl.matmul(tl.matmul(tl.transpose(A), Z), P)
        Zhat = tl.matmul(tl.matmul(A, core), tl.transpose(P))
        return tl.sum((Z - Zhat) ** 2)
    # Tucker: least-squares cores through a (well-posed) solve
    eye_s = tl.eye(tl.shape(P)[1], **B.context_of(P))
    PtP = tl.dot(tl.transpose(P), P) + 1e-7 * tl.trace(tl.dot(tl.transpose(P), P)) * eye_s
    right = tl.transpose(tl.solve(PtP, tl.transpose(P)))  # P (PᵀP)⁻¹
    if orthonormal:
        left = tl.transpose(A)
    else:
        eye_c = tl.eye(tl.shape(A)[1], **B.context_of(A))
        AtA = tl.dot(tl.transpose(A), A) + 1e-7 * tl.trace(tl.dot(tl.transpose(A), A)) * eye_c
        left = tl.solve(AtA, tl.transpose(A))
    core = tl.matmul(tl.matmul(left, Z), right)
    Zhat = tl.matmul(tl.matmul(A, core), tl.transpose(P))
    return tl.sum((Z - Zhat) ** 2)


def _value_and_grad(A, P, Z, model: str, orthonormal: bool):
    """(loss, ∂loss/∂A, ∂loss/∂P) of a batch by the backend's autograd."""
    name = tl.get_backend()
    if name == "pytorch":
        import torch

        # fits often run where GAN code runs, under torch.no_grad() or inference_mode():
        # this solver needs gradients, so it switches them on for its own loss only
        with torch.inference_mode(False), torch.enable_grad():
            A_, P_, Z = (_plain(t) for t in (A, P, Z))
            A_.requires_grad_(True)
            P_.requires_grad_(True)
            loss = _loss(A_, P_, Z, model, orthonormal)
            g_A, g_P = torch.autograd.grad(loss, (A_, P_))
        return float(loss.detach()), g_A, g_P
    import jax

    value, (g_A, g_P) = jax.value_and_grad(
        lambda A_, P_: _loss(A_, P_, Z, model, orthonormal), argnums=(0, 1)
    )(A, P)
    return float(value), g_A, g_P


def _plain(t):
    """A detached tensor autograd may record: a copy of an inference-mode tensor (made
    under ``torch.inference_mode()``, which autograd refuses), else a view."""
    t = t.detach()
    return t.clone() if t.is_inference() else t


class _Adam:
    """Adam (Kingma & Ba, 2015) on a list of tensors, written with tl.* only."""

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m, self.v, self.t = None, None, 0

    def step(self, params: list, grads: list) -> list:
        if self.m is None:
            self.m = [tl.zeros_like(p) for p in params]
            self.v = [tl.zeros_like(p) for p in params]
        self.t += 1
        out = []
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * g
            self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * g * g
            m_hat = self.m[i] / (1 - self.beta1**self.t)
            v_hat = self.v[i] / (1 - self.beta2**self.t)
            out.append(p - self.lr * m_hat / (tl.sqrt(v_hat) + self.eps))
        return out

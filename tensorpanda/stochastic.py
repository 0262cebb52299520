"""Stochastic solvers: ``paper`` (the original PandA optimiser) and ``adam`` (minibatch
autograd).

Both read the data sample by sample or batch by batch instead of through statistics, so an
*iteration* here is one epoch (one pass over the data), and ``max_iter`` counts epochs. The
objective recorded after each epoch is the exact Σ_i ‖Z_i − Ẑ_i‖² (one statistics pass).
"""

from __future__ import annotations

import time

import numpy as np
import tensorly as tl

from . import _backend as B
from . import quartic
from ._distributed import world_size
from .data import BatchSource
from .exceptions import DivergenceError
from .operators import MatrixOperator
from .result import Factorization
from .solver import Config, first_pass, iterate, start
from .statistics import channel_scatter, spatial_gram_terms, sq_norm, sweep

# The original code initialises A from the scatter of this many samples (10 batches of 100).
PAPER_BASIS_SAMPLES = 1000
# How often (in steps) the paper optimiser looks for non-finite or collapsed factors.
CHECK_EVERY = 100
ADAM_LEARNING_RATE = 1e-3


def fit_stochastic(source: BatchSource, config: Config) -> Factorization:
    """Fit with a stochastic solver: ``solver="paper"`` by :func:`fit_paper`, ``"adam"`` by
    :func:`fit_adam`.

    Both read the data sample by sample or batch by batch; an iteration is one epoch.

    Parameters
    ----------
    source : BatchSource
        The data.
    config : Config
        A validated config with ``solver`` ``"paper"`` or ``"adam"``.

    Returns
    -------
    Factorization
        The fit.

    Raises
    ------
    ValueError
        Under ``torch.distributed`` with more than one process (these solvers do not
        reduce across processes), and as :func:`fit_paper` and :func:`fit_adam` do.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import as_source
    >>> from tensorpanda.solver import Config, validate
    >>> from tensorpanda.stochastic import fit_stochastic
    >>> Z = np.random.default_rng(0).random((20, 4, 3, 3))
    >>> config = validate(Config(rank=(2, 2), solver="paper", appearances="free",
    ...                          learning_rate=1e-3, max_iter=3, random_state=0))
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # 3 epochs do not converge
    ...     fit = fit_stochastic(as_source(Z), config)
    >>> fit.info["solver"], fit.info["n_iter"], fit.info["n_steps"]
    ('paper', 3, 60)
    """
    if world_size() > 1:
        raise ValueError(
            f"solver={config.solver!r} does not reduce across processes; with "
            "torch.distributed use solver='mu', 'hals' or 'pgd', whose statistics are "
            "all-reduced"
        )
    if config.solver == "paper":
        return fit_paper(source, config)
    return fit_adam(source, config)


# -- paper -------------------------------------------------------------------------------------
def paper_init(source: BatchSource, config: Config, rng):
    """The original's start: A from the left singular vectors of the mean channel scatter of
    the first 1,000 samples (its ``HOSVD``), P ~ U(0, 0.01). Returns the started problem.

    One pass over the data (for Σ‖Z_i‖² and the scatter).

    Parameters
    ----------
    source : BatchSource
        The data.
    config : Config
        A validated config (``rank`` is read; ``init`` is ignored).
    rng : numpy.random.RandomState
        The source of the uniform start of P.

    Returns
    -------
    Problem
        The started problem, with A (C×R_C, orthonormal columns) and P (S×R_S) set.

    Raises
    ------
    ValueError
        When a rank exceeds the data's modes or the data is all zeros.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import as_source
    >>> from tensorpanda.solver import Config, validate
    >>> from tensorpanda.stochastic import paper_init
    >>> source = as_source(np.random.default_rng(0).random((20, 4, 3, 3)))
    >>> config = validate(Config(rank=(2, 3), solver="paper", appearances="free"))
    >>> problem = paper_init(source, config, np.random.RandomState(0))
    >>> problem.A.shape, problem.P.shape, bool(np.allclose(problem.A.T @ problem.A, np.eye(2)))
    ((4, 2), (9, 3), True)
    >>> bool(0 <= problem.P.min() and problem.P.max() <= 0.01)
    True
    """
    stats = sweep(
        source,
        lambda Z: {"sq_norm": sq_norm(Z)},
        head=PAPER_BASIS_SAMPLES,
        head_terms=lambda Z: {"scatter": channel_scatter(Z)},
    )
    problem = start(source, config, stats, initialise=False)
    ctx, (R_C, R_S) = source.context, problem.rank
    scatter = tl.to_numpy(stats["head_scatter"]).astype(np.float64) / stats["head_samples"]
    U = np.linalg.svd(scatter)[0]
    dtype = B.dtype_name(ctx)
    problem.A = B.tensor(U[:, :R_C].astype(dtype), ctx)
    problem.P = B.tensor(rng.uniform(0, 0.01, size=(source.n_positions, R_S)).astype(dtype), ctx)
    return problem


def paper_gradients(z, A, P, reorder: bool = False):
    """The original code's gradients of ‖z − A Aᵀ z P Pᵀ‖² for one sample z (C×S).

    With ``reorder=False`` the products are evaluated left to right as the original writes
    them (``zᵀ @ A @ Aᵀ @ z @ P`` ...), so that this peer costs what the original costs;
    ``reorder=True`` evaluates the same expressions in a cheap order (for the benchmark's
    "how much is the evaluation order" row).

    Parameters
    ----------
    z : backend tensor of shape (C, S)
        One sample.
    A : backend tensor of shape (C, R_C)
        The current appearances (free: not assumed orthonormal).
    P : backend tensor of shape (S, R_S)
        The current parts.
    reorder : bool
        Evaluate the products in a cheap order instead of the original's.

    Returns
    -------
    g_P : backend tensor of shape (S, R_S)
        The gradient with respect to P at (A, P).
    grad_A : callable
        ``grad_A(P_new)``: the gradient with respect to A at (A, P_new), since the original
        steps A with the P it has just updated.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.stochastic import paper_gradients
    >>> rng = np.random.default_rng(0)
    >>> z, A, P = rng.random((4, 9)), rng.random((4, 2)), rng.random((9, 3))
    >>> g_P, grad_A = paper_gradients(z, A, P)
    >>> g_P.shape, grad_A(P).shape
    ((9, 3), (4, 2))
    >>> g_fast, grad_A_fast = paper_gradients(z, A, P, reorder=True)
    >>> bool(np.allclose(g_P, g_fast)), bool(np.allclose(grad_A(P), grad_A_fast(P)))
    (True, True)

    The gradient matches a finite difference of the loss:

    >>> loss = lambda P: ((z - A @ A.T @ z @ P @ P.T) ** 2).sum()
    >>> E = np.zeros_like(P); E[0, 0] = 1e-6
    >>> bool(np.isclose((loss(P + E) - loss(P - E)) / 2e-6, g_P[0, 0], rtol=1e-4))
    True
    """
    dot, T = tl.dot, tl.transpose
    if not reorder:
        zt, At, Pt = T(z), T(A), T(P)
        term = dot(dot(dot(dot(zt, A), At), z), P)
        g_P = -4 * term + 2 * (
            dot(dot(dot(dot(dot(dot(dot(dot(P, Pt), zt), A), At), A), At), z), P)
            + dot(dot(dot(dot(dot(dot(dot(dot(zt, A), At), A), At), z), P), Pt), P)
        )
        return g_P, lambda P: _paper_grad_A_original(z, A, P)
    Y = dot(T(A), z)  # Aᵀ z
    AtA = dot(T(A), A)
    YP = dot(Y, P)
    K1P = dot(T(Y), YP)
    K2P = dot(T(Y), dot(AtA, YP))
    g_P = -4 * K1P + 2 * (dot(P, dot(T(P), K2P)) + dot(K2P, dot(T(P), P)))
    return g_P, lambda P: _paper_grad_A_reordered(z, A, P)


def _paper_grad_A_original(z, A, P):
    dot, T = tl.dot, tl.transpose
    zt, At, Pt = T(z), T(A), T(P)
    return -4 * dot(dot(dot(dot(z, P), Pt), zt), A) + 2 * (
        dot(dot(dot(dot(dot(dot(dot(dot(A, At), z), P), Pt), P), Pt), zt), A)
        + dot(dot(dot(dot(dot(dot(dot(dot(z, P), Pt), P), Pt), zt), A), At), A)
    )


def _paper_grad_A_reordered(z, A, P):
    dot, T = tl.dot, tl.transpose
    W = dot(z, P)  # C×R_S
    AtW = dot(T(A), W)
    PtP = dot(T(P), P)
    X1A = dot(W, T(AtW))
    X2A = dot(dot(W, PtP), T(AtW))
    return -4 * X1A + 2 * (dot(A, dot(T(A), X2A)) + dot(X2A, dot(T(A), A)))


def fit_paper(source: BatchSource, config: Config, reorder: bool = False) -> Factorization:
    """Batch-1 projected gradient on the summed loss with a fixed learning rate: for each
    sample, a P-step (then projection onto P ≥ 0), then an A-step on the same sample with the
    new P. A is free. One iteration = one epoch of N steps.

    Starts from :func:`paper_init`; after each epoch the exact objective is evaluated with
    one more pass (:func:`exact_objective`). ``info`` gains ``n_steps``,
    ``learning_rate`` and ``evaluation_time``.

    Parameters
    ----------
    source : BatchSource
        The data.
    config : Config
        A validated config with ``solver="paper"`` (``model="panda"``,
        ``appearances="free"``) and a ``learning_rate``.
    reorder : bool
        Evaluate the gradients in a cheap order instead of the original's (see
        :func:`paper_gradients`).

    Returns
    -------
    Factorization
        The fit.

    Raises
    ------
    ValueError
        When ``config.learning_rate`` is None.
    DivergenceError
        When the factors become non-finite or P is clamped to zero (a learning rate too
        large).

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` epochs (more than one) end the fit before it converged; the
        default single epoch, the original schedule, cannot judge convergence and does not
        warn.

    Examples
    --------
    >>> import numpy as np, warnings
    >>> from tensorpanda.data import as_source
    >>> from tensorpanda.solver import Config, validate
    >>> from tensorpanda.stochastic import fit_paper
    >>> Z = np.random.default_rng(0).random((20, 4, 3, 3))
    >>> config = validate(Config(rank=(2, 2), solver="paper", appearances="free",
    ...                          learning_rate=1e-3, max_iter=4, random_state=0))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # 4 epochs do not converge
    ...     fit = fit_paper(as_source(Z), config)
    >>> [round(f, 1) for f in fit.history], fit.info["n_steps"]
    ([252.5, 248.5, 229.1, 141.9], 80)
    >>> fit_paper(as_source(Z), validate(Config(rank=(2, 2), solver="paper",
    ...                                         appearances="free")))
    Traceback (most recent call last):
    ...
    ValueError: solver='paper' needs a learning_rate: ...
    """
    lr = config.learning_rate
    if lr is None:
        raise ValueError(
            "solver='paper' needs a learning_rate: the original used 1e-6 to 1e-8 on StyleGAN2 "
            "features, tuned per layer (a step too large zeroes P for good). solver='mu' "
            "needs none"
        )
    started, passes_before = time.perf_counter(), source.passes
    problem = paper_init(source, config, B.random_state(config.random_state))
    problem.started, problem.passes_before = started, passes_before
    steps = 0

    def one_epoch() -> float:
        nonlocal steps
        for batch in source:
            for i in range(batch.size):
                # divergence is detected and explained below, not left to numpy's warnings
                with np.errstate(over="ignore", invalid="ignore"):
                    z = batch.Z[i]
                    g_P, grad_A = paper_gradients(z, problem.A, problem.P, reorder)
                    problem.P = tl.clip(problem.P - lr * g_P, 0, None)
                    problem.A = problem.A - lr * grad_A(problem.P)
                steps += 1
                if steps % CHECK_EVERY == 0:
                    _check_paper_factors(problem, steps, lr)
        _check_paper_factors(problem, steps, lr)
        problem.extra_info.update(n_steps=steps, learning_rate=lr)
        return exact_objective(source, problem, config)

    return iterate(problem, one_epoch)


def _check_paper_factors(problem, step: int, lr: float) -> None:
    P_max = B.scalar(tl.max(problem.P))
    A_sum = B.scalar(tl.sum(problem.A))
    if not (np.isfinite(P_max) and np.isfinite(A_sum)):
        raise DivergenceError(
            f"solver='paper' diverged by step {step}: the factors became non-finite with "
            f"learning_rate={lr:g}. Lower it (try {lr / 10:g}) or use solver='mu', which "
            "needs no step size"
        )
    if P_max <= 0:
        raise DivergenceError(
            f"solver='paper' clamped every entry of P to zero by step {step} "
            f"(learning_rate={lr:g} is too large; the projection keeps P at zero for good). "
            f"Lower it (try {lr / 10:g}) or use solver='mu'"
        )


def exact_objective(source: BatchSource, problem, config: Config) -> float:
    """Σ_i ‖Z_i − A Aᵀ Z_i P Pᵀ‖² (or the Tucker objective) from one statistics pass.

    Its time is recorded in ``info["evaluation_time"]``: the original optimiser evaluates no
    objective, so a fair comparison subtracts it.

    Parameters
    ----------
    source : BatchSource
        The data.
    problem : Problem
        The fit in progress: its current ``A`` and ``P`` are evaluated, and the time spent
        is added to ``problem.extra_info["evaluation_time"]``.
    config : Config
        The fit's config (``model`` and ``appearances`` choose the objective).

    Returns
    -------
    float
        The objective at (A, P).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import as_source
    >>> from tensorpanda.solver import Config, validate
    >>> from tensorpanda.stochastic import exact_objective, paper_init
    >>> Z = np.random.default_rng(0).random((20, 4, 3, 3))
    >>> config = validate(Config(rank=(2, 2), solver="paper", appearances="free"))
    >>> source = as_source(Z)
    >>> problem = paper_init(source, config, np.random.RandomState(0))
    >>> A, P, Zs = problem.A, problem.P, Z.reshape(20, 4, 9)
    >>> direct = sum(((z - A @ A.T @ z @ P @ P.T) ** 2).sum() for z in Zs)
    >>> bool(np.isclose(exact_objective(source, problem, config), direct))
    True
    >>> "evaluation_time" in problem.extra_info
    True
    """
    started = time.perf_counter()
    value = _exact_objective(source, problem, config)
    spent = problem.extra_info.get("evaluation_time", 0.0) + time.perf_counter() - started
    problem.extra_info["evaluation_time"] = spent
    return value


def _exact_objective(source: BatchSource, problem, config: Config) -> float:
    A, P = problem.A, problem.P
    if config.model == "tucker":
        Q = A if config.appearances == "orthonormal" else B.orthonormal_basis(A)
        K = sweep(source, spatial_gram_terms(Q))["K"]
        from .updates import subspace_objective

        return subspace_objective(P, tl.dot(K, P), problem.sq_norm)
    AtA = None if config.appearances == "orthonormal" else tl.dot(tl.transpose(A), A)
    stats = sweep(source, spatial_gram_terms(A, AtA))
    K1X, K2X = MatrixOperator(stats["K"], stats.get("K2")).apply(P)
    return quartic.objective(P, K1X, K2X, problem.sq_norm)


# -- adam --------------------------------------------------------------------------------------
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
    name = tl.get_backend()
    if name == "pytorch":
        import torch

        A_ = A.detach().requires_grad_(True)
        P_ = P.detach().requires_grad_(True)
        loss = _loss(A_, P_, Z, model, orthonormal)
        g_A, g_P = torch.autograd.grad(loss, (A_, P_))
        return float(loss.detach()), g_A, g_P
    import jax

    value, (g_A, g_P) = jax.value_and_grad(
        lambda A_, P_: _loss(A_, P_, Z, model, orthonormal), argnums=(0, 1)
    )(A, P)
    return float(value), g_A, g_P


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


def fit_adam(source: BatchSource, config: Config) -> Factorization:
    """Projected Adam on minibatches: P is clipped to P ≥ 0 after each step, an orthonormal
    A is re-orthonormalised (QR), a non-negative A clipped. For S×S statistics too large to
    hold; the Gram solvers are faster whenever they fit.

    The gradients come from the backend's autograd (pytorch or jax); one step per batch,
    one iteration per epoch, then the exact objective with one more pass. The learning rate
    defaults to ``ADAM_LEARNING_RATE`` (1e-3).

    Parameters
    ----------
    source : BatchSource
        The data.
    config : Config
        A validated config with ``solver="adam"``.

    Returns
    -------
    Factorization
        The fit.

    Raises
    ------
    ValueError
        When the active TensorLy backend has no autograd (not pytorch or jax), a rank
        exceeds the data's modes, or the data is all zeros.
    DivergenceError
        When the loss becomes non-finite (a learning rate too large).

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` epochs end the fit before it converged.

    Examples
    --------
    On the numpy backend there is no autograd:

    >>> import numpy as np
    >>> from tensorpanda.data import as_source
    >>> from tensorpanda.solver import Config, validate
    >>> from tensorpanda.stochastic import fit_adam
    >>> Z = np.random.default_rng(0).random((20, 4, 3, 3))
    >>> config = validate(Config(rank=(2, 2), solver="adam", max_iter=5, learning_rate=1e-2,
    ...                          random_state=0))
    >>> fit_adam(as_source(Z), config)
    Traceback (most recent call last):
    ...
    ValueError: solver='adam' needs the backend's autograd: ...

    With pytorch the loss falls epoch by epoch and P stays non-negative (5 epochs are too
    few to converge, hence the silenced ConvergenceWarning):

    >>> import tensorly as tl, torch, warnings
    >>> with tl.backend_context("pytorch"), warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     fit = fit_adam(as_source(torch.as_tensor(Z)), config)
    >>> [round(f, 1) for f in fit.history], bool((fit.P >= 0).all())
    ([141.0, 124.6, 112.1, 103.0, 96.6], True)
    """
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

    def one_epoch() -> float:
        for batch in source:
            Z = B.to_backend(batch.Z, source.context)
            value, g_A, g_P = _value_and_grad(problem.A, problem.P, Z, config.model, orthonormal)
            if not np.isfinite(value):
                raise DivergenceError(
                    f"solver='adam' diverged: the loss became non-finite with learning_rate="
                    f"{optimiser.lr:g}; lower it or use solver='mu'"
                )
            A, P = optimiser.step([problem.A, problem.P], [g_A, g_P])
            problem.P = tl.clip(P, 0, None)
            if orthonormal:
                A = B.orthonormal_basis(A)
            elif config.appearances == "nonnegative":
                A = tl.clip(A, 0, None)
            problem.A = A
        return exact_objective(source, problem, config)

    return iterate(problem, one_epoch)

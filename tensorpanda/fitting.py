"""The one path every fit takes: ``tucker2`` and the ``Tucker2`` estimator both end in
`fit`, which hands a validated config to the solver's driver."""

from __future__ import annotations

from .adam import fit_adam
from .data import BatchSource, as_source
from .gram import fit_gram
from .host import fit_on_numpy, runs_on_numpy
from .paper import fit_paper
from .params import Config, make_config, signature
from .result import Factorization


def fit(source: BatchSource, config: Config) -> Factorization:
    """Fit a validated config on a source: the stochastic drivers for ``paper`` and
    ``adam``, the Gram driver for the update rules on statistics."""
    if config.solver == "paper":
        return fit_paper(source, config)
    if config.solver == "adam":
        return fit_adam(source, config)
    if runs_on_numpy(source):
        return fit_on_numpy(source, config, fit_gram)
    return fit_gram(source, config)


def tucker2(data, rank, **params) -> Factorization:
    r"""Semi-nonnegative Tucker-2 of a set of feature maps.

    Fits appearances ``A`` (C×R_C) and non-negative parts ``P`` (S×R_S) to samples
    ``Z_i`` (C×S). With ``model="panda"`` (the default, PandA's tied core)

    $$
    \min_{A,\,P \ge 0} \sum_i \lVert Z_i - A A^\top Z_i P P^\top \rVert_F^2 ,
    $$

    and with ``model="tucker"`` the classic Tucker-2 with free cores
    $\min_{A,\,P \ge 0,\,G_i} \sum_i \lVert Z_i - A G_i P^\top\rVert_F^2$.

    Parameters
    ----------
    data : array of shape (N, C, S) or (N, C, H, W), callable or iterable of batches
        Any TensorLy backend tensor or a numpy memmap; or a callable returning a fresh
        iterable of batches; or an iterable of batches (e.g. an adapter's ``features``).
        The data is read in batches: it never has to fit in memory.
    rank : (int or None, int)
        (R_C, R_S): number of appearances and of parts. ``R_C=None`` means all C channels.
    model : {"panda", "tucker"}
        ``panda``: PandA's tied core ``A Aᵀ Z_i P Pᵀ``; ``tucker``: free least-squares cores
        ``G_i`` (see ``docs/solvers.md``).
    solver : {"pgd", "hals", "mu", "adam", "paper"}
        ``pgd`` projected gradient (the default: fewest passes when R_C < C), ``hals``
        column-wise updates, ``mu`` multiplicative updates, all on the S×S / C×C
        statistics with an exact line search (see ``docs/solvers.md``); ``adam`` minibatch
        autograd steps (pytorch and jax backends); ``paper`` the original optimiser.
    init : {"spa", "svd", "nndsvd", "random"} or (A, P)
        ``spa`` (the default): A from the channel scatter's eigenvectors, P by successive
        projections on the spatial Gram's top eigenvectors (one pure position per part:
        recovers disjoint parts whatever the mixing of the eigenvectors); ``svd``: P from
        the magnitudes of those eigenvectors; ``nndsvd``: each eigenvector's larger signed
        part; ``random``: orthonormalised Gaussian A, uniform P; or initial factors
        ``(A, P)`` of shapes (C, R_C) and (S, R_S), either of which may be None.
    appearances : {"orthonormal", "free", "nonnegative"}
        Constraint on A: PandA allows orthonormal or free, Tucker orthonormal or
        non-negative (fully non-negative Tucker-2).
    tol : float
        Stop when an iteration lowers the objective by at most ``tol · Σ‖Z_i‖²``.
    max_iter : int, optional
        Most iterations (a [`ConvergenceWarning`][tensorpanda.ConvergenceWarning] if reached).
        Default: 500 for the Gram solvers; for ``adam`` and ``paper`` an iteration is an epoch,
        default 50 and 1 (the original makes one pass of N single-sample steps).
    inner_max_iter : int, optional
        Most P-updates per A-step when R_C < C. Default: 200 while the S×S statistic is
        held (they cost no pass over the data), 10 when it is streamed (one pass each).
    smoothness : float
        Weight of a spatial smoothness prior on the parts (``model="panda"``, Gram solvers):
        adds λ tr(Pᵀ L P), L the Laplacian of the H×W grid, with λ = smoothness · Σ‖Z_i‖²/S
        (one value works across layers and scales). 0 (the default) turns it off; about 1
        removes checkerboard parts at little cost in error (``docs/solvers.md``).
    statistics : {"auto", "gram", "streamed", "sketched"}
        How the data enters the fit (``info["route"]`` says which was taken, and
        ``info["route_reason"]`` why): hold the S×S Gram (one pass), stream ``K X``
        products (a pass per update), or, for PandA with R_C = C, a Nyström sketch of the
        Gram refined by one pass per iteration (large maps, where forming the Gram costs
        more than the fit; about six passes). ``"auto"`` picks the cheapest by a cost
        model of C, S and R_S (``docs/solvers.md``).
    batch_size : int, optional
        Samples per batch when ``data`` is an array.
    basis_samples : int
        With R_C = C every orthonormal A is optimal; A is then the eigenbasis of the channel
        scatter of the first ``basis_samples`` samples (per process), as the original code
        initialises it.
    learning_rate : float, optional
        Step size of ``adam`` and ``paper``.
    random_state : None, int or numpy RandomState
        Seed of the random parts of the fit (a ``random`` start, the ``paper`` start of P).
    callback : callable, optional
        ``callback(state)`` after each iteration, with ``state.iteration``,
        ``state.objective``, ``state.A``, ``state.P``, ``state.elapsed``; it returns True
        to stop the fit, False or None to go on (anything else is a ``TypeError``).

    Returns
    -------
    Factorization
        The factors ``A`` and ``P``, the objective after each iteration (``history``) and
        ``info`` (``n_iter``, ``converged``, ``n_passes``, ...).

    Raises
    ------
    ValueError
        When a parameter is out of range or an unknown choice, when a rank exceeds the
        data's modes, when the data is all zeros, badly shaped, holds non-finite values or
        values whose squares underflow, when an initial factor is all zero, or when the
        chosen solver cannot run here (``adam`` on the numpy backend, ``paper`` without a
        learning rate).
    TypeError
        When ``data`` is not an array, callable or iterable of batches, ``callback`` is not
        callable, or ``random_state`` is not None, an int or a numpy RandomState.
    DivergenceError
        When the objective or the factors become non-finite, or the parts collapse to
        P = 0 (a learning rate too large).

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` iterations end the fit before the objective settled, or when a
        part died (an all-zero column of P).

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> Z = np.random.default_rng(0).standard_normal((100, 8, 6, 6))
    >>> fit = tp.tucker2(Z, rank=(None, 4), random_state=0)
    >>> fit.A.shape, fit.P.shape, bool(fit.P.min() >= 0)
    ((8, 8), (36, 4), True)
    >>> fit.info["converged"], bool(fit.history[-1] <= fit.history[0])
    (True, True)
    """
    config = make_config(rank, params, "tucker2")
    return fit(as_source(data, config.batch_size), config)


# The parameters are declared once, in tensorpanda.params.PARAMETERS; this gives tucker2 the
# explicit signature that help(), IDEs and the API docs show.
tucker2.__signature__ = signature("data")

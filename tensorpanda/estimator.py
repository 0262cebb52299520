"""The estimator: ``Tucker2`` with ``fit``, ``partial_fit``, ``transform`` and friends.

It validates its parameters, then calls the same fitting path as :func:`tucker2`, so the two
cannot drift apart. Results are stored in trailing-underscore attributes.
"""

from __future__ import annotations

import inspect

from .data import BatchSource, as_source
from .result import Factorization
from .solver import Config, first_pass, fit, run_fixed_appearances, start, validate


class Tucker2:
    r"""Semi-nonnegative Tucker-2 (PandA) as an estimator.

    Parameters are those of :func:`tensorpanda.tucker2`. They are stored as given and only
    validated when fitting; :meth:`get_params` and :meth:`set_params` read and change them.

    Parameters
    ----------
    rank : (int or None, int)
        (R_C, R_S): number of appearances and of parts. ``R_C=None`` means all C channels.
    model : {"panda", "tucker"}, default "panda"
        PandA's tied core ``Z_i ≈ A Aᵀ Z_i P Pᵀ``, or the classic Tucker-2 with free cores
        ``Z_i ≈ A G_i Pᵀ``.
    solver : {"hals", "mu", "pgd", "adam", "paper"}, default "hals"
        ``hals`` column-wise updates, ``mu`` multiplicative updates, ``pgd`` projected
        gradient (the Gram solvers, the only ones :meth:`partial_fit` accepts); ``adam``
        minibatch autograd steps (pytorch and jax backends); ``paper`` the original
        optimiser.
    init : {"svd", "nndsvd", "random"} or (A, P), default "svd"
        Initialisation, or starting factors A (C×R_C) and P (S×R_S).
    appearances : {"orthonormal", "free", "nonnegative"}, default "orthonormal"
        Constraint on A: PandA allows orthonormal or free, Tucker orthonormal or
        non-negative.
    tol : float, default 1e-6
        Stop when an iteration lowers the objective by at most ``tol · Σ‖Z_i‖²``.
    max_iter : int, optional
        Most iterations. Default: 500 for the Gram solvers; for ``adam`` and ``paper`` an
        iteration is an epoch, default 50 and 1.
    inner_max_iter : int, default 20
        Most P-updates per iteration when R_C < C.
    statistics : {"auto", "gram", "streamed"}, default "auto"
        Hold the S×S Gram, or stream ``K X`` products when S² is too large (auto: hold it
        up to 2 GiB).
    batch_size : int, optional
        Samples per batch when the data is an array (also used by :meth:`transform`).
    basis_samples : int, default 1000
        With R_C = C, A is the eigenbasis of the channel scatter of the first
        ``basis_samples`` samples.
    learning_rate : float, optional
        Step size of ``adam`` and ``paper``.
    random_state : None, int or numpy RandomState
        Seed or generator for the random choices of the fit (e.g. ``init="random"``); an
        int makes the fit reproducible.
    callback : callable, optional
        ``callback(state)`` after each iteration (see :func:`tensorpanda.tucker2`);
        returning True stops the fit.

    Attributes
    ----------
    factorization_ : Factorization
        The fitted factors, history and info.
    appearances_ : tensor (C, R_C)
        A, the appearances (one per column).
    parts_ : tensor (S, R_S)
        P ≥ 0, the parts (one per column; ``factorization_.parts`` gives them as maps).
    n_iter_ : int
        Iterations run by the last fit.
    history_ : list of float
        Σ_i ‖Z_i − Ẑ_i‖² after each iteration.
    reconstruction_err_ : float
        ‖Z − Ẑ‖_F over the fitted data.
    n_samples_seen_ : int
        Samples the factors were fitted on (summed over :meth:`partial_fit` calls).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda import Tucker2
    >>> Z = np.random.default_rng(0).standard_normal((60, 5, 4, 4))
    >>> est = Tucker2(rank=(None, 3), random_state=0).fit(Z)
    >>> est.transform(Z).shape             # one 5×3 core per sample
    (60, 5, 3)
    >>> est.inverse_transform(est.transform(Z)).shape
    (60, 5, 4, 4)
    """

    def __init__(
        self,
        rank,
        *,
        model: str = "panda",
        solver: str = "hals",
        init="svd",
        appearances: str = "orthonormal",
        tol: float = 1e-6,
        max_iter: int | None = None,
        inner_max_iter: int = 20,
        statistics: str = "auto",
        batch_size: int | None = None,
        basis_samples: int = 1000,
        learning_rate: float | None = None,
        random_state=None,
        callback=None,
    ):
        self.rank = rank
        self.model = model
        self.solver = solver
        self.init = init
        self.appearances = appearances
        self.tol = tol
        self.max_iter = max_iter
        self.inner_max_iter = inner_max_iter
        self.statistics = statistics
        self.batch_size = batch_size
        self.basis_samples = basis_samples
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.callback = callback

    # -- parameters ----------------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self) -> dict:
        """The constructor's parameters, by name.

        Returns
        -------
        dict
            ``{name: value}`` for every constructor parameter, in signature order.

        Examples
        --------
        >>> from tensorpanda import Tucker2
        >>> Tucker2((None, 4), solver="hals").get_params()["solver"]
        'hals'
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> Tucker2:
        """Change constructor parameters; unknown names raise ``ValueError``.

        The values are not checked here but when fitting. A fitted estimator keeps its
        fitted attributes until the next :meth:`fit`.

        Parameters
        ----------
        **params
            New values by name, e.g. ``tol=1e-8``; the names are those of the constructor.

        Returns
        -------
        Tucker2
            The estimator itself.

        Raises
        ------
        ValueError
            If a name is not a constructor parameter (no parameter is changed then).

        Examples
        --------
        >>> from tensorpanda import Tucker2
        >>> Tucker2((None, 4)).set_params(tol=1e-8).tol
        1e-08
        """
        unknown = set(params) - set(self._param_names())
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {sorted(unknown)}; valid: {self._param_names()}"
            )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def _config(self) -> Config:
        return validate(Config(**self.get_params()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"Tucker2({args})"

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, data) -> Tucker2:
        """Fit the factors to ``data`` (any source :func:`tucker2` accepts).

        Runs :func:`tensorpanda.tucker2` with the estimator's parameters and stores the
        result in the trailing-underscore attributes. Statistics gathered by earlier
        :meth:`partial_fit` calls are discarded.

        Parameters
        ----------
        data : array (N, C, S) or (N, C, H, W), callable or iterable of batches
            The feature maps: an array on any TensorLy backend or a numpy memmap, a
            callable returning a fresh iterable of batches, or an iterable of batches.

        Returns
        -------
        Tucker2
            The fitted estimator itself.

        Raises
        ------
        ValueError
            If a parameter is invalid (e.g. an unknown solver, a rank above C or S) or the
            data is malformed.
        TypeError
            If ``data`` is not an array, a callable or an iterable of batches, or
            ``callback`` or ``random_state`` has the wrong type.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda import Tucker2
        >>> Z = np.random.default_rng(0).random((40, 5, 3, 3))
        >>> Tucker2((None, 2), random_state=0).fit(Z).parts_.shape
        (9, 2)
        """
        config = self._config()
        self._set(fit(as_source(data, config.batch_size), config))
        self._stats = None  # a later partial_fit starts afresh
        return self

    def partial_fit(self, batch) -> Tucker2:
        """Add one batch (N_b, C, S) or (N_b, C, H, W) to the statistics and re-solve.

        The statistics are sums over samples, so ``partial_fit`` over all batches gives the
        same factors as ``fit`` on their concatenation read in the same batches. Needs a
        single-pass fit: R_C = C with orthonormal appearances (model "panda" or "tucker"), a Gram
        solver and held statistics.

        A first call (or one after :meth:`fit`) starts afresh; later calls add to the
        statistics of the earlier ones.

        Parameters
        ----------
        batch : array of shape (N_b, C, S) or (N_b, C, H, W)
            One batch of samples, with the same per-sample shape as earlier batches.

        Returns
        -------
        Tucker2
            The estimator itself, refitted on all batches seen so far.

        Raises
        ------
        ValueError
            If the solver is not a Gram solver ("mu", "hals", "pgd"), if the fit would need
            more than one read of the data (see above; e.g. R_C < C with PandA, or streamed
            statistics), if the batch's per-sample shape differs from earlier batches, or if
            a parameter is invalid.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda import Tucker2
        >>> Z = np.random.default_rng(0).random((40, 5, 3, 3))
        >>> est = Tucker2((None, 2), random_state=0)
        >>> for batch in (Z[:20], Z[20:]):
        ...     est = est.partial_fit(batch)
        >>> est.n_samples_seen_
        40
        """
        config = self._config()
        if config.solver not in ("mu", "hals", "pgd"):
            raise ValueError(
                f"partial_fit needs a Gram solver ('mu', 'hals' or 'pgd'), not "
                f"{config.solver!r}"
            )
        source = _single_batch_source(batch)
        total = getattr(self, "_stats", None)
        # the channel scatter behind A covers the first basis_samples samples, as in fit
        seen = total["head_samples"] if total else 0
        head = Config(**{**config.__dict__, "basis_samples": max(config.basis_samples - seen, 0)})
        stats = _accumulate(total, first_pass(source, head), source)
        problem = start(source, config, stats)
        if not problem.appearances_fixed or problem.streamed:
            raise ValueError(
                "partial_fit needs a fit that reads the data once: rank R_C = C (None), with "
                "orthonormal appearances (model 'panda' or 'tucker'), and statistics that fit "
                "in memory. "
                "For R_C < C call fit() on a re-iterable source (a list of batches or a "
                "callable)"
            )
        self._set(run_fixed_appearances(problem, stats["K"]))
        self._stats = stats
        return self

    def _set(self, result: Factorization) -> None:
        self.factorization_ = result
        self.appearances_ = result.A
        self.parts_ = result.P
        self.n_iter_ = result.info["n_iter"]
        self.history_ = result.history
        self.n_samples_seen_ = result.info["n_samples"]
        self.reconstruction_err_ = max(result.objective, 0.0) ** 0.5

    def _check_fitted(self) -> Factorization:
        if not hasattr(self, "factorization_"):
            raise ValueError("this Tucker2 is not fitted yet: call fit() or partial_fit() first")
        return self.factorization_

    # -- cores ---------------------------------------------------------------------------------
    def transform(self, data):
        """Cores of each sample, shape (N, R_C, R_S); see the class example.

        Same as ``factorization_.transform(data, batch_size)``: Aᵀ Z_i P for the tied model,
        A⁺ Z_i (P⁺)ᵀ for the free one.

        Parameters
        ----------
        data : array (N, C, S) or (N, C, H, W), or any source :func:`tucker2` accepts
            The samples; C and S must match the fitted data. Read in batches of
            ``batch_size``.

        Returns
        -------
        tensor of shape (N, R_C, R_S)
            One core per sample, on the backend of the fitted factors.

        Raises
        ------
        ValueError
            If the estimator is not fitted yet (call :meth:`fit` or :meth:`partial_fit`
            first), or the data's channels or positions do not match the fitted factors.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda import Tucker2
        >>> Z = np.random.default_rng(0).random((40, 5, 3, 3))
        >>> est = Tucker2((4, 2), random_state=0).fit(Z)
        >>> est.transform(Z[:3]).shape
        (3, 4, 2)
        """
        return self._check_fitted().transform(data, self.batch_size)

    def fit_transform(self, data):
        """``fit(data).transform(data)``.

        Parameters
        ----------
        data : array (N, C, S) or (N, C, H, W), callable or iterable of batches
            The feature maps (see :meth:`fit`); read again for the cores, so a one-shot
            iterator of batches is refused.

        Returns
        -------
        tensor of shape (N, R_C, R_S)
            The cores of the fitted data.

        Raises
        ------
        ValueError
            As :meth:`fit`, and for a one-shot iterator (it cannot be read twice).
        TypeError
            As :meth:`fit`.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda import Tucker2
        >>> Z = np.random.default_rng(0).random((40, 5, 3, 3))
        >>> Tucker2((3, 2), random_state=0).fit_transform(Z).shape
        (40, 3, 2)
        """
        source = as_source(data, self.batch_size)
        if not source.reiterable:
            raise ValueError(
                "fit_transform reads the data twice (the fit, then the cores), but a one-shot "
                "iterator can be read once: pass an array, a list of batches or a callable "
                "that returns a fresh iterator"
            )
        return self.fit(source).transform(source)

    def inverse_transform(self, cores):
        """Feature maps A G_i Pᵀ from cores, shape (N, C, *spatial); see the class
        example.

        Parameters
        ----------
        cores : tensor of shape (N, R_C, R_S)
            Cores G_i, e.g. from :meth:`transform` (possibly edited).

        Returns
        -------
        tensor of shape (N, C, *spatial)
            The feature maps A G_i Pᵀ, on the backend of the fitted factors; ``spatial`` is
            (H, W), or (S,) for data fitted as (N, C, S).

        Raises
        ------
        ValueError
            If the estimator is not fitted yet, or ``cores`` does not have shape
            (N, R_C, R_S).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda import Tucker2
        >>> Z = np.random.default_rng(0).random((40, 5, 3, 3))
        >>> est = Tucker2((5, 9), model="tucker", random_state=0).fit(Z)  # full ranks
        >>> bool(np.allclose(est.inverse_transform(est.transform(Z)), Z))
        True
        """
        return self._check_fitted().inverse_transform(cores)


def _single_batch_source(batch) -> BatchSource:
    """A source that reads ``batch`` as one batch (so statistics add up as in ``fit``)."""
    source = BatchSource(batch)
    source._batch_size = source.n_samples
    return source


def _accumulate(total: dict | None, increment: dict, source: BatchSource) -> dict:
    layout = (source.n_channels, source.spatial_shape)
    if total is None:
        return {**increment, "layout": layout}
    if total["layout"] != layout:
        raise ValueError(
            f"this batch has per-sample shape {(layout[0], *layout[1])} but earlier "
            f"partial_fit batches had {(total['layout'][0], *total['layout'][1])}"
        )
    out = dict(total)
    for key, value in increment.items():
        out[key] = value if key not in out else out[key] + value
    return out

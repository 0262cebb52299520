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

    Parameters are those of :func:`tensorpanda.tucker2`.

    Attributes
    ----------
    factorization_ : Factorization
        The fitted factors, history and info.
    appearances_ : tensor (C, R_C)
        A.
    parts_ : tensor (S, R_S)
        P ≥ 0.
    n_iter_ : int
    history_ : list of float
        Σ_i ‖Z_i − Ẑ_i‖² after each iteration.
    reconstruction_err_ : float
        ‖Z − Ẑ‖_F over the fitted data.
    n_samples_seen_ : int

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

        Examples
        --------
        >>> from tensorpanda import Tucker2
        >>> Tucker2((None, 4), solver="hals").get_params()["solver"]
        'hals'
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> Tucker2:
        """Change constructor parameters; unknown names raise ``ValueError``.

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
        single-pass fit: R_C = C with orthonormal appearances (or a Tucker model), a Gram
        solver and held statistics.

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
                "partial_fit needs a fit that reads the data once: rank R_C = C (None) with "
                "orthonormal appearances or model='tucker', and statistics that fit in memory. "
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
        """Cores of each sample, shape (N, R_C, R_S); see the class example."""
        return self._check_fitted().transform(data, self.batch_size)

    def fit_transform(self, data):
        """``fit(data).transform(data)``.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda import Tucker2
        >>> Z = np.random.default_rng(0).random((40, 5, 3, 3))
        >>> Tucker2((3, 2), random_state=0).fit_transform(Z).shape
        (40, 3, 2)
        """
        return self.fit(data).transform(data)

    def inverse_transform(self, cores):
        """Feature maps A G_i Pᵀ from cores, shape (N, C, *spatial); see the class
        example."""
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

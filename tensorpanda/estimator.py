"""The estimator: ``Tucker2``, keeping scikit-learn's protocol without depending on it.

Its parameters are those of [`tensorpanda.tucker2`][tensorpanda.tucker2], from the one table
`tensorpanda.params.PARAMETERS`; fitting goes through the same `fit` as the
function, so the two cannot drift apart. Results are stored in trailing-underscore
attributes.
"""

from __future__ import annotations

from dataclasses import replace

from .data import BatchSource, as_source
from .fitting import fit
from .gram import fit_gram
from .host import fit_on_numpy, runs_on_numpy
from .metrics import reconstruction_error
from .params import PARAMETERS, REQUIRED, Config, make_config, signature
from .problem import first_pass, held_if_it_fits, reads_data_once
from .result import Factorization


class Tucker2:
    r"""Semi-nonnegative Tucker-2 (PandA) as an estimator with scikit-learn's protocol.

    Fits appearances A (C×R_C) and non-negative parts P (S×R_S) to samples Z_i (C×S) by
    $\min_{A,\,P \ge 0} \sum_i \lVert Z_i - A A^\top Z_i P P^\top \rVert_F^2$
    (``model="panda"``), or the classic Tucker-2 with free cores (``model="tucker"``).

    Parameters
    ----------
    rank : (int or None, int)
        (R_C, R_S): number of appearances and of parts; ``R_C=None`` means all C channels.
    model, solver, init, appearances, tol, max_iter, inner_max_iter
        Keyword only: the parameters of [`tensorpanda.tucker2`][tensorpanda.tucker2], with the same
        names, defaults and meaning.
    statistics, batch_size, basis_samples, learning_rate, random_state, callback
        Keyword only, as in [`tensorpanda.tucker2`][tensorpanda.tucker2] (``batch_size`` is also
        used by [`transform`][tensorpanda.Tucker2.transform] and
        [`score`][tensorpanda.Tucker2.score]). All are stored as given and validated when fitting;
        [`get_params`][tensorpanda.Tucker2.get_params] and
        [`set_params`][tensorpanda.Tucker2.set_params] read and change them.

    Attributes
    ----------
    factorization_ : Factorization
        The fitted factors, objective history and ``info``.
    A_ : tensor of shape (C, R_C)
        The appearances, one per column (``factorization_.A``).
    P_ : tensor of shape (S, R_S)
        The parts as a matrix, P ≥ 0, one per column (``factorization_.P``).
    parts_ : tensor of shape (R_S, H, W)
        The parts as maps (``factorization_.parts``).
    n_iter_ : int
        Iterations run by the last fit.
    history_ : list of float
        Σ_i ‖Z_i − Ẑ_i‖² after each iteration.
    reconstruction_err_ : float
        ‖Z − Ẑ‖_F over the fitted data.
    n_samples_seen_ : int
        Samples the factors were fitted on (summed over
        [`partial_fit`][tensorpanda.Tucker2.partial_fit] calls).
    n_features_in_ : int
        C·S, the values per sample.
    n_channels_ : int
        C, the channels per sample.
    spatial_shape_ : tuple of int
        (H, W) of the samples (or (S,) for data given as (N, C, S)).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda import Tucker2
    >>> Z = np.random.default_rng(0).standard_normal((60, 5, 4, 4))
    >>> est = Tucker2(rank=(None, 3), random_state=0).fit(Z)
    >>> est.P_.shape, est.parts_.shape       # P as a matrix, the parts as maps
    ((16, 3), (3, 4, 4))
    >>> est.transform(Z).shape               # one 5×3 core per sample
    (60, 5, 3)
    >>> est.inverse_transform(est.transform(Z)).shape
    (60, 5, 4, 4)
    >>> 0 < est.score(Z) < 1                  # the share of Σ‖Z_i‖² explained
    True
    """

    def __init__(self, rank, **params):
        unknown = sorted(set(params) - set(PARAMETERS))
        if unknown:
            raise TypeError(
                f"Tucker2() got unknown parameter(s) {', '.join(map(repr, unknown))}; its "
                f"parameters are {', '.join(PARAMETERS)}"
            )
        self.rank = rank
        for name, default in PARAMETERS.items():
            if default is not REQUIRED:
                setattr(self, name, params.get(name, default))

    # -- parameters ---------------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        """The constructor's parameters, by name.

        Parameters
        ----------
        deep : bool, default True
            Accepted for scikit-learn; a Tucker2 holds no nested estimators, so it changes
            nothing.

        Returns
        -------
        dict
            ``{name: value}`` for every constructor parameter, in signature order.

        Examples
        --------
        >>> from tensorpanda import Tucker2
        >>> Tucker2((None, 4), solver="mu").get_params()["solver"]
        'mu'
        """
        return {name: getattr(self, name) for name in PARAMETERS}

    def set_params(self, **params) -> Tucker2:
        """Change constructor parameters (checked when fitting; fitted attributes stay until
        the next [`fit`][tensorpanda.Tucker2.fit]).

        Parameters
        ----------
        **params
            New values by name, e.g. ``tol=1e-8``.

        Returns
        -------
        Tucker2
            The estimator itself.

        Raises
        ------
        ValueError
            If a name is not a constructor parameter (then no parameter is changed).

        Examples
        --------
        >>> from tensorpanda import Tucker2
        >>> Tucker2((None, 4)).set_params(tol=1e-8).tol
        1e-08
        """
        unknown = sorted(set(params) - set(PARAMETERS))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {unknown} for Tucker2; valid parameters are "
                f"{list(PARAMETERS)}"
            )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        # only the parameters that differ from their defaults, as scikit-learn prints them
        changed = [f"rank={self.rank!r}"] + [
            f"{name}={value!r}" for name, value in self.get_params().items()
            if name != "rank" and value is not PARAMETERS[name] and value != PARAMETERS[name]
        ]
        return f"Tucker2({', '.join(changed)})"

    def __sklearn_tags__(self):
        # only scikit-learn calls this, so importing it here adds no dependency
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(),
            input_tags=InputTags(two_d_array=False, three_d_array=True),
        )

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "factorization_")

    def _config(self) -> Config:
        return make_config(self.rank, {n: v for n, v in self.get_params().items()
                                       if n != "rank"}, "Tucker2")

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X, y=None) -> Tucker2:
        """Fit the factors to ``X``; statistics of earlier
        [`partial_fit`][tensorpanda.Tucker2.partial_fit] calls are discarded.

        Parameters
        ----------
        X : array (N, C, S) or (N, C, H, W), callable or iterable of batches
            The feature maps, in any form [`tensorpanda.tucker2`][tensorpanda.tucker2] accepts.
        y : None
            Ignored (scikit-learn's protocol).

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
            If ``X`` is not an array, a callable or an iterable of batches, or
            ``callback`` or ``random_state`` has the wrong type.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda import Tucker2
        >>> Z = np.random.default_rng(0).random((40, 5, 3, 3))
        >>> Tucker2((None, 2), random_state=0).fit(Z).P_.shape
        (9, 2)
        """
        config = self._config()
        self._set(fit(as_source(X, config.batch_size), config))
        self._stats = None  # a later partial_fit starts afresh
        return self

    def partial_fit(self, X, y=None) -> Tucker2:
        """Add one batch to the statistics and re-solve.

        The statistics are sums over samples, so ``partial_fit`` over all batches gives the
        factors ``fit`` gives on their concatenation read in the same batches. Needs a fit
        that reads the data once: a Gram solver, R_C = C with orthonormal appearances
        (model "panda" or "tucker"), and statistics held in memory. A first call (or one
        after [`fit`][tensorpanda.Tucker2.fit]) starts afresh.

        Parameters
        ----------
        X : array of shape (N_b, C, S) or (N_b, C, H, W)
            One batch, with the per-sample shape of earlier batches.
        y : None
            Ignored (scikit-learn's protocol).

        Returns
        -------
        Tucker2
            The estimator itself, refitted on all batches seen so far.

        Raises
        ------
        ValueError
            If the solver is not a Gram solver ("mu", "hals", "pgd"), if the fit would read
            the data more than once (e.g. R_C < C with PandA, or streamed statistics), if
            the batch's per-sample shape differs from earlier batches, or if a parameter is
            invalid.

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
        source = _one_batch(X)
        config = held_if_it_fits(config, source.n_channels, source.n_positions, source.context)
        if not reads_data_once(config, source.n_channels, source.n_positions, source.context):
            raise ValueError(
                "partial_fit needs a fit that reads the data once: rank R_C = C (None), with "
                "orthonormal appearances (model 'panda' or 'tucker'), and statistics that fit "
                "in memory. For R_C < C call fit() on a re-iterable source (a list of batches "
                "or a callable)"
            )
        total = getattr(self, "_stats", None)
        # the channel scatter behind A covers the first basis_samples samples, as in fit
        seen = total["head_samples"] if total else 0
        head = replace(config, basis_samples=max(config.basis_samples - seen, 0))
        def run(source, config):
            self._stats = _accumulate(total, first_pass(source, head), source)
            return fit_gram(source, config, self._stats)

        # as fit() does: on a CPU the statistics and the fit are computed on numpy
        self._set(fit_on_numpy(source, config, run) if runs_on_numpy(source)
                  else run(source, config))
        return self

    def _set(self, result: Factorization) -> None:
        self.factorization_ = result
        self.A_ = result.A
        self.P_ = result.P
        self.parts_ = result.parts
        self.n_iter_ = result.info["n_iter"]
        self.history_ = result.history
        self.n_samples_seen_ = result.info["n_samples"]
        self.n_channels_ = result.n_channels
        self.spatial_shape_ = tuple(result.spatial_shape)
        self.n_features_in_ = result.n_channels * result.n_positions
        self.reconstruction_err_ = max(result.data_objective, 0.0) ** 0.5

    def _fitted(self) -> Factorization:
        if not hasattr(self, "factorization_"):
            raise ValueError("this Tucker2 is not fitted yet: call fit() or partial_fit() first")
        return self.factorization_

    # -- cores --------------------------------------------------------------------------------
    def transform(self, X):
        """Cores of each sample, shape (N, R_C, R_S): Aᵀ Z_i P for the tied model,
        A⁺ Z_i (P⁺)ᵀ for the free one.

        Parameters
        ----------
        X : array (N, C, S) or (N, C, H, W), or any source `tensorpanda.tucker2` accepts
            The samples; C and S must match the fitted data. Read in batches of
            ``batch_size``.

        Returns
        -------
        tensor of shape (N, R_C, R_S)
            One core per sample, on the backend of the fitted factors.

        Raises
        ------
        ValueError
            If the estimator is not fitted yet, or the data's channels or positions do not
            match the fitted factors.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda import Tucker2
        >>> Z = np.random.default_rng(0).random((40, 5, 3, 3))
        >>> Tucker2((4, 2), random_state=0).fit(Z).transform(Z[:3]).shape
        (3, 4, 2)
        """
        return self._fitted().transform(X, self.batch_size)

    def fit_transform(self, X, y=None):
        """``fit(X).transform(X)``.

        Parameters
        ----------
        X : array (N, C, S) or (N, C, H, W), callable or iterable of batches
            The feature maps; read again for the cores, so a one-shot iterator is refused.
        y : None
            Ignored (scikit-learn's protocol).

        Returns
        -------
        tensor of shape (N, R_C, R_S)
            The cores of the fitted data.

        Raises
        ------
        ValueError
            As [`fit`][tensorpanda.Tucker2.fit], and for a one-shot iterator (it cannot be read
            twice).
        TypeError
            As [`fit`][tensorpanda.Tucker2.fit].

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda import Tucker2
        >>> Z = np.random.default_rng(0).random((40, 5, 3, 3))
        >>> Tucker2((3, 2), random_state=0).fit_transform(Z).shape
        (40, 3, 2)
        """
        source = as_source(X, self.batch_size)
        if not source.reiterable:
            raise ValueError(
                "fit_transform reads the data twice (the fit, then the cores), but a one-shot "
                "iterator can be read once: pass an array, a list of batches or a callable "
                "that returns a fresh iterator"
            )
        return self.fit(source).transform(source)

    def inverse_transform(self, cores):
        """Feature maps A G_i Pᵀ from cores G_i, shape (N, C, *spatial).

        Parameters
        ----------
        cores : tensor of shape (N, R_C, R_S)
            Cores, e.g. from [`transform`][tensorpanda.Tucker2.transform] (possibly edited).

        Returns
        -------
        tensor of shape (N, C, *spatial)
            The feature maps, on the backend of the fitted factors.

        Raises
        ------
        ValueError
            If the estimator is not fitted yet, or ``cores`` is not (N, R_C, R_S).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda import Tucker2
        >>> Z = np.random.default_rng(0).random((40, 5, 3, 3))
        >>> est = Tucker2((5, 9), model="tucker", random_state=0).fit(Z)  # full ranks
        >>> bool(np.allclose(est.inverse_transform(est.transform(Z)), Z))
        True
        """
        return self._fitted().inverse_transform(cores)

    def score(self, X, y=None) -> float:
        """The share of the data's energy the factors explain, 1 − Σ‖Z_i − Ẑ_i‖² / Σ‖Z_i‖²
        (higher is better; 1 is an exact fit). This is what ``GridSearchCV`` maximises.

        Parameters
        ----------
        X : array (N, C, S) or (N, C, H, W), or any source `tensorpanda.tucker2` accepts
            The samples, e.g. held-out ones; C and S must match the fitted data.
        y : None
            Ignored (scikit-learn's protocol).

        Returns
        -------
        float
            The explained share, at most 1 (it can be negative for a very poor fit).

        Raises
        ------
        ValueError
            If the estimator is not fitted yet, or the data does not match the factors.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda import Tucker2
        >>> Z = np.random.default_rng(0).random((40, 5, 3, 3))
        >>> small, large = (Tucker2((5, k), random_state=0).fit(Z[:30]) for k in (2, 6))
        >>> bool(small.score(Z[30:]) < large.score(Z[30:]) <= 1)
        True
        """
        relative = reconstruction_error(self._fitted(), as_source(X, self.batch_size))
        return 1.0 - relative**2


# The parameters are declared once, in tensorpanda.params.PARAMETERS; this gives the
# constructor the explicit signature that help(), IDEs and scikit-learn's clone read.
Tucker2.__init__.__signature__ = signature("self")


def _one_batch(X) -> BatchSource:
    """A source that reads the array ``X`` as one batch (so statistics add up as in fit)."""
    source = BatchSource(X)
    if source.kind != "array":
        raise TypeError(
            f"partial_fit takes one batch as an array (N_b, C, S) or (N_b, C, H, W), not "
            f"{type(X).__name__}"
        )
    return BatchSource(X, batch_size=source.n_samples)


def _accumulate(total: dict | None, increment: dict, source: BatchSource) -> dict:
    """The running totals of partial_fit, checking every batch has the same layout."""
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

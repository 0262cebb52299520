"""The two objectives, in terms of the statistics each factor step needs.

``panda`` — PandA's tied core (Oldfield et al., ICLR 2023)::

    f(A, P) = Σ_i ‖Z_i − A Aᵀ Z_i P Pᵀ‖²_F,   P ≥ 0
            = Σ‖Z_i‖² − 2 tr(Pᵀ K1 P) + tr(Pᵀ K2 P PᵀP)       (K1 = Σ Z_iᵀ A Aᵀ Z_i,
                                                            K2 = Σ Z_iᵀ A AᵀA Aᵀ Z_i)
            = Σ‖Z_i‖² − 2 tr(Aᵀ X1 A) + tr(Aᵀ X2 A AᵀA)       (X1 = Σ Z_i P Pᵀ Z_iᵀ,
                                                            X2 = Σ Z_i P PᵀP Pᵀ Z_iᵀ)

  With an orthonormal A, K1 = K2 = K_S(A) and f = Σ‖Z_i‖² − tr(Aᵀ K_C(P) A) with
  K_C(P) = Σ (Z_i P)(2I − PᵀP)(Z_i P)ᵀ, so the A-step is an eigendecomposition.

``tucker`` — Tucker-2 with free least-squares cores G_i::

    f(A, P) = Σ_i min_{G_i} ‖Z_i − A G_i Pᵀ‖²_F = Σ‖Z_i‖² − tr(K_S(Q_A) Π_P)
            = Σ‖Z_i‖² − tr(K_C(Q_P) Π_A),

  with Q_X an orthonormal basis and Π_X the projector of X's column space; P ≥ 0, and A
  either orthonormal or non-negative (fully non-negative Tucker-2).

Each model turns the current factors into (a) the per-batch terms of the statistics the
other factor's step needs, and (b) that step.
"""

from __future__ import annotations

import tensorly as tl

from . import _backend as B
from . import updates
from .operators import MatrixOperator, StreamedOperator
from .statistics import channel_gram_terms, spatial_gram_terms

APPEARANCES = {"panda": ("orthonormal", "free"), "tucker": ("orthonormal", "nonnegative")}


class PandAModel:
    """Tied core: Z_i ≈ A (Aᵀ Z_i P) Pᵀ.

    The objective f(A, P) = Σ_i ‖Z_i − A Aᵀ Z_i P Pᵀ‖²_F with P ≥ 0. The A-step is exact
    (the top eigenvectors of K_C(P)) for an orthonormal A, and runs :func:`tied_steps
    <tensorpanda.updates.tied_steps>` for a free A; the P-step always runs ``tied_steps``.

    Parameters
    ----------
    appearances : str
        ``"orthonormal"`` (AᵀA = I) or ``"free"`` (any A).
    rule : str
        The update rule of the iterative steps: ``"mu"``, ``"hals"`` or ``"pgd"``.

    Attributes
    ----------
    name : str
        ``"panda"``.
    appearances : str
        The ``appearances`` given.
    rule : str
        The ``rule`` given.

    Examples
    --------
    >>> from tensorpanda.models import PandAModel
    >>> model = PandAModel("free", "hals")
    >>> model.name, model.appearances, model.rule, model.free
    ('panda', 'free', 'hals', True)
    """

    name = "panda"

    def __init__(self, appearances: str, rule: str):
        self.appearances, self.rule = appearances, rule

    @property
    def free(self) -> bool:
        """Whether A is free (``appearances="free"``) rather than orthonormal.

        Examples
        --------
        >>> from tensorpanda.models import PandAModel
        >>> PandAModel("orthonormal", "mu").free
        False
        """
        return self.appearances == "free"

    def appearance_terms(self, P):
        """The per-batch terms of the statistics the A-step needs, for a fixed P.

        For an orthonormal A the one statistic K_C(P) = Σ_i (Z_i P)(2I − PᵀP)(Z_i P)ᵀ; for a
        free A the pair X1 = Σ_i Z_i P Pᵀ Z_iᵀ and X2 = Σ_i Z_i P PᵀP Pᵀ Z_iᵀ.

        Parameters
        ----------
        P : tensor
            The parts, S×R_S, non-negative.

        Returns
        -------
        callable
            ``terms(Z) -> dict`` for a batch Z of shape (B, C, S), to be summed by
            :func:`tensorpanda.statistics.sweep`: key ``"K"`` (K_C(P), or X1 for a free A),
            ``"K2"`` (X2, free A only) and ``"sq_norm"`` (Σ‖Z_i‖²).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.models import PandAModel
        >>> rng = np.random.default_rng(0)
        >>> Z = rng.standard_normal((10, 4, 6)); P = np.abs(rng.standard_normal((6, 2)))
        >>> out = PandAModel("orthonormal", "hals").appearance_terms(P)(Z)
        >>> sorted(out), out["K"].shape
        (['K', 'sq_norm'], (4, 4))
        >>> W = Z @ P                                           # Z_i P for every i
        >>> np.allclose(out["K"], np.einsum("ncr,rq,ndq->cd", W, 2 * np.eye(2) - P.T @ P, W))
        True
        """
        PtP = tl.dot(tl.transpose(P), P)
        if self.free:
            return channel_gram_terms(P, None, second=PtP)  # X1, X2
        eye = tl.eye(tl.shape(P)[1], **B.context_of(P))
        return channel_gram_terms(P, 2 * eye - PtP)  # K_C(P)

    def appearance_step(self, stats, A, const, max_steps, tol):
        """The A-step: A minimising f(A, P) for the P the statistics were taken at.

        For an orthonormal A this is exact (:func:`~tensorpanda.updates.eigen_step` on
        K_C(P)); for a free A it is up to ``max_steps`` gradient steps with exact line
        search on the quartic (:func:`~tensorpanda.updates.tied_steps`), which never
        increase f.

        Parameters
        ----------
        stats : dict
            The totals of :meth:`appearance_terms` over the data: ``"K"`` (and ``"K2"``
            for a free A).
        A : tensor
            The current appearances, C×R_C (the start of the free A-step; only its number
            of columns is used for an orthonormal A).
        const : float
            Σ‖Z_i‖², the constant term of f.
        max_steps : int
            Most updates of a free A.
        tol : float
            A free A stops when an update lowers f by at most ``tol`` (absolute).

        Returns
        -------
        tensorpanda.updates.Step
            The new A (``Step.X``) and f(A, P) there (``Step.objective``).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.models import make_model
        >>> from tensorpanda.data import as_source
        >>> from tensorpanda.statistics import sweep
        >>> rng = np.random.default_rng(0)
        >>> Z = rng.standard_normal((10, 4, 6)); P = np.abs(rng.standard_normal((6, 2)))
        >>> A = np.linalg.qr(rng.standard_normal((4, 2)))[0]
        >>> f = lambda A: float(((Z - A @ A.T @ Z @ P @ P.T) ** 2).sum())   # PandA's f(A, P)
        >>> model = make_model("panda", "free", "hals")
        >>> stats = sweep(as_source(Z), model.appearance_terms(P))
        >>> step = model.appearance_step(stats, A, float((Z ** 2).sum()), 5, 0.0)
        >>> bool(step.objective <= f(A)), bool(np.isclose(step.objective, f(step.X)))
        (True, True)
        """
        if self.free:
            op = MatrixOperator(stats["K"], stats["K2"])
            return updates.tied_steps(op, A, self.rule, const, max_steps, tol, nonneg=False)
        return updates.eigen_step(stats["K"], tl.shape(A)[1], const)

    def parts_operator(self, source, A, streamed: bool, sweep):
        """The statistics the P-step needs for a fixed A, as an operator.

        K1 = K_S(A) = Σ_i Z_iᵀ A Aᵀ Z_i and, for a free A, K2 = Σ_i Z_iᵀ A AᵀA Aᵀ Z_i (for
        an orthonormal A, K2 = K1). Held statistics cost one pass over the data now;
        streamed ones one pass at each application.

        Parameters
        ----------
        source : tensorpanda.data.BatchSource
            The data.
        A : tensor
            The appearances, C×R_C.
        streamed : bool
            True to apply the statistics by a pass over the data at each product
            (S² too large to hold), False to form the S×S matrices now.
        sweep : callable
            The pass over the data, ``sweep(source, terms) -> dict`` (normally
            :func:`tensorpanda.statistics.sweep`).

        Returns
        -------
        MatrixOperator or StreamedOperator
            An operator whose ``apply(X)`` returns ``(K1 X, K2 X)``.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.models import make_model
        >>> from tensorpanda.data import as_source
        >>> from tensorpanda.statistics import sweep
        >>> rng = np.random.default_rng(0)
        >>> Z = rng.standard_normal((10, 4, 6)); P = np.abs(rng.standard_normal((6, 2)))
        >>> A = np.linalg.qr(rng.standard_normal((4, 2)))[0]
        >>> model, source = make_model("panda", "orthonormal", "hals"), as_source(Z)
        >>> held = model.parts_operator(source, A, False, sweep)
        >>> streamed = model.parts_operator(source, A, True, sweep)
        >>> type(held).__name__, held.K1.shape, type(streamed).__name__
        ('MatrixOperator', (6, 6), 'StreamedOperator')
        >>> np.allclose(held.apply(P)[0], streamed.apply(P)[0])   # the same K_S(A) P
        True
        """
        AtA = tl.dot(tl.transpose(A), A) if self.free else None
        if streamed:
            return StreamedOperator(source, A, AtA)
        stats = sweep(source, spatial_gram_terms(A, AtA))
        return MatrixOperator(stats["K"], stats.get("K2"))

    def parts_step(self, op, P, const, max_steps, tol):
        """The P-step: up to ``max_steps`` updates of P ≥ 0 by :attr:`rule` on the quartic.

        Each update ends with an exact line search, so f(A, P) never increases (see
        :func:`~tensorpanda.updates.tied_steps`).

        Parameters
        ----------
        op : MatrixOperator or StreamedOperator
            The statistics from :meth:`parts_operator`.
        P : tensor
            The current parts, S×R_S, non-negative.
        const : float
            Σ‖Z_i‖², the constant term of f.
        max_steps : int
            Most updates.
        tol : float
            Stop when an update lowers f by at most ``tol`` (absolute).

        Returns
        -------
        tensorpanda.updates.Step
            The new P (``Step.X``, non-negative), f(A, P) there and the number of updates.

        Raises
        ------
        ValueError
            If :attr:`rule` is not one of ``"mu"``, ``"hals"``, ``"pgd"``.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.models import make_model
        >>> from tensorpanda.data import as_source
        >>> from tensorpanda.statistics import sweep
        >>> rng = np.random.default_rng(0)
        >>> Z = rng.standard_normal((10, 4, 6)); P = np.abs(rng.standard_normal((6, 2)))
        >>> A = np.linalg.qr(rng.standard_normal((4, 2)))[0]
        >>> f = lambda P: float(((Z - A @ A.T @ Z @ P @ P.T) ** 2).sum())   # PandA's f(A, P)
        >>> model = make_model("panda", "orthonormal", "hals")
        >>> op = model.parts_operator(as_source(Z), A, False, sweep)
        >>> step = model.parts_step(op, P, float((Z ** 2).sum()), 10, 0.0)
        >>> bool((step.X >= 0).all()), bool(step.objective <= f(P))
        (True, True)
        >>> bool(np.isclose(step.objective, f(step.X)))
        True
        """
        return updates.tied_steps(op, P, self.rule, const, max_steps, tol)


class TuckerModel:
    """Free least-squares cores: Z_i ≈ A G_i Pᵀ.

    The objective f(A, P) = Σ_i min_{G_i} ‖Z_i − A G_i Pᵀ‖²_F = Σ‖Z_i‖² − tr(K_S(Q_A) Π_P)
    with P ≥ 0. An orthonormal A is found exactly (top eigenvectors); a non-negative A and
    P are updated by :func:`subspace_steps <tensorpanda.updates.subspace_steps>`.

    Parameters
    ----------
    appearances : str
        ``"orthonormal"`` (AᵀA = I) or ``"nonnegative"`` (A ≥ 0: fully non-negative
        Tucker-2).
    rule : str
        The update rule of the iterative steps: ``"mu"``, ``"hals"`` or ``"pgd"``.

    Attributes
    ----------
    name : str
        ``"tucker"``.
    appearances : str
        The ``appearances`` given.
    rule : str
        The ``rule`` given.

    Examples
    --------
    >>> from tensorpanda.models import TuckerModel
    >>> model = TuckerModel("nonnegative", "mu")
    >>> model.name, model.appearances, model.rule
    ('tucker', 'nonnegative', 'mu')
    """

    name = "tucker"

    def __init__(self, appearances: str, rule: str):
        self.appearances, self.rule = appearances, rule

    def _basis(self, A):
        return A if self.appearances == "orthonormal" else B.orthonormal_basis(A)

    def appearance_terms(self, P):
        """The per-batch terms of K_C(Q_P) = Σ_i Z_i Π_P Z_iᵀ, the statistic of the A-step.

        Parameters
        ----------
        P : tensor
            The parts, S×R_S (only their column space matters).

        Returns
        -------
        callable
            ``terms(Z) -> dict`` for a batch Z of shape (B, C, S), to be summed by
            :func:`tensorpanda.statistics.sweep`: keys ``"K"`` (C×C) and ``"sq_norm"``.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.models import TuckerModel
        >>> rng = np.random.default_rng(0)
        >>> Z = rng.standard_normal((10, 4, 6)); P = np.abs(rng.standard_normal((6, 2)))
        >>> out = TuckerModel("orthonormal", "hals").appearance_terms(P)(Z)
        >>> Pi = P @ np.linalg.pinv(P)                          # projector onto P's columns
        >>> out["K"].shape, np.allclose(out["K"], np.einsum("ncs,st,ndt->cd", Z, Pi, Z))
        ((4, 4), True)
        """
        return channel_gram_terms(B.orthonormal_basis(P))  # Σ Z_i Π_P Z_iᵀ

    def appearance_step(self, stats, A, const, max_steps, tol):
        """The A-step: A minimising f(A, P) = Σ‖Z_i‖² − tr(K_C(Q_P) Π_A) for the fixed P.

        An orthonormal A is exact (:func:`~tensorpanda.updates.eigen_step`); a
        non-negative A takes up to ``max_steps`` non-negative least-squares updates
        (:func:`~tensorpanda.updates.subspace_steps`), which never increase f.

        Parameters
        ----------
        stats : dict
            The totals of :meth:`appearance_terms` over the data (key ``"K"``).
        A : tensor
            The current appearances, C×R_C (the start of the non-negative A-step; only its
            number of columns is used for an orthonormal A).
        const : float
            Σ‖Z_i‖², the constant term of f.
        max_steps : int
            Most updates of a non-negative A.
        tol : float
            A non-negative A stops when an update lowers f by at most ``tol`` (absolute).

        Returns
        -------
        tensorpanda.updates.Step
            The new A (``Step.X``) and f(A, P) there (``Step.objective``).

        Raises
        ------
        ValueError
            For a non-negative A, if :attr:`rule` is not one of ``"mu"``, ``"hals"``,
            ``"pgd"``.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.models import make_model
        >>> from tensorpanda.data import as_source
        >>> from tensorpanda.statistics import sweep
        >>> rng = np.random.default_rng(0)
        >>> Z = rng.standard_normal((10, 4, 6)); P = np.abs(rng.standard_normal((6, 2)))
        >>> A = np.abs(rng.standard_normal((4, 2)))
        >>> proj = lambda X: X @ np.linalg.pinv(X)
        >>> f = lambda A: float(((Z - proj(A) @ Z @ proj(P)) ** 2).sum())   # Tucker-2 f(A, P)
        >>> model = make_model("tucker", "nonnegative", "mu")
        >>> stats = sweep(as_source(Z), model.appearance_terms(P))
        >>> step = model.appearance_step(stats, A, float((Z ** 2).sum()), 5, 0.0)
        >>> bool((step.X >= 0).all()), bool(step.objective <= f(A))
        (True, True)
        >>> bool(np.isclose(step.objective, f(step.X)))
        True
        """
        if self.appearances == "orthonormal":
            return updates.eigen_step(stats["K"], tl.shape(A)[1], const)
        op = MatrixOperator(stats["K"])
        return updates.subspace_steps(op, A, self.rule, const, max_steps, tol)

    def parts_operator(self, source, A, streamed: bool, sweep):
        """K_S(Q_A) = Σ_i Z_iᵀ Q_A Q_Aᵀ Z_i, the statistic of the P-step, as an operator.

        Q_A is an orthonormal basis of A's columns (A itself when A is orthonormal). Held
        statistics cost one pass over the data now; streamed ones one pass at each
        application.

        Parameters
        ----------
        source : tensorpanda.data.BatchSource
            The data.
        A : tensor
            The appearances, C×R_C.
        streamed : bool
            True to apply K_S by a pass over the data at each product (S² too large to
            hold), False to form the S×S matrix now.
        sweep : callable
            The pass over the data, ``sweep(source, terms) -> dict`` (normally
            :func:`tensorpanda.statistics.sweep`).

        Returns
        -------
        MatrixOperator or StreamedOperator
            An operator whose ``apply(X)`` returns ``(K X, K X)``.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.models import make_model
        >>> from tensorpanda.data import as_source
        >>> from tensorpanda.statistics import sweep
        >>> rng = np.random.default_rng(0)
        >>> Z = rng.standard_normal((10, 4, 6)); P = np.abs(rng.standard_normal((6, 2)))
        >>> A = np.abs(rng.standard_normal((4, 2)))             # not orthonormal
        >>> model, source = make_model("tucker", "nonnegative", "hals"), as_source(Z)
        >>> held = model.parts_operator(source, A, False, sweep)
        >>> Pi_A = A @ np.linalg.pinv(A)
        >>> held.K1.shape, np.allclose(held.K1, np.einsum("ncs,cd,ndt->st", Z, Pi_A, Z))
        ((6, 6), True)
        >>> streamed = model.parts_operator(source, A, True, sweep)
        >>> np.allclose(held.apply(P)[0], streamed.apply(P)[0])
        True
        """
        Q = self._basis(A)
        if streamed:
            return StreamedOperator(source, Q)
        return MatrixOperator(sweep(source, spatial_gram_terms(Q))["K"])

    def parts_step(self, op, P, const, max_steps, tol):
        """The P-step: up to ``max_steps`` non-negative least-squares updates of P.

        Each update fixes the cores, updates P ≥ 0 by :attr:`rule` and re-fits the cores, so
        f(A, P) never increases (see :func:`~tensorpanda.updates.subspace_steps`).

        Parameters
        ----------
        op : MatrixOperator or StreamedOperator
            The statistic from :meth:`parts_operator`.
        P : tensor
            The current parts, S×R_S, non-negative.
        const : float
            Σ‖Z_i‖², the constant term of f.
        max_steps : int
            Most updates.
        tol : float
            Stop when an update lowers f by at most ``tol`` (absolute).

        Returns
        -------
        tensorpanda.updates.Step
            The new P (``Step.X``, non-negative, columns of unit norm), f(A, P) there and
            the number of updates.

        Raises
        ------
        ValueError
            If :attr:`rule` is not one of ``"mu"``, ``"hals"``, ``"pgd"``.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.models import make_model
        >>> from tensorpanda.data import as_source
        >>> from tensorpanda.statistics import sweep
        >>> rng = np.random.default_rng(0)
        >>> Z = rng.standard_normal((10, 4, 6)); P = np.abs(rng.standard_normal((6, 2)))
        >>> A = np.linalg.qr(rng.standard_normal((4, 2)))[0]
        >>> proj = lambda X: X @ np.linalg.pinv(X)
        >>> f = lambda P: float(((Z - proj(A) @ Z @ proj(P)) ** 2).sum())   # Tucker-2 f(A, P)
        >>> model = make_model("tucker", "orthonormal", "hals")
        >>> op = model.parts_operator(as_source(Z), A, False, sweep)
        >>> step = model.parts_step(op, P, float((Z ** 2).sum()), 10, 0.0)
        >>> bool((step.X >= 0).all()), bool(step.objective <= f(P))
        (True, True)
        >>> bool(np.isclose(step.objective, f(step.X)))
        True
        """
        return updates.subspace_steps(op, P, self.rule, const, max_steps, tol)


def make_model(name: str, appearances: str, rule: str):
    """The model object for ``model=name``: :class:`PandAModel` or :class:`TuckerModel`.

    ``appearances`` and ``rule`` are passed on unchecked (the solver validates them
    against :data:`APPEARANCES` and :data:`tensorpanda.updates.RULES`).

    Parameters
    ----------
    name : str
        ``"panda"`` (tied core) or ``"tucker"`` (free least-squares cores).
    appearances : str
        The constraint on A: ``"orthonormal"``, ``"free"`` (panda) or ``"nonnegative"``
        (tucker).
    rule : str
        The update rule: ``"mu"``, ``"hals"`` or ``"pgd"``.

    Returns
    -------
    PandAModel or TuckerModel
        The model, holding ``appearances`` and ``rule``.

    Raises
    ------
    ValueError
        If ``name`` is neither ``"panda"`` nor ``"tucker"``.

    Examples
    --------
    >>> from tensorpanda.models import make_model
    >>> model = make_model("tucker", "nonnegative", "mu")
    >>> type(model).__name__, model.appearances, model.rule
    ('TuckerModel', 'nonnegative', 'mu')
    """
    models = {"panda": PandAModel, "tucker": TuckerModel}
    if name not in models:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(map(repr, models))}")
    return models[name](appearances, rule)

"""Warnings and errors of tensorpanda."""


class ConvergenceWarning(UserWarning):
    """A solver stopped at ``max_iter`` before meeting its tolerance, or a fit ended with a
    dead part (an all-zero column of P).

    Examples
    --------
    >>> import warnings, numpy as np, tensorpanda as tp
    >>> Z = np.random.default_rng(0).random((30, 4, 3, 3))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     fit = tp.tucker2(Z, (None, 2), tol=0, max_iter=2)
    >>> caught[0].category.__name__, fit.info["converged"]
    ('ConvergenceWarning', False)
    """


class DivergenceError(FloatingPointError, ValueError):
    """The factors or the objective became non-finite, or the parts collapsed to P = 0,
    during a fit.

    A subclass of ``ValueError`` too: the cause is almost always an argument (a learning rate
    too large for the ``paper`` or ``adam`` solvers, or data whose squares overflow float32).

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> Z = np.random.default_rng(0).random((30, 4, 3, 3))
    >>> try:
    ...     tp.tucker2(Z, (4, 2), solver="paper", appearances="free", learning_rate=100.0)
    ... except tp.DivergenceError as error:
    ...     print(error)
    solver='paper' clamped every entry of P to zero by step 30 (learning_rate=100 is too large; ...
    """

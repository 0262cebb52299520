"""Warnings and errors of tensorpanda."""


class ConvergenceWarning(UserWarning):
    """A solver stopped at ``max_iter`` before meeting its tolerance."""


class DivergenceError(FloatingPointError, ValueError):
    """The factors or the objective became non-finite during a fit.

    A subclass of ``ValueError`` too: the cause is almost always an argument (a learning rate
    too large for the ``paper`` or ``adam`` solvers, or data whose squares overflow float32).
    """

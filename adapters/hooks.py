"""Read or replace the output of one named module during a forward pass.

A [`Trace`][adapters.Trace] registers a single forward hook on the module found by its dotted name,
only while the ``with`` block runs. Because the generator's own ``forward`` stays
untouched, capture and re-injection are exact by construction: a hook that returns the
output unchanged leaves every later computation bit-for-bit the same, including skip
connections that a hand-written split of the network could drop.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from torch import nn

__all__ = ["Trace", "find_module", "forward_hooks", "assert_no_hooks"]

logger = logging.getLogger(__name__)

# Long module lists (BigGAN has hundreds of submodules) are cut in error messages.
_MAX_NAMES_SHOWN = 40


# A BaseException, so that an ``except Exception`` inside the generator's own code cannot
# swallow it and carry on computing.
class _StopForward(BaseException):
    """Raised by a hook to end the forward pass; caught by the [`Trace`][adapters.Trace] that raised
    it."""

    def __init__(self, trace: Trace) -> None:
        super().__init__(f"forward pass stopped after {trace.layer!r}")
        self.trace = trace


def _names_message(names: Iterable[str], wanted: str) -> str:
    """"valid names are: ..." for an error message, with close matches to ``wanted``."""
    names = list(names)
    close = difflib.get_close_matches(wanted, names, n=3)
    shown = ", ".join(repr(n) for n in names[:_MAX_NAMES_SHOWN])
    if len(names) > _MAX_NAMES_SHOWN:
        shown += f", ... ({len(names) - _MAX_NAMES_SHOWN} more)"
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"valid names are: {shown}.{hint}"


def find_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule of ``model`` with the dotted name ``name``; the error lists valid names."""
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        valid = [n for n in modules if n]
        raise ValueError(
            f"{type(model).__name__} has no submodule named {name!r}; "
            + _names_message(valid, name)
        )
    return modules[name]


class Trace:
    """Context manager that reads, replaces, or stops at one module's output.

    One forward hook is registered on entering the ``with`` block and removed on leaving
    it, also when the forward pass raises. If the module runs several times inside the
    block, the hook acts on every call (``output`` keeps the last one); with ``stop=True``
    the pass ends at the first call.

    Parameters
    ----------
    model : torch.nn.Module
        The network that will be run inside the ``with`` block.
    layer : str
        Dotted name of the module whose output to trace (see `find_module`).
    retain_output : bool, default False
        Keep the module's output (after ``edit_output``) as [`output`][adapters.Trace.output].
    clone : bool, default True
        With ``retain_output``, keep a detached clone rather than a detached view, so that
        later in-place operations (e.g. ``ReLU(inplace=True)``) cannot change it. A view is
        safe, and saves a copy, when ``stop=True``: nothing runs after the layer.
    edit_output : callable, optional
        ``edit_output(output) -> new_output``; the returned value replaces the module's
        output for the rest of the forward pass. Returning ``None`` raises ``TypeError``
        (a forgotten ``return`` must not silently leave the output unchanged).
    stop : bool, default False
        End the forward pass right after the module has run. The ``with`` block then exits
        normally; code after the forward call inside the block does not run.

    Attributes
    ----------
    output : object
        The retained output (only with ``retain_output=True``, after the module ran).
    calls : int
        How many times the module ran inside the block.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from tensorpanda.adapters import Trace
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
    >>> with Trace(net, "0", edit_output=lambda out: out + 1.0, retain_output=True) as t:
    ...     _ = net(torch.zeros(1, 2))
    >>> bool(torch.equal(t.output, net[0].bias[None] + 1.0))
    True
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str,
        *,
        retain_output: bool = False,
        clone: bool = True,
        edit_output: Callable[[Any], Any] | None = None,
        stop: bool = False,
    ) -> None:
        if edit_output is not None and not callable(edit_output):
            raise TypeError(
                f"edit_output must be a callable output -> new output, got "
                f"{type(edit_output).__name__}"
            )
        # Look the module up now so that a wrong name fails before anything runs; the hook
        # itself is only registered in __enter__.
        self.module = find_module(model, layer)
        self.model = model
        self.layer = layer
        self.retain_output = retain_output
        self.clone = clone
        self.edit_output = edit_output
        self.stop = stop
        self.calls = 0
        self._output: Any = None
        self._handle: Any = None

    @property
    def output(self) -> Any:
        """The retained output of the last call of the module."""
        if not self.retain_output:
            raise AttributeError(
                f"Trace({self.layer!r}) keeps no output; pass retain_output=True"
            )
        if self.calls == 0:
            raise RuntimeError(
                f"module {self.layer!r} did not run inside the Trace, so there is no output"
            )
        return self._output

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> Any:
        """The forward hook: count, edit, retain, stop, in that order."""
        self.calls += 1
        if self.edit_output is not None:
            edited = self.edit_output(output)
            if edited is None:
                raise TypeError(
                    f"edit_output for layer {self.layer!r} returned None; it must return "
                    "the new output (return the output itself to leave it unchanged)"
                )
            output = edited
        if self.retain_output:
            self._output = _detach(output, clone=self.clone)
        if self.stop:
            raise _StopForward(self)
        # Returning the (possibly new) output makes torch use it downstream.
        return output

    def __enter__(self) -> Trace:
        if self._handle is not None:
            raise RuntimeError(f"Trace({self.layer!r}) is already active; it is not reentrant")
        self.calls = 0
        self._output = None
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.remove()
        if self.stop and self.calls == 0 and exc is None:
            logger.debug("Trace(%r, stop=True): the layer never ran", self.layer)
        # Swallow only our own stop signal: another Trace's passes through to its owner.
        return isinstance(exc, _StopForward) and exc.trace is self


def _detach(value: Any, *, clone: bool) -> Any:
    """Detach (and optionally clone) tensors, also inside tuples, lists and dicts."""
    if hasattr(value, "detach"):
        value = value.detach()
        return value.clone() if clone else value
    if isinstance(value, (tuple, list)):
        return type(value)(_detach(v, clone=clone) for v in value)
    if isinstance(value, dict):
        return {k: _detach(v, clone=clone) for k, v in value.items()}
    return value


def forward_hooks(model: nn.Module) -> dict[str, int]:
    """Count the forward hooks registered on each module of a tree.

    Forward *pre*-hooks are not counted: ``torch.nn.utils.spectral_norm`` installs them
    for good, and a [`Trace`][adapters.Trace] never does.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    dict of str to int
        Dotted module name (``""`` for ``model`` itself) to its number of forward hooks,
        only for modules that have at least one.

    Examples
    --------
    >>> from torch import nn
    >>> from tensorpanda.adapters import Trace, forward_hooks
    >>> net = nn.Sequential(nn.ReLU())
    >>> with Trace(net, "0"):
    ...     forward_hooks(net)
    {'0': 1}
    >>> forward_hooks(net)
    {}
    """
    counts = {}
    for name, module in model.named_modules(remove_duplicate=False):
        n = len(module._forward_hooks)
        if n:
            counts[name] = n
    return counts


def assert_no_hooks(model: nn.Module) -> None:
    """Raise ``AssertionError`` if any module of ``model`` still carries a forward hook.

    Parameters
    ----------
    model : torch.nn.Module

    Raises
    ------
    AssertionError
        If [`forward_hooks`][adapters.forward_hooks] finds a hook; the message names the modules.

    Examples
    --------
    >>> from torch import nn
    >>> from tensorpanda.adapters import Trace, assert_no_hooks
    >>> net = nn.Sequential(nn.ReLU())
    >>> with Trace(net, "0"):
    ...     pass
    >>> assert_no_hooks(net)                     # the Trace removed its hook on exit
    >>> handle = net[0].register_forward_hook(lambda module, inputs, output: None)
    >>> assert_no_hooks(net)
    Traceback (most recent call last):
        ...
    AssertionError: forward hooks left on modules: {'0': 1}
    >>> handle.remove()
    """
    left = forward_hooks(model)
    if left:
        raise AssertionError(f"forward hooks left on modules: {left}")

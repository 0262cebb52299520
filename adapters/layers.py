"""Which modules of a generator are feature layers: the layer table, probed by a dry run.

A feature layer is a module that runs exactly once per forward pass and returns a
``(B, C, H, W)`` floating tensor; anything else could not be captured and re-injected as
one array per sample.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

import torch
from torch import nn

from .hooks import Trace, _names_message, find_module

__all__ = ["check_layer_names", "probe_layers", "resolve_layer"]


def check_layer_names(
    generator: nn.Module, names: Sequence[str] | None, aliases: Mapping[str, str]
) -> None:
    """Fail at construction, with the valid names, on a layer or alias that does not exist."""
    for layer in names or ():
        find_module(generator, layer)
    for alias, layer in aliases.items():
        if names is not None and layer not in names:
            raise ValueError(f"alias {alias!r} points to {layer!r}, which is not a layer")


def probe_layers(
    generator: nn.Module, names: Sequence[str] | None, run: Callable[[], Any], label: str
) -> dict[str, tuple[int, int, int]]:
    """Feature layers, dotted name -> ``(C, H, W)`` in forward order, from one call of ``run``.

    ``names=None`` tries every submodule and keeps those that qualify; explicit names that
    do not qualify raise ``ValueError`` saying why.
    """
    explicit = names is not None
    names = list(names) if explicit else [n for n, _ in generator.named_modules() if n]
    order: list[str] = []
    outputs: dict[str, Any] = {}
    calls: dict[str, int] = dict.fromkeys(names, 0)

    def recorder(layer: str) -> Callable[[Any], Any]:
        def record(output: Any) -> Any:
            calls[layer] += 1
            if calls[layer] == 1:
                order.append(layer)
                outputs[layer] = output
            return output

        return record

    with torch.no_grad(), ExitStack() as stack:
        for layer in names:
            stack.enter_context(Trace(generator, layer, edit_output=recorder(layer)))
        run()

    table = {}
    for layer in order:
        problem = _why_not_a_feature_layer(outputs[layer], calls[layer])
        if problem is None:
            table[layer] = tuple(int(d) for d in outputs[layer].shape[1:])
        elif explicit:
            raise ValueError(f"{label}: layer {layer!r} cannot be a feature layer: {problem}")
    missing = [layer for layer in names if calls[layer] == 0]
    if explicit and missing:
        raise ValueError(f"{label}: layers {missing} never run in a forward pass")
    if not table:
        raise ValueError(f"{label}: no module returns a (B, C, H, W) feature map")
    return table


def _why_not_a_feature_layer(output: Any, calls: int) -> str | None:
    """What disqualifies a module's first output as a feature map, or ``None``."""
    if not (isinstance(output, torch.Tensor) and output.ndim == 4
            and output.is_floating_point()):
        kind = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        return f"its output is {kind}, not a (B, C, H, W) floating tensor"
    if calls != 1:
        return f"it runs {calls} times per forward pass, not once"
    return None


def resolve_layer(
    layer: str, layers: Mapping[str, Any], aliases: Mapping[str, str], label: str
) -> str:
    """``layer`` (a name or an alias) as a key of ``layers``; the error lists both kinds."""
    if not isinstance(layer, str):
        raise TypeError(f"{label}: a layer is named by a string (a name or an alias, see "
                        f".layers and .aliases), got {layer!r}")
    layer = aliases.get(layer, layer)
    if layer not in layers:
        valid = list(layers) + [f"{a} (= {n})" for a, n in aliases.items()]
        raise ValueError(f"{label} has no feature layer {layer!r}; " + _names_message(valid, layer))
    return layer

"""Adapters by name: built-ins, explicit registrations, and third-party entry points.

A package adds an adapter without touching tensorpanda by declaring an entry point in the
group ``tensorpanda.adapters``, e.g. in its ``pyproject.toml``::

    [project.entry-points."tensorpanda.adapters"]
    my-gan = "my_package.adapter:MyGANAdapter"

The entry point names a factory: any callable ``factory(**kwargs) -> Adapter``, often
the adapter class itself. Entry points are read when a name is first looked up, not at
import, and the factory's module is imported only when that adapter is loaded.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .base import Adapter

__all__ = ["ENTRY_POINT_GROUP", "load", "register", "available"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "tensorpanda.adapters"

Factory = Callable[..., Adapter]

# Built-ins are "module:attribute" strings so that importing tensorpanda.adapters imports
# no generator package and reads no weights.
_BUILTINS: dict[str, str] = {
    "dcgan-faces": "tensorpanda.adapters.dcgan:DCGANFaces",
    "biggan": "tensorpanda.adapters.biggan:BigGANAdapter",
    # checkpoint files of style-based generators and PGGAN (docs/generators.md)
    "stylegan2": "tensorpanda.adapters.style:StyleGAN2Adapter",
    "stylegan3": "tensorpanda.adapters.style:StyleGAN3Adapter",
    "stylegan": "tensorpanda.adapters.style:StyleGAN1Adapter",
    "pggan": "tensorpanda.adapters.style:PGGANAdapter",
}
_registered: dict[str, Factory | str] = {}


def register(name: str, factory: Factory | str, *, overwrite: bool = False) -> None:
    """Make ``load(name, **kwargs)`` call ``factory(**kwargs)``.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"stylegan2-ffhq"``.
    factory : callable or str
        ``factory(**kwargs) -> Adapter``, or a ``"module:attribute"`` string naming one
        (imported only when loaded).
    overwrite : bool, default False
        Replace an adapter registered under the same name (built-ins included).

    Raises
    ------
    ValueError
        If ``name`` is empty, or taken and ``overwrite`` is False.
    TypeError
        If ``factory`` is neither a callable nor a ``"module:attribute"`` string.

    Examples
    --------
    A factory by name, imported only when loaded (here the built-in DCGAN under a second
    name); ``overwrite=True`` makes a re-run replace the earlier registration:

    >>> from tensorpanda.adapters import available, load, register
    >>> register("faces", "tensorpanda.adapters.dcgan:DCGANFaces", overwrite=True)
    >>> "faces" in available()
    True
    >>> load("faces").latent_shape
    (100,)
    >>> register("dcgan-faces", lambda **kw: None)
    Traceback (most recent call last):
        ...
    ValueError: an adapter named 'dcgan-faces' is already registered; pass overwrite=True
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"adapter name must be a non-empty string, got {name!r}")
    if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
        raise TypeError(
            f"factory must be a callable or a 'module:attribute' string, got {factory!r}"
        )
    if not overwrite and (name in _registered or name in _BUILTINS):
        raise ValueError(f"an adapter named {name!r} is already registered; pass overwrite=True")
    _registered[name] = factory


def _entry_points() -> dict[str, EntryPoint]:
    """Installed entry points of the group, by name (the first of two with one name)."""
    # Read on every lookup (a few ms) rather than cached, so that a package installed
    # while the interpreter runs is found.
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            logger.warning("two entry points named %r in %s; using the first", ep.name,
                           ENTRY_POINT_GROUP)
            continue
        found[ep.name] = ep
    return found


def available() -> list[str]:
    """Names that [`load`][adapters.load] accepts, sorted.

    Returns
    -------
    list of str
        Built-ins, [`register`][adapters.register]-ed names and entry points of the group
        ``tensorpanda.adapters``.

    Examples
    --------
    >>> from tensorpanda.adapters import available
    >>> sorted(set(available()) & {"biggan", "dcgan-faces"})
    ['biggan', 'dcgan-faces']
    """
    return sorted(set(_BUILTINS) | set(_registered) | set(_entry_points()))


def _resolve(name: str) -> Factory | str | EntryPoint:
    """What ``name`` is registered as; the error lists the available names."""
    # Explicit registrations win over built-ins, which win over entry points.
    if name in _registered:
        return _registered[name]
    if name in _BUILTINS:
        return _BUILTINS[name]
    eps = _entry_points()
    if name in eps:
        return eps[name]
    raise ValueError(
        f"no adapter named {name!r}; available adapters: {', '.join(available())}. "
        f"Register one with register(name, factory) or an entry point in the group "
        f"{ENTRY_POINT_GROUP!r}"
    )


def _import_factory(spec: str) -> Factory:
    """The object a ``"module:attribute"`` string names, imported now."""
    module_name, _, attribute = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


def resolve_factory(name: str) -> Factory:
    """The factory registered as ``name``, imported (for callers that inspect its options)."""
    entry = _resolve(name)
    if isinstance(entry, EntryPoint):
        return entry.load()
    if isinstance(entry, str):
        return _import_factory(entry)
    return entry


def load(name: str, /, **kwargs: Any) -> Adapter:
    """Build the adapter registered as ``name``.

    Parameters
    ----------
    name : str
        One of [`available`][adapters.available]: ``"dcgan-faces"``, ``"biggan"``, ``"stylegan2"``,
        ``"stylegan3"``, ``"stylegan"``, ``"pggan"``, or a third party's.
    **kwargs
        Passed to the adapter's factory (e.g. ``device=``, ``weights=``,
        ``checkpoint=``; ``name`` is positional-only, so a factory may take a ``name=``
        keyword of its own).

    Returns
    -------
    Adapter

    Raises
    ------
    ValueError
        If no adapter has that name; the message lists the available ones.
    TypeError
        If the factory returns something that is not an [`Adapter`][adapters.Adapter].

    Examples
    --------
    >>> from tensorpanda.adapters import load
    >>> gan = load("dcgan-faces")
    >>> gan
    <DCGANFaces 'dcgan-faces' on cpu, torch.float32>
    >>> cfg = dict(output_dim=32, z_dim=16, class_embed_dim=16, channel_width=4,
    ...            num_classes=10, attention_layer_position=2,
    ...            layers=[(False, 16, 16), (True, 16, 8), (True, 8, 4), (False, 4, 2),
    ...                    (True, 2, 1)])
    >>> small = load("biggan", config=cfg, random_weights=True)
    >>> small.num_classes, small.latent_shape
    (10, (16,))
    >>> load("stylegan9")
    Traceback (most recent call last):
        ...
    ValueError: no adapter named 'stylegan9'; available adapters: ...
    """
    factory = resolve_factory(name)
    _check_options(name, factory, kwargs)
    adapter = factory(**kwargs)
    if not isinstance(adapter, Adapter):
        raise TypeError(
            f"the factory registered as {name!r} returned {type(adapter).__name__}, "
            "not a tensorpanda.adapters.Adapter"
        )
    return adapter


def _check_options(name: str, factory: Factory, kwargs: dict[str, Any]) -> None:
    """TypeError naming an option the factory does not take, and listing the ones it does
    (rather than Python's message about some private ``__init__``)."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to check against
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [n for n, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                                 p.KEYWORD_ONLY)]
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise TypeError(f"adapter {name!r} takes no option {unknown[0]!r}; its options: "
                        f"{', '.join(accepted) or 'none'}")

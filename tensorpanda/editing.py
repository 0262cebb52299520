"""Local edits from learned factors: paint an appearance into a part.

PandA edits sample i at layer l by running the generator from l onward on

    Z_i + Σ_e α_e a_{j_e} p̂_{K_e}ᵀ,

where a_j is column j of A (an appearance) and p̂_K is the sum of the parts K (columns of
P), min-max normalised to [0, 1] (a region). With the "background" appearance this is the
paper's context-aware object removal. This module builds the direction Δ; an adapter adds
it to the feature maps (``adapter.generate(latents, layer, edit=Δ)``). Nothing here knows
about generators.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import tensorly as tl

from . import _backend as B
from .result import Factorization


def _indices(name: str, value, bound: int) -> list[int]:
    if isinstance(value, numbers.Integral):
        values = [value]
    elif isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        values = list(value)
    else:
        raise TypeError(f"{name} must be integers (an index or a list of them), got {value!r}")
    if not values:
        raise ValueError(f"{name} is empty: give at least one index")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be integers, got {v!r}")
        if not 0 <= v < bound:
            raise ValueError(
                f"{name} index {v} is out of range: there are {bound} (0..{bound - 1})"
            )
    return [int(v) for v in values]


def part_map(factors: Factorization, parts) -> object:
    """The region p̂_K: the sum of the parts ``parts`` (an index or several), min-max
    normalised to [0, 1], shaped as the feature maps' spatial grid.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> fit = tp.tucker2(np.random.default_rng(0).random((40, 6, 4, 4)), (None, 3))
    >>> region = tp.part_map(fit, [0, 2])
    >>> region.shape, float(region.min()), float(region.max())
    ((4, 4), 0.0, 1.0)
    """
    columns = _indices("part", parts, factors.rank[1])
    p = tl.sum(tl.stack([factors.P[:, k] for k in columns], axis=1), axis=1)
    low, high = tl.min(p), tl.max(p)
    span = B.scalar(high - low)
    p = (p - low) / span if span > 0 else tl.zeros_like(p)
    return tl.reshape(p, tuple(factors.spatial_shape))


def part_mask(factors: Factorization, parts, size: tuple[int, int] | None = None,
              threshold: float = 0.25):
    """The region of ``parts`` as a boolean mask: p̂_K (upsampled bilinearly to ``size``,
    e.g. the image size) at or above ``threshold``.

    The default, a quarter of the peak, keeps the positions where an edit α a p̂ᵀ acts with
    at least a quarter of its strength (class activation maps are cut at a fifth of their
    peak for the same purpose); ``threshold=0.5`` gives the tighter half-maximum region.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> fit = tp.tucker2(np.random.default_rng(0).random((40, 6, 4, 4)), (None, 3))
    >>> tp.part_mask(fit, 1, size=(16, 16)).shape
    (16, 16)
    """
    from .saliency import upsample

    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    region = part_map(factors, parts)
    if size is not None:
        region = upsample(region, tuple(size))
    return region >= threshold


def edit_direction(
    factors: Factorization,
    appearance,
    parts,
    alpha=1.0,
):
    """The edit Δ = Σ_e α_e a_{j_e} p̂_{K_e}ᵀ, shape (C, *spatial_shape).

    Parameters
    ----------
    factors : Factorization
    appearance : int or sequence of int
        The appearance of each edit (column of A).
    parts : int, sequence of int, or sequence of those
        For one appearance: the part(s) whose sum is its region. For several appearances:
        one entry per appearance, each a part index or a sequence of them.
    alpha : float or sequence of float
        Strength of each edit (one value for all, or one per appearance). For a sweep over
        strengths use :func:`sweep`.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> fit = tp.tucker2(np.random.default_rng(0).random((40, 6, 4, 4)), (None, 3))
    >>> tp.edit_direction(fit, appearance=1, parts=2, alpha=5.0).shape
    (6, 4, 4)
    >>> tp.edit_direction(fit, appearance=[0, 1], parts=[2, [0, 1]], alpha=[1.0, -2.0]).shape
    (6, 4, 4)
    """
    several = not isinstance(appearance, numbers.Integral)
    appearances = _indices("appearance", appearance, factors.rank[0])
    if several:
        if isinstance(parts, numbers.Integral) or len(parts) != len(appearances):
            raise ValueError(
                f"{len(appearances)} appearances need {len(appearances)} entries in parts "
                "(one part index, or a list of them, per appearance)"
            )
        regions = list(parts)
    else:
        regions = [parts]
    alphas = _alphas(alpha, len(appearances))
    delta = None
    for j, region, a in zip(appearances, regions, alphas, strict=True):
        p = tl.reshape(part_map(factors, region), (1, -1))
        term = a * tl.dot(tl.reshape(factors.A[:, j], (-1, 1)), p)
        delta = term if delta is None else delta + term
    return tl.reshape(delta, (factors.n_channels, *factors.spatial_shape))


def _alphas(alpha, n: int) -> list[float]:
    if isinstance(alpha, numbers.Real):
        return [float(alpha)] * n
    values = [float(a) for a in alpha]
    if len(values) != n:
        raise ValueError(f"alpha has {len(values)} values for {n} edits: give one, or one each")
    return values


def sweep(delta, alphas: Sequence[float]):
    """Directions α_t Δ for each strength α_t, stacked: shape (T, *Δ.shape).

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> tp.sweep(np.ones((2, 3, 3)), [-1.0, 0.0, 1.0]).shape
    (3, 2, 3, 3)
    """
    alphas = [float(a) for a in alphas]
    if not alphas:
        raise ValueError("alphas is empty: give at least one strength")
    return tl.stack([a * delta for a in alphas])


def apply(Z, delta):
    """Z + Δ for feature maps Z of shape (N, C, *spatial) or (C, *spatial).

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> Z = np.random.default_rng(0).random((30, 6, 4, 4))
    >>> fit = tp.tucker2(Z, (None, 3))
    >>> tp.apply(Z[:2], tp.edit_direction(fit, 0, 1, alpha=2.0)).shape
    (2, 6, 4, 4)
    """
    Z = B.to_backend(Z, B.context_of(delta))
    if tuple(tl.shape(Z))[-tl.ndim(delta) :] != tuple(tl.shape(delta)):
        raise ValueError(
            f"feature maps of shape {tuple(tl.shape(Z))} do not end with the edit's shape "
            f"{tuple(tl.shape(delta))}"
        )
    return Z + delta

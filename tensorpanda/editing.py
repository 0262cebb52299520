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

import math
import numbers
from collections.abc import Sequence

import numpy as np
import tensorly as tl

from . import _backend as B
from ._checks import indices
from .result import Factorization
from .saliency import upsample


def part_map(factors: Factorization, parts) -> object:
    """The region p̂_K: the sum of the parts ``parts`` (an index or several), min-max
    normalised to [0, 1], shaped as the feature maps' spatial grid.

    Parameters
    ----------
    factors : Factorization
        A fitted factorisation; its parts ``P`` (S×R_S) supply the columns.
    parts : int or sequence of int
        The part(s) K, as column indices of ``P`` in ``0 .. R_S - 1``; several parts are
        summed before the normalisation.

    Returns
    -------
    tensor of shape ``factors.spatial_shape``
        p̂_K on the backend of ``factors``: 0 where the summed parts are smallest, 1 where
        they peak. A constant sum (no contrast) gives all zeros.

    Raises
    ------
    TypeError
        If ``parts`` is not an integer or a sequence of integers (booleans are refused).
    ValueError
        If ``parts`` is empty or an index is out of range.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> fit = tp.tucker2(np.random.default_rng(0).random((40, 6, 4, 4)), (None, 3))
    >>> region = tp.part_map(fit, [0, 2])
    >>> region.shape, float(region.min()), float(region.max())
    ((4, 4), 0.0, 1.0)
    """
    columns = indices("part", parts, factors.rank[1])
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

    Parameters
    ----------
    factors : Factorization
        A fitted factorisation; its parts ``P`` (S×R_S) supply the columns.
    parts : int or sequence of int
        The part(s) K whose summed, normalised map is thresholded (see
        [`part_map`][tensorpanda.part_map]).
    size : (int, int), optional
        ``(height, width)`` to upsample the region to (bilinear, see
        [`upsample`][tensorpanda.upsample]), e.g. the size of the generated images. Default
        ``None``: keep the feature maps' spatial grid ``factors.spatial_shape``.
    threshold : float, default 0.25
        Cut-off in [0, 1] on the normalised region: positions with p̂_K ≥ ``threshold`` are
        in the mask. 0 keeps every position; 1 keeps only the peak.

    Returns
    -------
    boolean tensor of shape ``size`` (or ``factors.spatial_shape``)
        True inside the region, on the backend of ``factors``.

    Raises
    ------
    ValueError
        If ``threshold`` is outside [0, 1], or ``parts`` is empty or out of range.
    TypeError
        If ``parts`` is not an integer or a sequence of integers.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> fit = tp.tucker2(np.random.default_rng(0).random((40, 6, 4, 4)), (None, 3))
    >>> mask = tp.part_mask(fit, 1, size=(16, 16))
    >>> mask.shape, mask.dtype, bool(mask.any())
    ((16, 16), dtype('bool'), True)
    """
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    region = part_map(factors, parts)
    if size is not None:
        region = upsample(region, tuple(size))
    return region >= threshold


UNITS = ("raw", "feature_norm")


def feature_scale(source) -> float:
    """The layer's typical feature norm: the root-mean-square norm of a channel fibre.

    A channel fibre is the C-vector ``Z_i[:, s]`` of one sample at one position; its
    root-mean-square norm over the samples and positions is

        σ = sqrt(Σ_i ‖Z_i‖²_F / (N · S)).

    An edit of strength α in these units (``units="feature_norm"`` in
    [`edit_direction`][tensorpanda.edit_direction]) changes the fibre at the peak of its region by a
    vector of norm α σ: α = 1 adds as much as a typical feature holds, whatever the layer's scale.

    Parameters
    ----------
    source : Factorization or array of shape (N, C, *spatial)
        Fitted factors (σ comes from the fitted data's ``info["sq_norm"]`` and
        ``info["n_samples"]``, which every fit records), or feature maps (any backend).

    Returns
    -------
    float
        σ > 0.

    Raises
    ------
    ValueError
        If factors do not record ``sq_norm`` and ``n_samples`` (pass feature maps of the
        layer instead), or if the feature maps are all zero or hold NaN or inf.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> Z = np.full((10, 4, 3, 3), 0.5)  # every fibre has norm sqrt(4 · 0.25) = 1
    >>> tp.feature_scale(Z)
    1.0
    >>> round(tp.feature_scale(tp.tucker2(Z, (None, 2))), 6)
    1.0
    """
    if isinstance(source, Factorization):
        sq_norm, n = source.info.get("sq_norm"), source.info.get("n_samples")
        if sq_norm is None or not n:
            raise ValueError(
                "these factors do not record sq_norm and n_samples (fitted by an older "
                "version?): pass feature maps of the layer, feature_scale(Z), instead"
            )
        sigma = math.sqrt(float(sq_norm) / (float(n) * source.n_positions))
    else:
        Z = B.to_host(source)
        if Z.ndim < 3:
            raise ValueError(f"feature maps must have shape (N, C, *spatial), got {Z.shape}")
        n_fibres = Z.shape[0] * math.prod(Z.shape[2:])
        with np.errstate(over="ignore", invalid="ignore"):
            sigma = math.sqrt(float(np.sum(np.square(Z, dtype=np.float64))) / max(n_fibres, 1))
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"the feature scale is {sigma}: the features are all zero or hold "
                         "NaN or inf")
    return sigma


def edit_direction(
    factors: Factorization,
    appearance,
    parts,
    alpha=1.0,
    units: str = "raw",
):
    """The edit Δ = Σ_e α_e a_{j_e} p̂_{K_e}ᵀ, shape (C, *spatial_shape).

    Each edit e paints appearance a_{j_e} (column j_e of A, a C-vector) into the region
    p̂_{K_e} (see [`part_map`][tensorpanda.part_map]) with strength α_e; the terms are summed. With
    ``units="feature_norm"`` (what the command line and the demo use) each appearance is
    scaled to norm σ, the layer's typical feature norm (`feature_scale`):
    Δ = Σ_e α_e σ a_{j_e}/‖a_{j_e}‖ p̂_{K_e}ᵀ, so α = 1 changes the fibre at the
    region's peak by as much as a typical feature holds, on any layer of any generator.

    Parameters
    ----------
    factors : Factorization
        A fitted factorisation (appearances ``A``, C×R_C, and parts ``P``, S×R_S).
    appearance : int or sequence of int
        The appearance of each edit: a column index j of ``A`` in ``0 .. R_C - 1``. An
        integer means a single edit; a sequence (even of length one) means one edit per
        entry.
    parts : int, sequence of int, or sequence of those
        For one appearance (an integer ``appearance``): the part(s) whose sum is its
        region. For several appearances: one entry per appearance, each a part index or a
        sequence of them.
    alpha : float or sequence of float, default 1.0
        Strength of each edit (one value for all, or one per appearance); a negative
        strength subtracts the appearance instead. For a sweep over strengths use
        [`sweep`][tensorpanda.sweep].
    units : {"raw", "feature_norm"}, default "raw"
        ``"raw"``: α multiplies a_j p̂ᵀ as it is. ``"feature_norm"``: α is in units of the
        layer's typical feature norm σ (see above); useful strengths are then about
        0.5 to 1.5 on any layer, where raw ones depend on the layer's scale.

    Returns
    -------
    tensor of shape (C, *spatial_shape)
        Δ on the backend of ``factors``, ready to add to feature maps (see
        [`apply`][tensorpanda.apply]).

    Raises
    ------
    TypeError
        If an appearance or part index is not an integer.
    ValueError
        If an index is out of range or a list of indices is empty; if several appearances
        do not come with one ``parts`` entry each; or if ``alpha`` has neither one value
        nor one per appearance, or is NaN or infinite; if ``units`` is unknown, or is
        ``"feature_norm"`` for factors that cannot tell σ (see `feature_scale`).

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> fit = tp.tucker2(np.random.default_rng(0).random((40, 6, 4, 4)), (None, 3))
    >>> tp.edit_direction(fit, appearance=1, parts=2, alpha=5.0).shape
    (6, 4, 4)
    >>> tp.edit_direction(fit, appearance=[0, 1], parts=[2, [0, 1]], alpha=[1.0, -2.0]).shape
    (6, 4, 4)
    >>> raw = tp.edit_direction(fit, 1, 2, alpha=1.0)
    >>> scaled = tp.edit_direction(fit, 1, 2, alpha=1.0, units="feature_norm")
    >>> bool(np.isclose(np.abs(scaled).max(), tp.feature_scale(fit) * np.abs(raw).max()))
    True
    """
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}")
    several = not isinstance(appearance, numbers.Integral)
    appearances = indices("appearance", appearance, factors.rank[0])
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
    sigma = feature_scale(factors) if units == "feature_norm" else None
    delta = None
    for j, region, a in zip(appearances, regions, alphas, strict=True):
        p = tl.reshape(part_map(factors, region), (1, -1))
        a_j = factors.A[:, j]
        if sigma is not None:
            norm = B.scalar(tl.norm(a_j))
            a = a * sigma / norm if norm > 0 else 0.0
        term = a * tl.dot(tl.reshape(a_j, (-1, 1)), p)
        delta = term if delta is None else delta + term
    return tl.reshape(delta, (factors.n_channels, *factors.spatial_shape))


def _alphas(alpha, n: int) -> list[float]:
    """One strength per edit, from one value for all or one value each (finite)."""
    if isinstance(alpha, numbers.Real):
        return _finite_strengths("alpha", [alpha]) * n
    values = _finite_strengths("alpha", alpha)
    if len(values) != n:
        raise ValueError(f"alpha has {len(values)} values for {n} edits: give one, or one each")
    return values


def _finite_strengths(name: str, values) -> list[float]:
    """``values`` as floats, refusing NaN and inf: an edit of infinite or undefined strength
    turns the generator's features (and so its images) into NaN."""
    out = [float(v) for v in values]
    bad = [v for v in out if not math.isfinite(v)]
    if bad:
        raise ValueError(
            f"{name} must be finite, got {bad[0]}: an edit of NaN or infinite strength makes "
            "the features (and the images) NaN; give a finite strength, e.g. 5.0"
        )
    return out


def sweep(delta, alphas: Sequence[float]):
    """Directions α_t Δ for each strength α_t, stacked: shape (T, *Δ.shape).

    Parameters
    ----------
    delta : tensor
        The edit direction Δ, typically from [`edit_direction`][tensorpanda.edit_direction] (shape
        (C, *spatial_shape)); any shape and backend.
    alphas : sequence of float
        The T strengths α_t, in order; 0 gives the unedited sample.

    Returns
    -------
    tensor of shape (T, *delta.shape)
        Row t is α_t Δ, on the backend of ``delta``.

    Raises
    ------
    ValueError
        If ``alphas`` is empty or holds NaN or inf, or ``delta`` holds NaN or inf.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> steps = tp.sweep(np.ones((2, 3, 3)), [-1.0, 0.0, 2.0])
    >>> steps.shape, steps[:, 0, 0, 0].tolist()
    ((3, 2, 3, 3), [-1.0, 0.0, 2.0])
    """
    alphas = _finite_strengths("alphas", alphas)
    if not alphas:
        raise ValueError("alphas is empty: give at least one strength")
    _check_delta(delta)
    return tl.stack([a * delta for a in alphas])


def _check_delta(delta) -> None:
    """Refuse an edit direction that holds NaN or inf (one reduction of a C×S tensor)."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = B.scalar(tl.sum(tl.abs(delta)))
    if not np.isfinite(total) and not np.isfinite(B.to_host(delta)).all():
        raise ValueError(
            "the edit direction delta contains NaN or inf (from a NaN or infinite strength?): "
            "every entry must be finite"
        )


def apply(Z, delta):
    """Z + Δ for feature maps Z of shape (N, C, *spatial) or (C, *spatial).

    Δ is broadcast over the leading (sample) axes of Z. To run a generator on the edited
    maps, pass Δ to an adapter instead (``adapter.generate(latents, layer, edit=Δ)``).

    Parameters
    ----------
    Z : array or tensor of shape (N, C, *spatial) or (C, *spatial)
        Feature maps; moved to the backend, dtype and device of ``delta``.
    delta : tensor of shape (C, *spatial)
        The edit direction Δ, e.g. from [`edit_direction`][tensorpanda.edit_direction] (or one row
        of [`sweep`][tensorpanda.sweep]).

    Returns
    -------
    tensor of the shape of ``Z``
        The edited feature maps Z + Δ, on the backend of ``delta``.

    Raises
    ------
    ValueError
        If the trailing dimensions of ``Z`` differ from the shape of ``delta``, or if
        ``delta`` holds NaN or inf.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> Z = np.random.default_rng(0).random((30, 6, 4, 4))
    >>> fit = tp.tucker2(Z, (None, 3))
    >>> tp.apply(Z[:2], tp.edit_direction(fit, 0, 1, alpha=2.0)).shape
    (2, 6, 4, 4)
    """
    _check_delta(delta)
    Z = B.to_backend(Z, B.context_of(delta))
    if tuple(tl.shape(Z))[-tl.ndim(delta) :] != tuple(tl.shape(delta)):
        raise ValueError(
            f"feature maps of shape {tuple(tl.shape(Z))} do not end with the edit's shape "
            f"{tuple(tl.shape(delta))}"
        )
    return Z + delta

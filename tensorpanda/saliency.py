"""Concept localisation: where each appearance is present in a sample.

With an orthonormal A, ``Aᵀ Z_i`` (R_C × S) re-expresses every spatial position's channel
fibre in the basis of appearances; row j, reshaped to the spatial grid, says how much of
appearance j sits at each position of sample i (PandA, §3.3). Upsampled to the image it is a
saliency map; thresholded, a mask. No labels are involved.
"""

from __future__ import annotations

import numbers

import numpy as np
import tensorly as tl

from . import _backend as B
from ._checks import indices
from .data import as_source, check_finite
from .result import Factorization


def interpolation_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The (n_out × n_in) linear-interpolation matrix with half-pixel centres (PIL's grid)."""
    # half-pixel centres, as PIL and torch's align_corners=False, so maps line up with images
    x = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    x = np.clip(x, 0, n_in - 1)
    left = np.floor(x).astype(int)
    right = np.minimum(left + 1, n_in - 1)
    frac = x - left
    M = np.zeros((n_out, n_in))
    M[np.arange(n_out), left] += 1 - frac
    M[np.arange(n_out), right] += frac
    return M


def upsample(maps, size: tuple[int, int]):
    """Bilinear upsampling of maps (..., H, W) to (..., h, w), on any backend.

    Linear interpolation with half-pixel centres (the convention of PIL and of torch's
    ``align_corners=False``) along both spatial axes: ``U_h @ maps @ U_wᵀ``. Values stay
    within the range of the input (the weights are convex).

    Parameters
    ----------
    maps : tensor of shape (..., H, W)
        Floating-point maps; any leading axes (e.g. samples) are kept.
    size : (int, int)
        The output size ``(h, w)``, e.g. the image size. A smaller size downsamples
        linearly (no anti-aliasing).

    Returns
    -------
    tensor of shape (..., h, w)
        On the backend, dtype and device of ``maps``.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> tp.upsample(np.eye(2), (4, 4)).round(2)
    array([[1.  , 0.75, 0.25, 0.  ],
           [0.75, 0.62, 0.38, 0.25],
           [0.25, 0.38, 0.62, 0.75],
           [0.  , 0.25, 0.75, 1.  ]])
    """
    H, W = tl.shape(maps)[-2:]
    ctx = B.context_of(maps)
    dtype = B.dtype_name(ctx)
    U_h = B.tensor(interpolation_matrix(H, size[0]).astype(dtype), ctx)
    U_w = B.tensor(interpolation_matrix(W, size[1]).astype(dtype), ctx)
    return tl.matmul(tl.matmul(U_h, maps), tl.transpose(U_w))


def _normalise(maps):
    """Min-max to [0, 1] per map (a constant map becomes 0)."""
    n = tl.shape(maps)[0]
    flat = tl.reshape(maps, (n, -1))
    low = B.min_along(flat, axis=1)
    span = tl.max(flat, axis=1) - low
    span = tl.where(span > 0, span, tl.ones(tl.shape(span), **B.context_of(maps)))
    return tl.reshape((flat - low[:, None]) / span[:, None], tl.shape(maps))


def saliency(
    factors: Factorization,
    data,
    appearance: int,
    size: tuple[int, int] | None = None,
    normalize: bool = True,
    threshold: float | None = None,
):
    """Saliency maps of appearance j: row j of Aᵀ Z_i for each sample, shape (N, H, W).

    Parameters
    ----------
    factors : Factorization
        A fitted factorisation; the maps are meaningful for orthonormal appearances ``A``.
    data : array (N, C, H, W) or any source [`tucker2`][tensorpanda.tucker2] accepts
        The samples' feature maps (same C and positions as the fitted data); read once.
    appearance : int
        Column j of A, in ``0 .. R_C - 1``.
    size : (h, w), optional
        Upsample (bilinearly) to this size, e.g. the image size. Default ``None``: the
        feature maps' grid ``factors.spatial_shape``.
    normalize : bool, default True
        Min-max each map to [0, 1] separately (a constant map becomes 0). With False the
        raw projections (Aᵀ Z_i)_j are returned; their sign is arbitrary.
    threshold : float, optional
        Return boolean masks ``map >= threshold`` (after normalisation) instead of maps.
        Needs ``normalize=True``.

    Returns
    -------
    tensor of shape (N, H, W), or (N, h, w) with ``size``
        The maps (floating point, in [0, 1] when normalised), or boolean masks with
        ``threshold``, on the backend of ``factors``.

    Raises
    ------
    TypeError
        If ``appearance`` is not a single integer.
    ValueError
        If ``appearance`` is out of range, if ``threshold`` is given with
        ``normalize=False``, if the data's channels or positions do not match
        ``factors``, or if the data holds NaN or inf (the message names the sample).

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> Z = np.random.default_rng(0).random((20, 6, 4, 4))
    >>> fit = tp.tucker2(Z, (None, 3))
    >>> maps = tp.saliency(fit, Z[:2], appearance=0, size=(16, 16))
    >>> maps.shape, float(maps.min()), float(maps.max())
    ((2, 16, 16), 0.0, 1.0)
    >>> tp.saliency(fit, Z[:2], appearance=0, threshold=0.5).dtype
    dtype('bool')
    """
    if not isinstance(appearance, numbers.Integral):
        raise TypeError(f"appearance must be one index, got {appearance!r}")
    j = indices("appearance", appearance, factors.rank[0])[0]
    if threshold is not None and not normalize:
        raise ValueError("a threshold applies to normalised maps: keep normalize=True")
    if threshold is not None and not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1] (maps are normalised), got {threshold}")
    a = tl.reshape(factors.A[:, j], (1, -1))
    maps = []
    for batch in as_source(data):
        factors._check_layout(batch.Z)
        check_finite(batch, "computing saliency maps")
        Z = B.to_backend(batch.Z, B.context_of(factors.A))
        maps.append(tl.reshape(tl.matmul(a, Z), (batch.size, *factors.spatial_shape)))
    maps = tl.concatenate(maps, axis=0)
    if size is not None:
        maps = upsample(maps, tuple(size))
    if normalize:
        maps = _normalise(maps)
    return maps >= threshold if threshold is not None else maps


def region_scores(factors: Factorization, data, region) -> np.ndarray:
    """How much more each appearance is present inside ``region`` than outside it.

    For appearance j the score is the mean over samples of

        (mean of (Aᵀ Z_i)_j inside − mean outside) / rms of (Aᵀ Z_i)_j,

    a signed, scale-free contrast: a large positive score means a_j lives in the region, a
    large negative one that −a_j does (the sign of an eigenvector is arbitrary). ``region``
    is a boolean mask on the feature maps' spatial grid. The top scorer for the image
    border, for instance, is a "background" appearance.

    Parameters
    ----------
    factors : Factorization
        A fitted factorisation with appearances ``A`` (C×R_C).
    data : array (N, C, H, W) or any source [`tucker2`][tensorpanda.tucker2] accepts
        The samples to average over (same C and positions as the fitted data); read once.
    region : boolean array of shape ``factors.spatial_shape``
        True at the positions inside the region (e.g. from [`part_mask`][tensorpanda.part_mask]
        without ``size``); any backend. It must contain positions both inside and outside.

    Returns
    -------
    numpy.ndarray of shape (R_C,), float64
        The score of each appearance; ``np.argmax`` (or ``np.argmax(abs(...))``, given the
        sign ambiguity) picks the appearance that lives in the region.

    Raises
    ------
    ValueError
        If ``region`` does not have one entry per position, is all True or all False, if
        the data's channels or positions do not match ``factors``, or if the data holds
        NaN or inf (the message names the sample).

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> Z = np.random.default_rng(0).random((20, 6, 4, 4))
    >>> fit = tp.tucker2(Z, (None, 3))
    >>> border = np.ones((4, 4), bool); border[1:-1, 1:-1] = False
    >>> scores = tp.region_scores(fit, Z, border)
    >>> scores.shape, scores.dtype
    ((6,), dtype('float64'))
    """
    mask = np.asarray(B.to_host(region)).astype(bool)
    # an image-sized mask or a transposed grid has the wrong shape even when its size fits
    grid_shapes = (tuple(factors.spatial_shape), (factors.n_positions,))
    mask_shape, mask = mask.shape, mask.reshape(-1)
    if mask_shape not in grid_shapes or mask.all() or not mask.any():
        raise ValueError(
            f"region must be a mask of the {factors.spatial_shape} grid with positions both "
            "inside and outside it"
        )
    total, n = 0.0, 0
    A = tl.transpose(factors.A)
    for batch in as_source(data):
        factors._check_layout(batch.Z)
        check_finite(batch, "scoring regions")
        Y = tl.to_numpy(tl.matmul(A, B.to_backend(batch.Z, B.context_of(factors.A))))
        Y = Y.astype(np.float64)
        contrast = Y[:, :, mask].mean(axis=2) - Y[:, :, ~mask].mean(axis=2)
        rms = np.sqrt((Y**2).mean(axis=2))
        total = total + (contrast / np.maximum(rms, 1e-30)).sum(axis=0)
        n += batch.size
    return np.asarray(total / n)

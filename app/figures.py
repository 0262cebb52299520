"""Figures as PNG and GIF files: parts over images, edit strips and animations, saliency.

Images are arrays of shape (N, 3, H, W) with values in [0, 1] (any backend, or torch
tensors from an adapter); maps are (N, H, W) or (H, W) in [0, 1]. Only numpy and Pillow
are used. An existing file is never replaced unless ``overwrite=True``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import _backend as B
from ._checks import writable_path

# Anchor colours of a perceptually ordered map (dark purple → orange → light yellow),
# interpolated linearly: enough for heat maps without a plotting library.
_ANCHORS = np.array(
    [
        [0.00, 0.00, 0.02],
        [0.27, 0.05, 0.45],
        [0.60, 0.15, 0.45],
        [0.90, 0.35, 0.25],
        [0.99, 0.70, 0.20],
        [0.99, 1.00, 0.75],
    ]
)


def colorize(maps) -> np.ndarray:
    """Values in [0, 1] (any shape) to RGB in [0, 1] (shape + (3,)).

    The colour map runs from near-black through purple and orange to light yellow,
    interpolated linearly between six anchor colours.

    Parameters
    ----------
    maps : array-like
        Values of any shape and backend (or a list); values outside [0, 1] are clipped.

    Returns
    -------
    numpy.ndarray of shape ``maps.shape + (3,)``, float64
        The RGB colour of each value, in [0, 1].

    Examples
    --------
    >>> from tensorpanda import figures
    >>> figures.colorize([0.0, 1.0]).round(2)
    array([[0.  , 0.  , 0.02],
           [0.99, 1.  , 0.75]])
    """
    x = np.clip(np.asarray(B.to_host(maps), dtype=np.float64), 0, 1) * (len(_ANCHORS) - 1)
    low = np.minimum(np.floor(x).astype(int), len(_ANCHORS) - 2)
    frac = (x - low)[..., None]
    return _ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac


def _images_hwc(images) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] → (N, H, W, 3) float64, validated."""
    X = np.asarray(B.to_host(images), dtype=np.float64)
    if X.ndim != 4 or X.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (N, 3, H, W), got {X.shape}")
    X = np.repeat(X, 3, axis=1) if X.shape[1] == 1 else X
    return np.clip(X.transpose(0, 2, 3, 1), 0, 1)


def _resize_maps(maps, size: tuple[int, int]) -> np.ndarray:
    """Maps (..., h, w) in [0, 1] to (..., H, W), bilinear."""
    from .saliency import interpolation_matrix

    M = np.asarray(B.to_host(maps), dtype=np.float64)
    h, w = M.shape[-2:]
    if (h, w) == tuple(size):
        return M
    U_h, U_w = interpolation_matrix(h, size[0]), interpolation_matrix(w, size[1])
    return U_h @ M @ U_w.T


def overlay(images, maps, strength: float = 0.6) -> np.ndarray:
    """Heat maps blended over images: (N, H, W, 3) in [0, 1]. ``maps`` (N, h, w) or (h, w)
    are resized to the images; ``strength`` scales the blend by the map's value.

    Each pixel becomes ``(1 − w) · image + w · colorize(m)`` with ``w = strength · m``, so
    where the map is 0 the image shows unchanged.

    Parameters
    ----------
    images : array of shape (N, 3, H, W) or (N, 1, H, W)
        Images with values in [0, 1] (clipped), any backend; grey images are repeated to
        RGB.
    maps : array of shape (N, h, w) or (h, w)
        Heat maps with values in [0, 1] (e.g. normalised saliency maps), resized
        bilinearly to (H, W); a single (h, w) map is laid over every image.
    strength : float, default 0.6
        Opacity of the heat map where its value is 1, in [0, 1].

    Returns
    -------
    numpy.ndarray of shape (N, H, W, 3), float64
        The blended images, channels last (ready for :func:`grid`).

    Raises
    ------
    ValueError
        If ``images`` is not (N, 3, H, W) or (N, 1, H, W), or ``maps`` does not match the
        number of images.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda import figures
    >>> blended = figures.overlay(np.zeros((2, 3, 8, 8)), np.ones((4, 4)))
    >>> blended.shape, blended[0, 0, 0].round(2)
    ((2, 8, 8, 3), array([0.59, 0.6 , 0.45]))
    """
    X = _images_hwc(images)
    M = _resize_maps(maps, X.shape[1:3])
    M = np.broadcast_to(M, X.shape[:3])
    # maps outside [0, 1] (e.g. unnormalised saliency) would blend past the colours
    weight = strength * np.clip(M, 0, 1)[..., None]
    return X * (1 - weight) + colorize(M) * weight


def grid(tiles: np.ndarray, columns: int, pad: int = 2, upscale: int = 1) -> np.ndarray:
    """Tiles (K, H, W, 3) in [0, 1] laid out row by row; returns a uint8 (H', W', 3) image.

    Parameters
    ----------
    tiles : numpy.ndarray of shape (K, H, W, 3)
        RGB tiles, channels last, with values in [0, 1] (e.g. from :func:`overlay` or
        :func:`colorize`).
    columns : int
        Tiles per row (at least 1); the number of rows is ``ceil(K / columns)`` and a
        last, incomplete row is left white.
    pad : int, default 2
        White border, in pixels, around and between the tiles.
    upscale : int, default 1
        Integer magnification of every tile (nearest neighbour) before the layout.

    Returns
    -------
    numpy.ndarray of shape (H', W', 3), uint8
        The canvas, with ``H' = rows · (upscale · H + pad) + pad`` and
        ``W' = columns · (upscale · W + pad) + pad``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda import figures
    >>> figures.grid(np.zeros((5, 8, 8, 3)), columns=3).shape   # 2 rows of 3, padded
    (22, 32, 3)
    """
    tiles = np.asarray(tiles)
    if upscale > 1:
        tiles = tiles.repeat(upscale, axis=1).repeat(upscale, axis=2)
    K, H, W, _ = tiles.shape
    rows = -(-K // columns)
    canvas = np.ones((rows * (H + pad) + pad, columns * (W + pad) + pad, 3))
    for k in range(K):
        r, c = divmod(k, columns)
        top, left = pad + r * (H + pad), pad + c * (W + pad)
        canvas[top : top + H, left : left + W] = tiles[k]
    # clip first: values outside [0, 1] would wrap around in uint8
    return (np.clip(canvas, 0, 1) * 255).round().astype(np.uint8)


def save_png(image: np.ndarray, path, overwrite: bool = False) -> Path:
    """Write a uint8 (H, W, 3) image; an existing file is kept unless ``overwrite``.

    Parameters
    ----------
    image : numpy.ndarray of shape (H, W, 3), uint8
        The picture, e.g. from :func:`grid`.
    path : str or os.PathLike
        Destination file; the format follows the suffix (e.g. ``.png``). Its folder must exist.
    overwrite : bool, default False
        Replace an existing file at ``path``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    FileNotFoundError
        If the folder of ``path`` does not exist.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from tensorpanda import figures
    >>> path = os.path.join(tempfile.mkdtemp(), "grid.png")
    >>> figures.save_png(figures.grid(np.zeros((2, 8, 8, 3)), 2), path).name
    'grid.png'
    """
    from PIL import Image

    path = writable_path(path, overwrite)
    Image.fromarray(image).save(path)
    return path


def parts_figure(parts, images, path, upscale: int = 2, overwrite: bool = False) -> Path:
    """Each part over sample images: the first row shows the parts themselves (each min-max
    normalised), the next rows one image each with every part overlaid.

    ``parts`` is (R_S, h, w) (e.g. ``factors.parts``); ``images`` (N, 3, H, W).

    Parameters
    ----------
    parts : array of shape (R_S, h, w)
        The part maps, any backend and scale (each is min-max normalised here); upsampled
        bilinearly to the images.
    images : array of shape (N, 3, H, W)
        Sample images with values in [0, 1], one row of the figure each.
    path : str or os.PathLike
        Destination file; its folder must exist.
    upscale : int, default 2
        Integer magnification of every tile (nearest neighbour), for small images.
    overwrite : bool, default False
        Replace an existing file at ``path``.

    Returns
    -------
    pathlib.Path
        The PNG written: N + 1 rows of R_S tiles.

    Raises
    ------
    ValueError
        If ``images`` is not (N, 3, H, W) (or (N, 1, H, W)).
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    FileNotFoundError
        If the folder of ``path`` does not exist.

    Examples
    --------
    >>> import numpy as np, os, tempfile, tensorpanda as tp
    >>> from tensorpanda import figures
    >>> fit = tp.tucker2(np.random.default_rng(0).random((30, 4, 4, 4)), (None, 3))
    >>> images = np.random.default_rng(1).random((2, 3, 16, 16))
    >>> path = os.path.join(tempfile.mkdtemp(), "parts.png")
    >>> figures.parts_figure(fit.parts, images, path).name
    'parts.png'
    """
    P = np.asarray(B.to_host(parts), dtype=np.float64)
    low = P.min(axis=(1, 2), keepdims=True)
    P = (P - low) / np.maximum(P.max(axis=(1, 2), keepdims=True) - low, 1e-30)
    X = _images_hwc(images)
    R, (H, W) = P.shape[0], X.shape[1:3]
    rows = [colorize(_resize_maps(P, (H, W)))]
    for image in X:
        rows.append(overlay(np.repeat(image.transpose(2, 0, 1)[None], R, axis=0), P))
    return save_png(grid(np.concatenate(rows), R, upscale=upscale), path, overwrite)


def edit_strip(frames, path, upscale: int = 2, overwrite: bool = False) -> Path:
    """Edits over strengths: ``frames`` (T, N, 3, H, W); one row per sample, one column per
    strength.

    Parameters
    ----------
    frames : array of shape (T, N, 3, H, W)
        The images of N samples generated with each of T edit strengths (e.g. from the
        directions of :func:`tensorpanda.sweep`), values in [0, 1], any backend.
    path : str or os.PathLike
        Destination file; its folder must exist.
    upscale : int, default 2
        Integer magnification of every tile (nearest neighbour), for small images.
    overwrite : bool, default False
        Replace an existing file at ``path``.

    Returns
    -------
    pathlib.Path
        The PNG written: N rows of T tiles.

    Raises
    ------
    ValueError
        If ``frames`` is not 5-D with 3 (or 1) channels.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    FileNotFoundError
        If the folder of ``path`` does not exist.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from tensorpanda import figures
    >>> frames = np.random.default_rng(0).random((5, 2, 3, 16, 16))   # 5 strengths, 2 samples
    >>> path = os.path.join(tempfile.mkdtemp(), "strip.png")
    >>> figures.edit_strip(frames, path).name
    'strip.png'
    """
    F = np.asarray(B.to_host(frames), dtype=np.float64)
    if F.ndim != 5:
        raise ValueError(f"frames must have shape (T, N, 3, H, W), got {F.shape}")
    T, N = F.shape[:2]
    tiles = _images_hwc(F.transpose(1, 0, 2, 3, 4).reshape(N * T, *F.shape[2:]))
    return save_png(grid(tiles, T, upscale=upscale), path, overwrite)


def edit_gif(
    frames, path, duration_ms: int = 100, upscale: int = 2, overwrite: bool = False
) -> Path:
    """An animation over strengths: frame t shows every sample edited with strength α_t, and
    the animation plays forward then back.

    Parameters
    ----------
    frames : array of shape (T, N, 3, H, W)
        The images of N samples generated with each of T edit strengths, values in
        [0, 1], any backend; frame t lays the N samples out in one row.
    path : str or os.PathLike
        Destination file; its folder must exist.
    duration_ms : int, default 100
        Display time of each frame, in milliseconds.
    upscale : int, default 2
        Integer magnification of every tile (nearest neighbour), for small images.
    overwrite : bool, default False
        Replace an existing file at ``path``.

    Returns
    -------
    pathlib.Path
        The GIF written: 2T − 2 frames (T for T ≤ 2), looping forever.

    Raises
    ------
    ValueError
        If ``frames`` is not 5-D with 3 (or 1) channels.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    FileNotFoundError
        If the folder of ``path`` does not exist.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from tensorpanda import figures
    >>> frames = np.random.default_rng(0).random((5, 2, 3, 16, 16))
    >>> path = os.path.join(tempfile.mkdtemp(), "edit.gif")
    >>> figures.edit_gif(frames, path).name
    'edit.gif'
    """
    from PIL import Image

    F = np.asarray(B.to_host(frames), dtype=np.float64)
    if F.ndim != 5:
        raise ValueError(f"frames must have shape (T, N, 3, H, W), got {F.shape}")
    path = writable_path(path, overwrite)
    pictures = [Image.fromarray(grid(_images_hwc(f), len(f), upscale=upscale)) for f in F]
    pictures = pictures + pictures[-2:0:-1]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=duration_ms,
                     loop=0)
    return path


def saliency_figure(images, maps, path, upscale: int = 2, overwrite: bool = False) -> Path:
    """Images (first row), their saliency maps (second) and the overlay (third).

    Parameters
    ----------
    images : array of shape (N, 3, H, W)
        Images with values in [0, 1], one column each, any backend.
    maps : array of shape (N, h, w) or (h, w)
        Saliency maps with values in [0, 1] (e.g. :func:`tensorpanda.saliency.saliency`
        with ``normalize=True``), resized bilinearly to (H, W).
    path : str or os.PathLike
        Destination file; its folder must exist.
    upscale : int, default 2
        Integer magnification of every tile (nearest neighbour), for small images.
    overwrite : bool, default False
        Replace an existing file at ``path``.

    Returns
    -------
    pathlib.Path
        The PNG written: 3 rows of N tiles.

    Raises
    ------
    ValueError
        If ``images`` is not (N, 3, H, W) (or (N, 1, H, W)).
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    FileNotFoundError
        If the folder of ``path`` does not exist.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from tensorpanda import figures
    >>> rng = np.random.default_rng(0)
    >>> path = os.path.join(tempfile.mkdtemp(), "saliency.png")
    >>> figures.saliency_figure(rng.random((2, 3, 16, 16)), rng.random((2, 4, 4)), path).name
    'saliency.png'
    """
    X = _images_hwc(images)
    M = _resize_maps(maps, X.shape[1:3])
    rows = [X, colorize(M), overlay(images, M)]
    return save_png(grid(np.concatenate(rows), len(X), upscale=upscale), path, overwrite)

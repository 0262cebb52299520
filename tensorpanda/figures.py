"""Figures as PNG and GIF files: parts over images, edit strips and animations, saliency.

Images are arrays of shape (N, 3, H, W) with values in [0, 1] (any backend, or torch
tensors from an adapter); maps are (N, H, W) or (H, W) in [0, 1]. Only numpy and Pillow
are used. An existing file is never replaced unless ``overwrite=True``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import _backend as B

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

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda import figures
    >>> figures.overlay(np.zeros((2, 3, 8, 8)), np.ones((4, 4))).shape
    (2, 8, 8, 3)
    """
    X = _images_hwc(images)
    M = _resize_maps(maps, X.shape[1:3])
    M = np.broadcast_to(M, X.shape[:3])
    weight = strength * M[..., None]
    return X * (1 - weight) + colorize(M) * weight


def grid(tiles: np.ndarray, columns: int, pad: int = 2, upscale: int = 1) -> np.ndarray:
    """Tiles (K, H, W, 3) in [0, 1] laid out row by row; returns a uint8 (H', W', 3) image.

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
    return (canvas * 255).round().astype(np.uint8)


def _writable(path, overwrite: bool) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if not path.parent.exists():
        raise FileNotFoundError(f"the folder {path.parent} does not exist: create it first")
    return path


def save_png(image: np.ndarray, path, overwrite: bool = False) -> Path:
    """Write a uint8 (H, W, 3) image; an existing file is kept unless ``overwrite``.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from tensorpanda import figures
    >>> path = os.path.join(tempfile.mkdtemp(), "grid.png")
    >>> figures.save_png(figures.grid(np.zeros((2, 8, 8, 3)), 2), path).name
    'grid.png'
    """
    from PIL import Image

    path = _writable(path, overwrite)
    Image.fromarray(image).save(path)
    return path


def parts_figure(parts, images, path, upscale: int = 2, overwrite: bool = False) -> Path:
    """Each part over sample images: the first row shows the parts themselves (each min-max
    normalised), the next rows one image each with every part overlaid.

    ``parts`` is (R_S, h, w) (e.g. ``factors.parts``); ``images`` (N, 3, H, W).

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
    path = _writable(path, overwrite)
    pictures = [Image.fromarray(grid(_images_hwc(f), len(f), upscale=upscale)) for f in F]
    pictures = pictures + pictures[-2:0:-1]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=duration_ms,
                     loop=0)
    return path


def saliency_figure(images, maps, path, upscale: int = 2, overwrite: bool = False) -> Path:
    """Images (first row), their saliency maps (second) and the overlay (third).

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

"""Figures as PNG and GIF files: parts over images, edit strips and animations, saliency.

Images are arrays of shape (N, 3, H, W) with values in [0, 1] (numpy, torch tensors from an
adapter, or any array-like); maps are (N, H, W) or (H, W) in [0, 1]. Only numpy and Pillow
are used, whatever the TensorLy backend. An existing file is never replaced unless
``overwrite=True``; every file is written as the factors are (a temporary file in the same
folder, then renamed), so an interruption never leaves a partial figure under its name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# The application layer ships with the core, so it shares the core's resampling grid and
# its way of writing files (overwrite rule, atomic rename, modes) rather than copies of them.
from tensorpanda._checks import atomic_write
from tensorpanda.saliency import interpolation_matrix

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


def _to_numpy(x) -> np.ndarray:
    """Any array-like (numpy, torch, jax) as a numpy array on the host."""
    # torch tensors may carry grad or sit on a GPU; detected without importing torch
    if type(x).__module__.startswith("torch") and hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def colorize(maps) -> np.ndarray:
    """Values in [0, 1] (any shape, clipped) to RGB in [0, 1] (shape + (3,))."""
    x = np.clip(np.asarray(_to_numpy(maps), dtype=np.float64), 0, 1) * (len(_ANCHORS) - 1)
    low = np.minimum(np.floor(x).astype(int), len(_ANCHORS) - 2)
    frac = (x - low)[..., None]
    return _ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac


def images_hwc(images) -> np.ndarray:
    """(N, 3, H, W) or (N, 1, H, W) in [0, 1] → (N, H, W, 3) float64, validated and clipped."""
    X = np.asarray(_to_numpy(images), dtype=np.float64)
    if X.ndim != 4 or X.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (N, 3, H, W), got {X.shape}")
    X = np.repeat(X, 3, axis=1) if X.shape[1] == 1 else X
    return np.clip(X.transpose(0, 2, 3, 1), 0, 1)


def _resize_maps(maps, size: tuple[int, int]) -> np.ndarray:
    """Maps (..., h, w) to (..., H, W), bilinear."""
    M = np.asarray(_to_numpy(maps), dtype=np.float64)
    h, w = M.shape[-2:]
    if (h, w) == tuple(size):
        return M
    U_h, U_w = interpolation_matrix(h, size[0]), interpolation_matrix(w, size[1])
    return U_h @ M @ U_w.T


def overlay(images, maps, strength: float = 0.6) -> np.ndarray:
    """Heat maps (N, h, w) or (h, w) blended over images: (N, H, W, 3) in [0, 1].

    Each pixel becomes ``(1 − w) · image + w · colorize(m)`` with ``w = strength · m``, so
    where the map is 0 the image shows unchanged; maps are resized bilinearly.
    """
    X = images_hwc(images)
    M = _resize_maps(maps, X.shape[1:3])
    M = np.broadcast_to(M, X.shape[:3])
    # maps outside [0, 1] (e.g. unnormalised saliency) would blend past the colours
    weight = strength * np.clip(M, 0, 1)[..., None]
    return X * (1 - weight) + colorize(M) * weight


def grid(tiles: np.ndarray, columns: int, pad: int = 2, upscale: int = 1) -> np.ndarray:
    """Tiles (K, H, W, 3) in [0, 1] laid out row by row on white: a uint8 (H', W', 3) image."""
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
    """Write a uint8 (H, W, 3) image; an existing file is kept unless ``overwrite``."""
    from PIL import Image

    picture = Image.fromarray(image)
    # the temporary file ends in the final name, so Pillow picks the format from it as usual
    return atomic_write(path, picture.save, overwrite)


def parts_figure(parts, images, path, upscale: int = 2, overwrite: bool = False) -> Path:
    """Parts (R_S, h, w) over images (N, 3, H, W): a row of parts, then one row per image."""
    P = np.asarray(_to_numpy(parts), dtype=np.float64)
    # each part min-max normalised: parts have arbitrary scales
    low = P.min(axis=(1, 2), keepdims=True)
    P = (P - low) / np.maximum(P.max(axis=(1, 2), keepdims=True) - low, 1e-30)
    X = images_hwc(images)
    R, (H, W) = P.shape[0], X.shape[1:3]
    rows = [colorize(_resize_maps(P, (H, W)))]
    for image in X:
        rows.append(overlay(np.repeat(image.transpose(2, 0, 1)[None], R, axis=0), P))
    return save_png(grid(np.concatenate(rows), R, upscale=upscale), path, overwrite)


def edit_strip(frames, path, upscale: int = 2, overwrite: bool = False) -> Path:
    """Edits over strengths, frames (T, N, 3, H, W): one row per sample, one column per strength."""
    F = np.asarray(_to_numpy(frames), dtype=np.float64)
    if F.ndim != 5:
        raise ValueError(f"frames must have shape (T, N, 3, H, W), got {F.shape}")
    T, N = F.shape[:2]
    tiles = images_hwc(F.transpose(1, 0, 2, 3, 4).reshape(N * T, *F.shape[2:]))
    return save_png(grid(tiles, T, upscale=upscale), path, overwrite)


def edit_gif(
    frames, path, duration_ms: int = 100, upscale: int = 2, overwrite: bool = False
) -> Path:
    """An animation over strengths (T, N, 3, H, W), played forward then back, looping."""
    from PIL import Image

    F = np.asarray(_to_numpy(frames), dtype=np.float64)
    if F.ndim != 5:
        raise ValueError(f"frames must have shape (T, N, 3, H, W), got {F.shape}")
    pictures = [Image.fromarray(grid(images_hwc(f), len(f), upscale=upscale)) for f in F]
    # back again without repeating the two ends: 2T − 2 frames
    pictures = pictures + pictures[-2:0:-1]

    def write(tmp):
        pictures[0].save(tmp, save_all=True, append_images=pictures[1:],
                         duration=duration_ms, loop=0)

    return atomic_write(path, write, overwrite)


def saliency_figure(images, maps, path, upscale: int = 2, overwrite: bool = False) -> Path:
    """Images (first row), their saliency maps (second) and the overlay (third)."""
    X = images_hwc(images)
    M = _resize_maps(maps, X.shape[1:3])
    rows = [X, colorize(M), overlay(images, M)]
    return save_png(grid(np.concatenate(rows), len(X), upscale=upscale), path, overwrite)

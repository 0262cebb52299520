"""Figures as PNG and GIF files: parts over images, edit strips and animations, saliency.

Images are arrays of shape (N, 3, H, W) with values in [0, 1] (numpy, torch tensors from an
adapter, or any array-like); maps are (N, H, W) or (H, W) in [0, 1]. Only numpy and Pillow
are used, whatever the TensorLy backend. An existing file is never replaced unless
``overwrite=True``; every file is written as the factors are (a temporary file in the same
folder, then renamed), so an interruption never leaves a partial figure under its name.

Every figure is labelled: a title (the method, the part and appearance, the layer), a label
over each column and beside each row (part index, α, sample), drawn in the image and also
kept in the PNG's text chunks (``Title``, ``Columns``, ``Rows``; GIF: the comment), so a
figure found in a folder says what it shows.
"""

from __future__ import annotations

import functools
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


FONT_SIZE = 12  # pixels; a label line is FONT_SIZE + 4 high


# Fonts with Greek letters and maths signs (α, σ, −, ×), found by name in the system's fonts
_FONTS = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf")
# their plain spellings, for Pillow's built-in font, which lacks these glyphs
_PLAIN = str.maketrans({"α": "alpha", "σ": "sigma", "−": "-", "×": "x", "p̂"[1]: "",
                        "ᵀ": "T", "≥": ">="})


@functools.lru_cache(maxsize=1)
def _font():
    """A font at ``FONT_SIZE`` that draws α and σ, and whether it does (Pillow's own does not)."""
    from PIL import ImageFont

    for name in _FONTS:
        try:
            return ImageFont.truetype(name, FONT_SIZE), True
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=FONT_SIZE), False
    except (TypeError, ImportError, OSError):  # old Pillow or no FreeType: the bitmap font
        return ImageFont.load_default(), False


def _text_width(text: str, font) -> int:
    left, _, right, _ = font.getbbox(text)
    return int(right - left)


def annotate(image: np.ndarray, tile: tuple[int, int], pad: int = 2, title: str | None = None,
             columns: list[str] | None = None, rows: list[str] | None = None) -> np.ndarray:
    """A grid image (from `grid`, tiles of size ``tile`` = (H, W) with padding ``pad``)
    with a title line and column labels above it and row labels to its left: uint8."""
    from PIL import Image, ImageDraw

    font, greek = _font()
    if not greek:
        title = title and title.translate(_PLAIN)
        columns = [t.translate(_PLAIN) for t in columns or ()]
        rows = [t.translate(_PLAIN) for t in rows or ()]
    line = FONT_SIZE + 4
    top = line * (bool(title) + bool(columns))
    left = max((_text_width(r, font) for r in rows or ()), default=-6) + 6
    width = max(left + image.shape[1], _text_width(title or "", font) + 8)
    canvas = Image.new("RGB", (width, top + image.shape[0]), "white")
    canvas.paste(Image.fromarray(image), (left, top))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((4, 2), title, fill="black", font=font)
    H, W = tile
    for c, text in enumerate(columns or ()):
        x = left + pad + c * (W + pad) + (W - _text_width(text, font)) // 2
        draw.text((max(x, left), top - line + 2), text, fill="black", font=font)
    for r, text in enumerate(rows or ()):
        y = top + pad + r * (H + pad) + (H - FONT_SIZE) // 2
        draw.text((2, y), text, fill="black", font=font)
    return np.asarray(canvas)


def _labels(title, columns, rows) -> dict:
    """The labels as PNG text chunks."""
    text = {"Title": title or "", "Columns": " | ".join(columns or ()),
            "Rows": " | ".join(rows or ())}
    return {k: v for k, v in text.items() if v}


def labelled_grid(tiles: np.ndarray, columns: int, upscale: int = 1, title: str | None = None,
                  column_labels: list[str] | None = None,
                  row_labels: list[str] | None = None) -> np.ndarray:
    """`grid` with a title, column labels and row labels (see `annotate`)."""
    tiles = np.asarray(tiles)
    tile = (tiles.shape[1] * upscale, tiles.shape[2] * upscale)
    return annotate(grid(tiles, columns, upscale=upscale), tile, title=title,
                    columns=column_labels, rows=row_labels)


def save_png(image: np.ndarray, path, overwrite: bool = False,
             text: dict | None = None) -> Path:
    """Write a uint8 (H, W, 3) image (with ``text`` as PNG text chunks); an existing file is
    kept unless ``overwrite``."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    picture = Image.fromarray(image)
    info = None
    if text:
        info = PngInfo()
        for key, value in text.items():
            info.add_itxt(key, value)  # international text: α and × survive

    def write(tmp):
        # a PNG-only option: other formats (localize may write .jpg) just ignore the labels
        options = {"pnginfo": info} if info is not None and tmp.suffix == ".png" else {}
        picture.save(tmp, **options)

    # the temporary file ends in the final name, so Pillow picks the format from it as usual
    return atomic_write(path, write, overwrite)


def labels(path) -> dict:
    """The labels a figure of this module carries: ``Title``, ``Columns``, ``Rows`` (PNG), or
    ``comment`` (GIF)."""
    from PIL import Image

    with Image.open(path) as picture:
        text = dict(getattr(picture, "text", {}) or {})
        if "comment" in picture.info:
            comment = picture.info["comment"]
            text["comment"] = comment.decode() if isinstance(comment, bytes) else comment
    return text


def alpha_label(alpha: float, raw: bool = False) -> str:
    """``α = 1.5`` (in units of the feature norm σ) or ``α = 20 (raw)``."""
    return f"α = {alpha:g}" + (" (raw)" if raw else "")


PART_TILE = 64  # pixels: parts shown without images are enlarged to about this size


def parts_figure(parts, images, path, upscale: int = 2, overwrite: bool = False,
                 title: str | None = None, region=None) -> Path:
    """Parts (R_S, h, w) over images (N, 3, H, W): a row of parts, then one row per image;
    columns labelled ``part k``, rows ``parts`` and ``sample i``. ``images=None`` shows the
    parts alone (enlarged); a ``region`` map (h, w) in [0, 1] adds a last column."""
    P = np.asarray(_to_numpy(parts), dtype=np.float64)
    # each part min-max normalised: parts have arbitrary scales
    low = P.min(axis=(1, 2), keepdims=True)
    P = (P - low) / np.maximum(P.max(axis=(1, 2), keepdims=True) - low, 1e-30)
    columns = [f"part {k}" for k in range(len(P))]
    if region is not None:
        P = np.concatenate([P, np.asarray(_to_numpy(region), dtype=np.float64)[None]])
        columns.append("region")
    if images is None:
        factor = max(1, -(-PART_TILE // max(P.shape[1:])))
        X = np.zeros((0, P.shape[1] * factor, P.shape[2] * factor, 3))
    else:
        X = images_hwc(images)
    R, (H, W) = P.shape[0], X.shape[1:3]
    rows = [colorize(_resize_maps(P, (H, W)))]
    for image in X:
        rows.append(overlay(np.repeat(image.transpose(2, 0, 1)[None], R, axis=0), P))
    row_labels = ["parts"] + [f"sample {i}" for i in range(len(X))]
    image = labelled_grid(np.concatenate(rows), R, upscale, title, columns, row_labels)
    return save_png(image, path, overwrite, _labels(title, columns, row_labels))


def _frames(frames) -> np.ndarray:
    F = np.asarray(_to_numpy(frames), dtype=np.float64)
    if F.ndim != 5:
        raise ValueError(f"frames must have shape (T, N, 3, H, W), got {F.shape}")
    return F


def _column_labels(alphas, T: int) -> list[str]:
    """``α = …`` per strength (given as numbers or as ready labels), else ``step t``."""
    if alphas is None:
        return [f"step {t}" for t in range(T)]
    if len(alphas) != T:
        raise ValueError(f"{len(alphas)} alphas for {T} frames: give one per frame")
    return [a if isinstance(a, str) else alpha_label(a) for a in alphas]


def edit_strip(frames, path, upscale: int = 2, overwrite: bool = False,
               alphas=None, title: str | None = None) -> Path:
    """Edits over strengths, frames (T, N, 3, H, W): one row per sample, one column per
    strength, labelled with ``alphas`` (numbers, or label strings such as "original")."""
    F = _frames(frames)
    T, N = F.shape[:2]
    tiles = images_hwc(F.transpose(1, 0, 2, 3, 4).reshape(N * T, *F.shape[2:]))
    columns, rows = _column_labels(alphas, T), [f"sample {i}" for i in range(N)]
    image = labelled_grid(tiles, T, upscale, title, columns, rows)
    return save_png(image, path, overwrite, _labels(title, columns, rows))


def edit_gif(
    frames, path, duration_ms: int = 100, upscale: int = 2, overwrite: bool = False,
    alphas=None, title: str | None = None,
) -> Path:
    """An animation over strengths (T, N, 3, H, W), played forward then back, looping; each
    frame titled with ``title`` and its strength."""
    from PIL import Image

    F = _frames(frames)
    steps = _column_labels(alphas, len(F))
    arrays = [labelled_grid(images_hwc(f), len(f), upscale, f"{title}, {step}" if title else step)
              for f, step in zip(F, steps, strict=True)]
    # one size for every frame (titles differ in width): padded with white on the right
    width = max(a.shape[1] for a in arrays)
    pictures = [Image.fromarray(np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0)),
                                       constant_values=255)) for a in arrays]
    # back again without repeating the two ends: 2T − 2 frames
    pictures = pictures + pictures[-2:0:-1]
    comment = f"{title or ''} [{', '.join(steps)}]".strip()

    def write(tmp):
        pictures[0].save(tmp, save_all=True, append_images=pictures[1:],
                         duration=duration_ms, loop=0, comment=comment.encode())

    return atomic_write(path, write, overwrite)


def saliency_figure(images, maps, path, upscale: int = 2, overwrite: bool = False,
                    title: str | None = None) -> Path:
    """Images (first row), their saliency maps (second) and the overlay (third), labelled."""
    X = images_hwc(images)
    M = _resize_maps(maps, X.shape[1:3])
    rows = [X, colorize(M), overlay(images, M)]
    columns, row_labels = [f"sample {i}" for i in range(len(X))], ["image", "saliency",
                                                                   "overlay"]
    image = labelled_grid(np.concatenate(rows), len(X), upscale, title, columns, row_labels)
    return save_png(image, path, overwrite, _labels(title, columns, row_labels))

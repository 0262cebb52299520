"""A labelled grid of images saved as a PNG, for the examples (needs pillow: the gan extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def as_tiles(images) -> np.ndarray:
    """(rows, columns, H, W[, 3]) floats in [0, 1] -> uint8 (rows, columns, H, W, 3)."""
    tiles = np.clip(np.asarray(images, dtype=np.float64), 0.0, 1.0)
    if tiles.ndim == 4:  # grey maps: repeat into RGB
        tiles = np.repeat(tiles[..., None], 3, axis=-1)
    if tiles.shape[2] == 3 and tiles.shape[-1] != 3:  # (rows, columns, 3, H, W) from torch
        tiles = np.moveaxis(tiles, 2, -1)
    return (tiles * 255).round().astype(np.uint8)


def save_grid(images, path, title: str, rows: list[str], columns: list[str],
              scale: int = 2) -> Path:
    """Save ``images`` (rows × columns of images in [0, 1]) with a title and labels."""
    tiles = as_tiles(images)
    n_rows, n_cols, H, W = tiles.shape[:4]
    H, W, pad = H * scale, W * scale, 4
    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # pillow < 10.1: a fixed bitmap font
        font = ImageFont.load_default()
    left = 8 + max(int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(label, font=font))
                   for label in rows)
    top = 44
    sheet = Image.new("RGB", (left + n_cols * (W + pad), top + n_rows * (H + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), title, fill="black", font=font)
    for c, label in enumerate(columns):
        draw.text((left + c * (W + pad), top - 16), label, fill="black", font=font)
    for r, label in enumerate(rows):
        y = top + r * (H + pad)
        draw.text((4, y + H // 2 - 6), label, fill="black", font=font)
        for c in range(n_cols):
            tile = Image.fromarray(tiles[r, c]).resize((W, H), Image.NEAREST)
            sheet.paste(tile, (left + c * (W + pad), y))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path

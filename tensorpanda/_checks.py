"""Argument checks shared across modules: part and appearance indices, output paths."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def indices(name: str, value, bound: int) -> list[int]:
    """``value`` (one index or several) as ints in 0..bound-1, or an error naming ``name``."""
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


def writable_path(path, overwrite: bool) -> Path:
    """``path`` as a Path if a file may be written there (no clobbering, folder exists)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if not path.parent.exists():
        raise FileNotFoundError(f"the folder {path.parent} does not exist: create it first")
    return path

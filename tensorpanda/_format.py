"""The factors file: named host arrays and a JSON metadata record, in ``.safetensors`` or
``.npz``, never pickle.

A file holds the arrays ``A``, ``P`` and ``history`` and a metadata record (format marker,
version, model, appearances, spatial shape, info). Reading checks that the file is complete,
is a tensorpanda factors file, and that its arrays are consistent, so a truncated or foreign
file gives a clear error instead of wrong factors. This module knows numpy arrays and dicts
only; :class:`~tensorpanda.result.Factorization` builds on it.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from ._checks import writable_path

FORMAT = "tensorpanda.factors"
FORMAT_VERSION = 1
SUFFIXES = (".safetensors", ".npz")


def suffix_of(path: Path) -> str:
    """The suffix of ``path`` if it names a factors file type, else a ``ValueError``."""
    if path.suffix not in SUFFIXES:
        raise ValueError(
            f"unknown factors file type {path.suffix!r} for {path}: use a name ending in "
            f"{' or '.join(SUFFIXES)}"
        )
    return path.suffix


def _json_default(value):
    """JSON for numpy scalars in ``info``; anything else is written as its ``str``."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return str(value)


def write(path, arrays: dict, metadata: dict, overwrite: bool = False) -> Path:
    """Write host ``arrays`` and the ``metadata`` record to ``path`` atomically; return it."""
    suffix = suffix_of(Path(path))
    path = writable_path(path, overwrite)
    arrays = {key: np.ascontiguousarray(value) for key, value in arrays.items()}
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
    meta = json.dumps(record, default=_json_default)
    # written next to its destination, then renamed: an interrupted save leaves no
    # half-written file under the final name (a rename within a folder is atomic)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        if suffix == ".safetensors":
            save_file(arrays, tmp, metadata={"tensorpanda": meta})
        else:
            with open(tmp, "wb") as handle:
                np.savez(handle, metadata=np.array(meta), **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def read(path) -> tuple[dict, dict]:
    """(metadata, host arrays) of the factors file at ``path``, checked before returning."""
    path = Path(path)
    suffix = suffix_of(path)
    if not path.is_file():
        raise FileNotFoundError(f"no factors file at {path}")
    meta, arrays = (_read_safetensors if suffix == ".safetensors" else _read_npz)(path)
    _check(meta, arrays, path)
    return meta, arrays


def _read_safetensors(path: Path) -> tuple[dict, dict]:
    """Metadata and arrays of a safetensors file, or a ``ValueError`` saying why not."""
    try:
        with safe_open(str(path), framework="np") as handle:
            meta = (handle.metadata() or {}).get("tensorpanda")
            arrays = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(
            f"{path} is not a readable safetensors file (truncated or of another format): {err}"
        ) from None
    if meta is None:
        raise ValueError(f"{path} is a safetensors file but not a tensorpanda factors file")
    return json.loads(meta), arrays


def _read_npz(path: Path) -> tuple[dict, dict]:
    """Metadata and arrays of an ``.npz`` file (pickle refused), or a ``ValueError``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise ValueError(
            f"{path} is not a readable .npz file (truncated or of another format): {err}"
        ) from None
    if "metadata" not in arrays:
        raise ValueError(f"{path} is an .npz file but not a tensorpanda factors file")
    return json.loads(str(arrays.pop("metadata"))), arrays


def _check(meta: dict, arrays: dict, path: Path) -> None:
    """Refuse foreign, newer, incomplete or inconsistent files before anything is built."""
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a tensorpanda factors file (format {meta.get('format')!r})"
        )
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written by a newer tensorpanda (format version "
            f"{meta['format_version']}): upgrade tensorpanda to read it"
        )
    missing = [key for key in ("A", "P") if key not in arrays]
    missing += [key for key in ("model", "appearances", "spatial_shape") if key not in meta]
    if missing:
        raise ValueError(f"{path} is incomplete: it lacks {', '.join(missing)}")
    A, P = arrays["A"], arrays["P"]
    if A.ndim != 2 or P.ndim != 2:
        raise ValueError(f"{path} is corrupt: A and P must be matrices, got {A.shape}, {P.shape}")
    if int(np.prod(meta["spatial_shape"])) != P.shape[0]:
        raise ValueError(
            f"{path} is corrupt: P has {P.shape[0]} rows but the spatial shape is "
            f"{tuple(meta['spatial_shape'])}"
        )
    if not (np.isfinite(A).all() and np.isfinite(P).all()):
        raise ValueError(f"{path} is corrupt: its factors contain NaN or inf")
    if (P < 0).any():
        raise ValueError(f"{path} is corrupt: its parts P have negative entries")

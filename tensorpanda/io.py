"""Saving and loading factors: ``.safetensors`` or ``.npz``, never pickle.

A factors file holds the arrays ``A``, ``P`` and ``history`` and a JSON metadata record
(format marker, version, model, appearances, spatial shape, info). Loading checks that the
file is complete, is a tensorpanda factors file, and that its arrays are consistent, so a
truncated or foreign file gives a clear error instead of wrong factors.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import tensorly as tl

from . import _backend as B
from ._checks import writable_path
from .result import Factorization

FORMAT = "tensorpanda.factors"
FORMAT_VERSION = 1
SUFFIXES = (".safetensors", ".npz")


def _suffix(path: Path) -> str:
    if path.suffix not in SUFFIXES:
        raise ValueError(
            f"unknown factors file type {path.suffix!r} for {path}: use a name ending in "
            f"{' or '.join(SUFFIXES)}"
        )
    return path.suffix


def _metadata(result: Factorization) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": result.model,
        "appearances": result.appearances,
        "spatial_shape": list(result.spatial_shape),
        "info": result.info,
    }


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return str(value)


def save(result: Factorization, path, overwrite: bool = False) -> Path:
    """Write ``result`` to ``path`` (``.safetensors`` or ``.npz``).

    The file is written next to its destination and moved into place, so an interrupted
    save never leaves a half-written file under the final name. An existing file is kept
    unless ``overwrite=True``.

    The file holds ``A``, ``P`` (copied to the host) and the objective ``history``, and a
    JSON metadata record with the model, the appearances constraint, the spatial shape and
    ``info``; no pickle is involved, in either format.

    Parameters
    ----------
    result : Factorization
        The factors to write, on any backend and device.
    path : str or os.PathLike
        Destination, ending in ``.safetensors`` or ``.npz`` (the suffix picks the format).
        Its folder must exist.
    overwrite : bool, default False
        Replace an existing file at ``path`` instead of raising.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        If ``path`` ends in neither ``.safetensors`` nor ``.npz``.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    FileNotFoundError
        If the folder of ``path`` does not exist.

    Examples
    --------
    >>> import numpy as np, tempfile, os, tensorpanda as tp
    >>> fit = tp.tucker2(np.random.default_rng(0).random((30, 4, 3, 3)), rank=(4, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "factors.safetensors")
    >>> tp.save(fit, path)
    PosixPath('...factors.safetensors')
    >>> tp.load(path).rank
    (4, 2)
    >>> tp.save(fit, path)
    Traceback (most recent call last):
    ...
    FileExistsError: ...factors.safetensors exists; pass overwrite=True to replace it
    >>> tp.save(fit, path, overwrite=True).name
    'factors.safetensors'
    """
    suffix = _suffix(Path(path))
    path = writable_path(path, overwrite)
    arrays = {
        "A": np.ascontiguousarray(B.to_host(result.A)),
        "P": np.ascontiguousarray(B.to_host(result.P)),
        "history": np.asarray(result.history, dtype=np.float64),
    }
    meta = json.dumps(_metadata(result), default=_json_default)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        if suffix == ".safetensors":
            from safetensors.numpy import save_file

            save_file(arrays, tmp, metadata={"tensorpanda": meta})
        else:
            with open(tmp, "wb") as handle:
                np.savez(handle, metadata=np.array(meta), **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _read_safetensors(path: Path) -> tuple[dict, dict]:
    from safetensors import SafetensorError, safe_open

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


def load(path) -> Factorization:
    """Read factors written by :func:`save`; the factors land on the active backend.

    The file is checked before anything is built from it: it must be a complete
    tensorpanda factors file of a format version this tensorpanda reads, with matrices
    ``A`` and ``P`` that are finite, ``P`` non-negative and with one row per position of
    the saved spatial shape.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` or ``.npz`` file written by :func:`save`.

    Returns
    -------
    Factorization
        The factors (in the dtype they were saved in), model, appearances constraint,
        spatial shape, objective history and info.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the suffix is neither ``.safetensors`` nor ``.npz``, or the file is unreadable
        (truncated or of another format), not a tensorpanda factors file, written by a
        newer tensorpanda, incomplete or inconsistent (corrupt).

    Examples
    --------
    >>> import numpy as np, tempfile, os, tensorpanda as tp
    >>> Z = np.random.default_rng(0).random((30, 4, 3, 3))
    >>> fit = tp.tucker2(Z, rank=(4, 2), random_state=0)
    >>> folder = tempfile.mkdtemp()
    >>> back = tp.load(tp.save(fit, os.path.join(folder, "factors.npz")))
    >>> back.model, back.rank, back.spatial_shape, bool(np.array_equal(back.P, fit.P))
    ('panda', (4, 2), (3, 3), True)
    >>> np.savez(os.path.join(folder, "other.npz"), A=np.eye(2))
    >>> tp.load(os.path.join(folder, "other.npz"))
    Traceback (most recent call last):
    ...
    ValueError: ...other.npz is an .npz file but not a tensorpanda factors file
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise FileNotFoundError(f"no factors file at {path}")
    meta, arrays = (_read_safetensors if suffix == ".safetensors" else _read_npz)(path)
    _check(meta, arrays, path)
    return Factorization(
        A=B.tensor(arrays["A"], {"dtype": _backend_dtype(arrays["A"].dtype)}),
        P=B.tensor(arrays["P"], {"dtype": _backend_dtype(arrays["P"].dtype)}),
        model=meta["model"],
        appearances=meta["appearances"],
        spatial_shape=tuple(meta["spatial_shape"]),
        history=[float(x) for x in arrays.get("history", [])],
        info=dict(meta.get("info", {})),
    )


def _backend_dtype(dtype: np.dtype):
    name = tl.get_backend()
    if name == "pytorch":
        import torch

        return getattr(torch, dtype.name)
    return dtype


def _check(meta: dict, arrays: dict, path: Path) -> None:
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

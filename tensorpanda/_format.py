"""The factors file: named host arrays and a JSON metadata record, in ``.safetensors`` or
``.npz``, never pickle.

A file holds the arrays ``A``, ``P`` and ``history`` and a metadata record (format marker,
version, model, appearances, spatial shape, info). Reading checks that the file is complete,
is a tensorpanda factors file, and that its arrays are consistent, so a truncated or foreign
file gives a clear error instead of wrong factors; writing runs the same checks first, so
every file written can be read back, and writes atomically (see
`tensorpanda._checks.atomic_write`). This module knows numpy arrays and dicts only;
[`Factorization`][tensorpanda.result.Factorization] builds on it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from ._checks import atomic_write, writable_path
from .models import APPEARANCES

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
    """JSON for numpy scalars and arrays in ``info``; anything else is written as its ``str``."""
    if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
        # a list, not numpy's truncated text ("[0 1 2 ... 1999]"), so that it reads back
        return np.asarray(value).tolist()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return str(value)


def write(path, arrays: dict, metadata: dict, overwrite: bool = False) -> Path:
    """Write host ``arrays`` and the ``metadata`` record to ``path`` atomically; return it.

    What is about to be written goes through the reader's checks first, so a file that
    `read` would refuse is never written (and nothing is touched on disk).
    """
    suffix = suffix_of(Path(path))
    path = writable_path(path, overwrite)
    arrays = {key: _native(np.ascontiguousarray(value)) for key, value in arrays.items()}
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
    meta = json.dumps(record, default=_json_default)
    # checked as the reader will see it: after the JSON round trip
    problem = _problem(json.loads(meta), arrays)
    if problem is not None:
        raise ValueError(
            f"cannot save factors to {path}: {problem} (load would refuse such a file); "
            "nothing was written"
        )

    def write_to(tmp: Path) -> None:
        if suffix == ".safetensors":
            save_file(arrays, str(tmp), metadata={"tensorpanda": meta})
        else:
            with open(tmp, "wb") as handle:
                np.savez(handle, metadata=np.array(meta), **arrays)

    return atomic_write(path, write_to, overwrite)


def read(path) -> tuple[dict, dict]:
    """(metadata, host arrays) of the factors file at ``path``, checked before returning."""
    path = Path(path)
    suffix = suffix_of(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a factors file: name the file in it")
    if not path.is_file():
        raise FileNotFoundError(f"no factors file at {path}")
    meta, arrays = (_read_safetensors if suffix == ".safetensors" else _read_npz)(path)
    arrays = {key: _native(value) for key, value in arrays.items()}
    _check(meta, arrays, path)
    return meta, arrays


def _native(array: np.ndarray) -> np.ndarray:
    """``array`` in the machine's byte order (a big-endian ``>f8`` array becomes ``float64``)."""
    if not array.dtype.isnative:
        return array.astype(array.dtype.newbyteorder("="))
    return array


_JSON_NAMES = {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}


def _parse(text, path: Path) -> dict:
    """The JSON metadata record, or a ``ValueError`` naming the file and what is wrong."""
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"{path} is corrupt: its metadata is not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        kind = "null" if meta is None else _JSON_NAMES.get(type(meta), type(meta).__name__)
        raise ValueError(
            f"{path} is not a tensorpanda factors file: its metadata is a JSON {kind}, "
            "not a record"
        )
    return meta


def _read_safetensors(path: Path) -> tuple[dict, dict]:
    """Metadata and arrays of a safetensors file, or a ``ValueError`` saying why not."""
    try:
        with safe_open(str(path), framework="np") as handle:
            meta = (handle.metadata() or {}).get("tensorpanda")
            arrays = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError, TypeError) as err:
        raise ValueError(
            f"{path} is not a readable safetensors file (truncated or of another format): {err}"
        ) from None
    if meta is None:
        raise ValueError(f"{path} is a safetensors file but not a tensorpanda factors file")
    return _parse(meta, path), arrays


def _read_npz(path: Path) -> tuple[dict, dict]:
    """Metadata and arrays of an ``.npz`` file (pickle refused), or a ``ValueError``."""
    try:
        data = np.load(path, allow_pickle=False)
        if not hasattr(data, "files"):  # an .npy file renamed: one array, no record
            raise ValueError("it holds a single array, not named arrays")
        with data:
            arrays = {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise ValueError(
            f"{path} is not a readable .npz file (truncated or of another format): {err}"
        ) from None
    if "metadata" not in arrays:
        raise ValueError(f"{path} is an .npz file but not a tensorpanda factors file")
    record = arrays.pop("metadata")
    if record.ndim != 0 or record.dtype.kind != "U":
        raise ValueError(f"{path} is corrupt: its metadata is not a JSON string")
    return _parse(str(record), path), arrays


def _check(meta: dict, arrays: dict, path: Path) -> None:
    """Refuse foreign, newer, incomplete or inconsistent files before anything is built."""
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a tensorpanda factors file (format {meta.get('format')!r})"
        )
    version = meta.get("format_version")
    if _is_int(version) and version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written by a newer tensorpanda (format version {version}): "
            "upgrade tensorpanda to read it"
        )
    problem = _problem(meta, arrays)
    if problem is not None:
        prefix = "is incomplete" if problem.startswith("it lacks") else "is corrupt"
        raise ValueError(f"{path} {prefix}: {problem}")


def _is_int(value) -> bool:
    """A JSON integer (``True`` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _problem(meta: dict, arrays: dict) -> str | None:
    """What is wrong with a factors record and its arrays (one phrase), or None.

    The one list of rules, used by the reader (on a file) and by the writer (on what it is
    about to write), so that every file written can be read back.
    """
    missing = [key for key in ("A", "P") if key not in arrays]
    missing += [
        key
        for key in ("format_version", "model", "appearances", "spatial_shape")
        if key not in meta
    ]
    if missing:
        return f"it lacks {', '.join(missing)}"
    version = meta.get("format_version")
    if not (_is_int(version) and 1 <= version):
        return f"its format version {version!r} is not a positive integer"
    model, appearances = meta["model"], meta["appearances"]
    if not isinstance(model, str) or model not in APPEARANCES:
        return f"its model {model!r} is not one of {', '.join(APPEARANCES)}"
    if not isinstance(appearances, str) or appearances not in APPEARANCES[model]:
        return (
            f"its appearances constraint {appearances!r} is not one of "
            f"{', '.join(APPEARANCES[model])} (those of model {model!r})"
        )
    shape = meta["spatial_shape"]
    if (
        not isinstance(shape, list)
        or not shape
        or not all(_is_int(s) and s > 0 for s in shape)
    ):
        return f"its spatial shape {shape!r} is not a non-empty list of positive integers"
    if not isinstance(meta.get("info", {}), dict):
        info = meta["info"]
        kind = "null" if info is None else _JSON_NAMES.get(type(info), type(info).__name__)
        return f"its info is a JSON {kind}, not a record"
    A, P = arrays["A"], arrays["P"]
    for name, X in (("A", A), ("P", P)):
        if X.dtype.kind != "f":
            return (
                f"{name} holds {X.dtype} values, not floating point ones (factors are "
                "float16, float32 or float64)"
            )
    if A.ndim != 2 or P.ndim != 2:
        return f"A and P must be matrices, got {A.shape}, {P.shape}"
    if A.dtype != P.dtype:
        return f"A is {A.dtype} but P is {P.dtype}: factors share one dtype"
    (C, R_C), (S, R_S) = A.shape, P.shape
    if int(np.prod(shape)) != S:
        return f"P has {S} rows but the spatial shape is {tuple(shape)}"
    if not (1 <= R_C <= C):
        return f"A has {R_C} appearances (columns) for {C} channels: need 1 ≤ R_C ≤ C"
    if not (1 <= R_S <= S):
        return f"P has {R_S} parts (columns) for {S} positions: need 1 ≤ R_S ≤ S"
    if not (np.isfinite(A).all() and np.isfinite(P).all()):
        return "its factors contain NaN or inf"
    if (P < 0).any():
        return "its parts P have negative entries"
    history = arrays.get("history")
    if history is not None and (history.ndim != 1 or history.dtype.kind not in "fiu"):
        return f"its history is not a list of numbers (shape {history.shape}, {history.dtype})"
    return None

"""Recognise a generator checkpoint's format and read torch checkpoints safely.

Three formats are recognised from the file itself, without executing anything from it:

- ``"nvlabs-pickle"``: a plain pickle (stylegan2-ada-pytorch, stylegan3) whose top-level
  dict holds ``G_ema`` as a persistent object; read with
  `tensorpanda.adapters.nvlabs_pickle.load_network_pickle`. Detection only scans the
  pickle's opcodes.
- ``"genforce"``: a ``torch.save`` dict with ``generator_smooth`` or ``generator`` state
  dicts (genforce model zoo ``.pth``).
- ``"rosinality"``: a ``torch.save`` dict with ``g_ema`` (rosinality/stylegan2-pytorch).

Both torch formats are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import pickle
import pickletools
import zipfile
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import torch

__all__ = ["FORMATS", "detect_format", "read_torch_checkpoint"]

FORMATS = ("nvlabs-pickle", "genforce", "rosinality")

# torch.save's legacy (pre-zip) format starts with this pickled magic number.
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_MAX_KEYS_SHOWN = 12


def _as_path(path: Any) -> Path:
    """``path`` (str, bytes or path-like) as a Path; TypeError naming what was given."""
    if isinstance(path, bytes):
        path = path.decode()
    if not isinstance(path, (str, PathLike)):
        raise TypeError(f"a checkpoint path must be a str or os.PathLike, got "
                        f"{type(path).__name__}")
    return Path(path).expanduser()


def _exists(path: Path) -> None:
    """FileNotFoundError naming ``path`` unless it is a file (ValueError for a folder)."""
    if path.is_dir():
        raise ValueError(f"{path}: a folder, not a checkpoint file; pass the file itself")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")


def _is_torch_legacy(path: Path) -> bool:
    """Whether the file starts like a legacy (non-zip) ``torch.save`` file."""
    with open(path, "rb") as f:
        head = f.read(64)
    try:
        ops = pickletools.genops(head)
        first = next(ops)
        second = next(ops) if first[0].name == "PROTO" else first
    except Exception:  # not a pickle at all, or cut inside the first opcodes
        return False
    return second[0].name in ("LONG1", "LONG4", "LONG", "INT") and (
        second[1] == _TORCH_LEGACY_MAGIC
    )


def _is_torch_zip(path: Path) -> bool:
    """Whether a zip archive is laid out as ``torch.save`` writes one (``<name>/data.pkl``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.count("/") == 1 and n.endswith("/data.pkl") for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _scan_raw_pickle(path: Path) -> dict[str, Any]:
    """Strings and globals a raw pickle mentions, read from its opcodes (nothing runs)."""
    strings: list[str] = []
    globals_: list[str] = []
    has_g_ema = False
    recent: list[str] = []
    with open(path, "rb") as f:
        try:
            for opcode, arg, _ in pickletools.genops(f):
                name = opcode.name
                if name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
                    recent = (recent + [arg])[-2:]
                    if arg == "G_ema":
                        has_g_ema = True
                    if len(strings) < 64:
                        strings.append(arg)
                elif name == "GLOBAL":
                    globals_.append(str(arg).replace(" ", "."))
                elif name == "STACK_GLOBAL" and len(recent) == 2:
                    globals_.append(f"{recent[0]}.{recent[1]}")
                if name == "STOP":
                    break
        except Exception as error:  # opcodes cut off or invalid
            raise ValueError(
                f"{path}: truncated or corrupt pickle ({type(error).__name__}: {error})"
            ) from error
    return {"strings": strings, "globals": globals_, "has_g_ema": has_g_ema}


def detect_format(path: str | PathLike[str]) -> str:
    """The checkpoint format of ``path``: ``"nvlabs-pickle"``, ``"genforce"`` or ``"rosinality"``.

    Parameters
    ----------
    path : str or path-like
        A checkpoint file.

    Returns
    -------
    str
        One of `FORMATS`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Naming the file and what it holds, if it is none of the three formats (or
        truncated/corrupt).

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from tensorpanda.adapters.checkpoints import detect_format
    >>> path = os.path.join(tempfile.mkdtemp(), "g.pt")
    >>> torch.save({"g_ema": {"style.1.weight": torch.zeros(2, 2)}}, path)
    >>> detect_format(path)
    'rosinality'
    """
    path = _as_path(path)
    _exists(path)
    if zipfile.is_zipfile(path) or _is_torch_legacy(path):
        data = read_torch_checkpoint(path, mmap=zipfile.is_zipfile(path))
        if "g_ema" in data:
            return "rosinality"
        if "generator_smooth" in data or "generator" in data:
            return "genforce"
        keys = sorted(map(str, data))
        shown = ", ".join(keys[:_MAX_KEYS_SHOWN]) + (", ..." if len(keys) > _MAX_KEYS_SHOWN else "")
        raise ValueError(
            f"{path}: a torch checkpoint without a generator: expected 'g_ema' (rosinality) "
            f"or 'generator_smooth'/'generator' (genforce), found keys: {shown or 'none'}"
        )
    with open(path, "rb") as f:
        head = f.read(2)
    if not head or head[0] != pickle.PROTO[0]:
        raise ValueError(
            f"{path}: not a recognised checkpoint (neither a torch.save file nor a pickle)"
        )
    scan = _scan_raw_pickle(path)
    persistent = "torch_utils.persistence._reconstruct_persistent_obj" in scan["globals"]
    if scan["has_g_ema"] and persistent:
        return "nvlabs-pickle"
    if any(g.startswith("dnnlib.tflib") for g in scan["globals"]):
        raise ValueError(
            f"{path}: a TensorFlow StyleGAN pickle (dnnlib.tflib); convert it to a PyTorch "
            "network pickle with the official stylegan2-ada-pytorch legacy.py first"
        )
    what = "no G_ema entry" if not scan["has_g_ema"] else "no NVlabs persistent networks"
    raise ValueError(f"{path}: a pickle that is not an NVlabs network pickle ({what})")


def read_torch_checkpoint(path: str | PathLike[str], *, mmap: bool = False) -> dict[str, Any]:
    """``torch.load(path, map_location="cpu", weights_only=True)``, with errors naming the file.

    Parameters
    ----------
    path : str or path-like
        A ``torch.save`` file holding a dict.
    mmap : bool, default False
        Map the tensors' storage instead of reading it (zip files only).

    Returns
    -------
    dict
        The checkpoint's top-level dict.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is truncated, corrupt, not a dict, or holds objects the weights-only
        loader refuses (the message says which).

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from tensorpanda.adapters.checkpoints import read_torch_checkpoint
    >>> path = os.path.join(tempfile.mkdtemp(), "g.pth")
    >>> torch.save({"generator": {"w": torch.ones(2)}}, path)
    >>> read_torch_checkpoint(path)["generator"]["w"]
    tensor([1., 1.])
    """
    path = _as_path(path)
    _exists(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap or None)
    except pickle.UnpicklingError as error:
        if "weights_only" in str(error) or "Unsupported global" in str(error):
            from .nvlabs_pickle import UnsafeCheckpointError

            first = str(error).strip().splitlines()[0]
            raise UnsafeCheckpointError(
                f"{path}: the weights-only loader refused this checkpoint: {first}"
            ) from error
        raise ValueError(f"{path}: truncated or corrupt torch checkpoint ({error})") from error
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError,
            TypeError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        if zipfile.is_zipfile(path) and not _is_torch_zip(path):
            raise ValueError(
                f"{path}: a zip archive that is not a torch.save checkpoint (no data.pkl "
                "inside one top-level folder)"
            ) from None
        raise ValueError(
            f"{path}: truncated or corrupt torch checkpoint ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: a torch checkpoint holding {type(data).__name__}, not a dict")
    return dict(data)

"""Read NVlabs network pickles (stylegan2-ada-pytorch, stylegan3) without running their code.

An NVlabs network pickle is a plain ``pickle.dump`` of a dict such as ``{"G": ..., "D":
..., "G_ema": ..., "augment_pipe": ..., "training_set_kwargs": {...}}``. Each network is a
"persistent class" instance that pickles as a call to
``torch_utils.persistence._reconstruct_persistent_obj(meta)``, where ``meta`` holds the
source code of the network's Python module, the class name and the object's ``__dict__``
(``_init_kwargs``, ``_parameters``, ``_buffers``, ``_modules``, ...). Tensors pickle as
``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` calls whose storages are
small ``torch.save`` blobs read by ``torch.storage._load_from_bytes``.

Unpickling such a file the usual way compiles and runs the embedded source, and any other
callable the file names. Here a restricted unpickler allows only an explicit list of
globals (tensor and parameter rebuilding, ``collections.OrderedDict``, NumPy scalars and
arrays of non-object dtypes, ``dnnlib`` ``EasyDict``), replaces the persistent-object hook
by a stand-in that returns a `PersistentRecord` (the source is never compiled), reads
storage blobs with ``torch.load(weights_only=True)``, and refuses everything else with
`UnsafeCheckpointError` before it can run.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["PersistentRecord", "UnsafeCheckpointError", "load_network_pickle"]


class UnsafeCheckpointError(ValueError):
    """A checkpoint asks to run or import something outside the allow-list; it was refused."""


@dataclass(frozen=True)
class PersistentRecord:
    """What an NVlabs persistent object records: its class, constructor kwargs and state.

    ``module_name`` is inferred from the embedded source (which is never run):
    ``"training.networks"`` (stylegan2-ada-pytorch), ``"training.networks_stylegan2"`` /
    ``"training.networks_stylegan3"`` (stylegan3 repository), ``"training.augment"``, or
    ``"unknown"``. ``state`` is the pickled ``__dict__`` (``_parameters``, ``_buffers``,
    ``_modules``, ``_init_args``, ``_init_kwargs``, plain attributes); child modules in
    ``state["_modules"]`` are records too.
    """

    module_name: str
    class_name: str
    init_kwargs: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Dotted names -> tensors (parameters and persistent buffers), like ``nn.Module``."""
        out: dict[str, torch.Tensor] = {}
        self._collect(out, "")
        return out

    def _collect(self, out: dict[str, torch.Tensor], prefix: str) -> None:
        """Add this record's tensors, then its children's, under ``prefix``."""
        skip = self.state.get("_non_persistent_buffers_set") or set()
        for name, value in (self.state.get("_parameters") or {}).items():
            if value is not None:
                out[prefix + name] = value.detach()
        for name, value in (self.state.get("_buffers") or {}).items():
            if value is not None and name not in skip:
                out[prefix + name] = value.detach()
        for name, child in (self.state.get("_modules") or {}).items():
            if isinstance(child, PersistentRecord):
                child._collect(out, f"{prefix}{name}.")
            elif child is not None:
                raise ValueError(f"submodule {prefix}{name} is not a persistent record")


class _EasyDict(dict):
    """Stand-in for ``dnnlib.EasyDict`` while unpickling; converted to ``dict`` after."""


def _module_name(source: str, class_name: str) -> str:
    """Which official module a persistent class's embedded source is (read, never run)."""
    if "class SynthesisInput(" in source:
        return "training.networks_stylegan3"
    if "class AugmentPipe(" in source:
        return "training.augment"
    if "class SynthesisBlock(" in source:
        if "fused_modconv_default" in source:
            return "training.networks_stylegan2"
        return "training.networks"
    return "unknown"


def _plain(value: Any) -> Any:
    """EasyDict stand-ins -> dicts, recursively (records and tensors are left as they are)."""
    if isinstance(value, _EasyDict):
        return {k: _plain(v) for k, v in value.items()}
    if type(value) is dict:
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, OrderedDict):
        return OrderedDict((k, _plain(v)) for k, v in value.items())
    if type(value) is list:
        return [_plain(v) for v in value]
    if type(value) is tuple:
        return tuple(_plain(v) for v in value)
    return value


class _Refusal(Exception):
    """Internal: carries the refused name out of the unpickler."""


def _reconstruct_persistent_obj(meta: Any) -> PersistentRecord:
    """Stand-in for NVlabs' hook: record the class and state, never compile the source."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise _Refusal("a persistent object whose meta is not a class record")
    source = meta.get("module_src")
    class_name = meta.get("class_name")
    state = meta.get("state")
    if not isinstance(source, str) or not isinstance(class_name, str):
        raise _Refusal("a persistent object without source text or class name")
    if state is None:
        state = {}
    if not isinstance(state, dict):
        raise _Refusal(f"persistent object {class_name} with a non-dict state")
    state = _plain(state)
    init_kwargs = state.get("_init_kwargs") or {}
    if not isinstance(init_kwargs, dict):
        raise _Refusal(f"persistent object {class_name} with non-dict init kwargs")
    return PersistentRecord(_module_name(source, class_name), class_name, dict(init_kwargs), state)


def _load_storage(data: Any) -> Any:
    """Read a storage blob (``torch.save`` of one storage) with the weights-only loader."""
    if not isinstance(data, (bytes, bytearray)):
        raise _Refusal("torch.storage._load_from_bytes with a non-bytes argument")
    try:
        storage = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" in str(error):
            raise _Refusal(
                "a tensor storage blob the weights-only loader refuses: "
                + _first_reason(str(error))
            ) from None
        raise
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise _Refusal(f"a storage blob holding {type(storage).__name__}, not a storage")
    return storage


def _first_reason(message: str) -> str:
    """The line of torch's weights-only error that names what it refused."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    named = [line for line in lines if "global" in line.lower()]
    return (named or lines or ["?"])[0]


def _no_hooks(hooks: Any) -> None:
    """Tensors may carry backward hooks in a pickle; only an empty set is accepted."""
    if hooks:
        raise _Refusal("a tensor with backward hooks")


def _rebuild_tensor(storage, offset, size, stride, requires_grad, hooks, metadata=None):
    """Checked ``torch._utils._rebuild_tensor_v2``."""
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise _Refusal("_rebuild_tensor_v2 on something that is not a storage")
    _no_hooks(hooks)
    if metadata is not None and not isinstance(metadata, dict):
        raise _Refusal("_rebuild_tensor_v2 with non-dict metadata")
    return torch._utils._rebuild_tensor_v2(
        storage, offset, tuple(size), tuple(stride), bool(requires_grad), OrderedDict(), metadata
    )


def _rebuild_parameter(data, requires_grad, hooks, state=None):
    """Checked ``torch._utils._rebuild_parameter`` (the parameter's plain tensor)."""
    if not isinstance(data, torch.Tensor):
        raise _Refusal("_rebuild_parameter on something that is not a tensor")
    _no_hooks(hooks)
    if state:
        raise _Refusal("a parameter with extra Python state")
    return torch.nn.Parameter(data, bool(requires_grad))


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """Checked ``numpy.core.multiarray.scalar``: fixed-size dtypes from raw bytes only."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise _Refusal("numpy scalar of an object dtype")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_reconstruct(cls: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    """Checked ``numpy.core.multiarray._reconstruct``: plain ndarrays only."""
    if cls is not np.ndarray:
        raise _Refusal(f"numpy _reconstruct of {cls!r}")
    return np.ndarray.__new__(np.ndarray, (0,), np.uint8)


def _latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
    """Checked ``_codecs.encode``: how protocol 2 pickles bytes (latin-1 text -> bytes)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refusal("_codecs.encode other than latin-1 text to bytes")
    return text.encode("latin1")


_TORCH_DTYPES = {
    name for name in dir(torch) if isinstance(getattr(torch, name, None), torch.dtype)
}

# (module, name) -> the object the unpickler gets instead of importing it.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("dnnlib", "EasyDict"): _EasyDict,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("_codecs", "encode"): _latin1_bytes,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
}


class _RestrictedUnpickler(pickle._Unpickler):  # the pure-Python one: opcodes overridable
    """Unpickler that resolves only allow-listed globals and checks BUILD / NEWOBJ."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3:  # Python 2 names, as the standard unpickler maps them
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _TORCH_DTYPES:
            return getattr(torch, name)
        raise _Refusal(f"global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise _Refusal("a persistent id (not an NVlabs network pickle)")

    def _newobj(self, cls: Any) -> None:
        """NEWOBJ may only create the dict-like stand-ins."""
        if cls not in (_EasyDict, OrderedDict):
            raise _Refusal(f"creating an instance of {getattr(cls, '__name__', cls)!r}")

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack[-1]
        self._newobj(cls)
        self.stack[-1] = cls.__new__(cls, *args)

    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self._newobj(cls)
        self.append(cls.__new__(cls, *args, **kwargs))

    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def load_build(self) -> None:
        """BUILD (``__setstate__``) only on NumPy arrays/dtypes and the dict stand-ins."""
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, np.ndarray) and type(inst) is np.ndarray:
            if not isinstance(state, tuple) or not state:
                raise _Refusal("numpy array with a malformed state")
            dtype = next((s for s in state if isinstance(s, np.dtype)), None)
            if dtype is None or dtype.hasobject:
                raise _Refusal("numpy array of an object dtype")
            inst.__setstate__(state)
        elif type(inst) is np.dtype or isinstance(inst, np.dtype):
            inst.__setstate__(state)
        elif type(inst) in (_EasyDict, OrderedDict) and not state:
            pass
        else:
            raise _Refusal(f"setting the state of a {type(inst).__name__}")

    dispatch[pickle.BUILD[0]] = load_build


def load_network_pickle(path: str | PathLike[str]) -> dict[str, Any]:
    """Read an NVlabs network pickle without executing anything from it.

    Parameters
    ----------
    path : str or path-like
        A ``.pkl`` written by stylegan2-ada-pytorch or stylegan3 (e.g. a model-zoo file).

    Returns
    -------
    dict
        The pickled top-level dict: each network (``"G_ema"``, ``"G"``, ``"D"``, ...) as a
        `PersistentRecord`, tensors as CPU torch tensors, ``EasyDict`` as ``dict``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    UnsafeCheckpointError
        If the file names a global outside the allow-list (the message names it), or
        otherwise asks for more than tensors and plain data. Nothing from it has run.
    ValueError
        If the file is truncated or corrupt, or not a pickled dict.

    Examples
    --------
    >>> import pickle, tempfile, os
    >>> from tensorpanda.adapters.nvlabs_pickle import load_network_pickle
    >>> path = os.path.join(tempfile.mkdtemp(), "plain.pkl")
    >>> with open(path, "wb") as f:
    ...     pickle.dump({"training_set_kwargs": {"resolution": 32}}, f)
    >>> load_network_pickle(path)
    {'training_set_kwargs': {'resolution': 32}}
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: a torch.save zip archive, not an NVlabs network pickle "
            "(genforce/rosinality checkpoints are read with torch.load)"
        )
    with open(path, "rb") as f:
        try:
            result = _RestrictedUnpickler(f).load()
        except _Refusal as refusal:
            hint = ""
            if "tflib" in str(refusal):
                hint = " (a TensorFlow StyleGAN pickle: convert it with the official legacy.py)"
            raise UnsafeCheckpointError(
                f"{path}: refused to unpickle: the file asks for {refusal}, which is not on "
                f"the allow-list; nothing from it was run{hint}"
            ) from None
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError,
                KeyError, AttributeError, RuntimeError, MemoryError, OverflowError,
                UnicodeDecodeError) as error:
            raise ValueError(
                f"{path}: truncated or corrupt network pickle "
                f"({type(error).__name__}: {error})"
            ) from error
    if not isinstance(result, dict):
        raise ValueError(f"{path}: not an NVlabs network pickle (holds {type(result).__name__})")
    return _plain(result)

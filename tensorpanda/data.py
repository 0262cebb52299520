"""The user's data as a stream of batches of shape (B, C, S).

Feature maps ``Z`` of shape (N, C, S) or (N, C, H, W) may come as an in-memory tensor of any
backend or a numpy memmap (read in slices of ``batch_size``), a callable returning a fresh
iterable of batches on each call, or an iterable of batches (a list, an adapter's
``FeatureStream``, a DataLoader). Fits that need several passes (R_C < C) need anything but a
one-shot iterator.
"""

from __future__ import annotations

import itertools
import numbers
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import tensorly as tl

from . import _backend as B

# Target size of one batch read from an in-memory array: large enough for matrix products
# to run near peak, small enough that memory stays O(batch).
BATCH_BYTES = 128 * 2**20


def _is_array(x) -> bool:
    """Duck-typed: numpy, torch, jax arrays and memmaps, without importing torch."""
    return hasattr(x, "shape") and hasattr(x, "ndim") and not isinstance(x, (str, bytes))


def dtype_kind_size(x) -> tuple[str, int]:
    """numpy's dtype kind ('f', 'i', 'u', 'b', 'c', 'O') and the itemsize of an array's dtype,
    read from the dtype object (never its string: ``>f8`` is a float64), without importing
    torch."""
    dtype = getattr(x, "dtype", None)
    if type(dtype).__module__.startswith("torch"):
        if dtype.is_complex:
            kind = "c"
        elif dtype.is_floating_point:
            kind = "f"
        elif dtype is sys.modules["torch"].bool:  # x is a torch tensor: torch is imported
            kind = "b"
        else:
            kind = "i" if dtype.is_signed else "u"
        return kind, int(dtype.itemsize)
    if dtype is None:  # np.dtype(None) would be float64
        return "O", 0
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:
        return "O", 0
    kind = np_dtype.kind
    if kind == "V" and np_dtype.type.__module__.startswith("ml_dtypes"):
        # jax's extra number types (bfloat16, float8_*, int4) are numpy "void" dtypes
        kind = "i" if np_dtype.name.startswith(("int", "uint")) else "f"
    return kind, int(np_dtype.itemsize)


def _dtype_label(x) -> str:
    """The dtype as users know it, for messages."""
    return str(getattr(x, "dtype", "")).replace("torch.", "") or type(x).__name__


def solver_dtype_name(x) -> str:
    """The precision a fit computes in: ``"float64"`` for floats of 8 bytes or more, integer
    and bool data (as scikit-learn), ``"float32"`` for smaller real floats; TypeError for
    complex or non-numeric data. Read by kind and size, so a big-endian ``>f8`` is float64.
    """
    kind, itemsize = dtype_kind_size(x)
    if kind == "c":
        raise TypeError(
            f"complex data ({_dtype_label(x)}) is not supported: factorise the real and "
            "imaginary parts separately or their magnitude"
        )
    if kind not in "fiub":  # object, strings, bytes, dates: nothing to factorise
        raise TypeError(
            f"data of dtype {_dtype_label(x)} is not numeric: pass an array of real numbers"
        )
    return "float64" if kind in "iub" or itemsize >= 8 else "float32"


def backend_context(sample, dtype_name: str) -> dict:
    """The context (dtype; device on pytorch) of factors computed from ``sample``."""
    name = tl.get_backend()
    if name == "pytorch":
        import torch

        device = sample.device if isinstance(sample, torch.Tensor) else torch.device("cpu")
        return {"dtype": getattr(torch, dtype_name), "device": device}
    if name == "jax":
        import jax.numpy as jnp

        return {"dtype": getattr(jnp, dtype_name)}
    return {"dtype": np.dtype(dtype_name)}


@dataclass
class Batch:
    """One batch: ``Z`` (B, C, S) on the active backend, the index of its first sample in this
    process's data (``start``) and its position in the pass (``index``).
    """

    Z: object
    start: int
    index: int

    @property
    def size(self) -> int:
        """The number of samples B in the batch."""
        return tl.shape(self.Z)[0]


class BatchSource:
    """A validated view of the data as batches (B, C, S); see the module for what ``data`` may be.

    ``kind`` is "array", "callable", "iterable" (re-iterable) or "once". ``n_channels``,
    ``spatial_shape``, ``n_samples`` and ``context`` are set as soon as known (for arrays at once,
    else from the first batch or the first complete pass). Every pass checks each batch's shape
    against the first and the sample count against earlier passes.
    """

    def __init__(self, data, batch_size: int | None = None):
        if batch_size is not None and (
            not isinstance(batch_size, numbers.Integral) or batch_size <= 0
        ):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self._data = data
        self._batch_size = batch_size
        self.kind = self._classify(data)
        self.n_channels: int | None = None
        self.spatial_shape: tuple[int, ...] | None = None
        self.n_samples: int | None = None
        self.context: dict | None = None
        self._passes = 0
        self._pending = None  # the first pass's iterator, after first_raw_batch() peeked
        # the backend the user's batches are produced under, when a fit runs on another
        self.producer_backend: str | None = None
        if self.kind == "array":
            B.check_materialised(data, what="the data tensor")
            self._check_shape(tuple(data.shape), where="the data")
            self._set_layout(tuple(data.shape))
            self.n_samples = int(data.shape[0])
            if self.n_samples == 0:
                raise ValueError("the data holds no samples (its first dimension is 0)")
            self.context = backend_context(data, solver_dtype_name(data))

    # -- classification -------------------------------------------------------------------
    @staticmethod
    def _classify(data) -> str:
        if _is_array(data):
            return "array"
        if isinstance(data, (str, bytes, dict)) or isinstance(data, numbers.Number):
            raise TypeError(
                f"data must be an array of shape (N, C, S) or (N, C, H, W), a callable "
                f"returning batches, or an iterable of batches, not {type(data).__name__}"
            )
        if callable(data):
            return "callable"
        if isinstance(data, Iterable):
            return "once" if iter(data) is data else "iterable"
        raise TypeError(
            f"data of type {type(data).__name__} is neither an array, a callable nor an "
            "iterable of batches"
        )

    @property
    def reiterable(self) -> bool:
        """Whether the data can be read more than once (anything but a one-shot iterator)."""
        return self.kind != "once"

    @property
    def n_positions(self) -> int | None:
        """The number of spatial positions S = H·W, or None while the layout is unknown."""
        return None if self.spatial_shape is None else int(np.prod(self.spatial_shape))

    @property
    def passes(self) -> int:
        """How many complete passes over the data have been made."""
        return self._passes

    # -- validation ---------------------------------------------------------------------
    @staticmethod
    def _check_shape(shape: tuple, where: str) -> None:
        if len(shape) not in (3, 4):
            raise ValueError(
                f"{where} has {len(shape)} dimensions (shape {shape}); expected (N, C, S) or "
                "(N, C, H, W): add a sample axis for a single sample with Z[None]"
            )
        if any(int(s) == 0 for s in shape[1:]):
            raise ValueError(f"{where} has an empty channel or spatial mode (shape {shape})")

    def _set_layout(self, shape: tuple) -> None:
        channels, spatial = int(shape[1]), tuple(int(s) for s in shape[2:])
        if self.n_channels is None:
            self.n_channels, self.spatial_shape = channels, spatial
        elif (channels, spatial) != (self.n_channels, self.spatial_shape):
            raise ValueError(
                f"a batch has per-sample shape {(channels, *spatial)} but earlier batches had "
                f"{(self.n_channels, *self.spatial_shape)}: every sample must have the same "
                "channels and spatial size"
            )

    # -- iteration ------------------------------------------------------------------------
    def first_raw_batch(self):
        """The first batch as given (the array itself for an array), read without losing it:
        the first pass still starts with it. None if the data yields nothing."""
        if self.kind == "array":
            return self._data
        if self._pending is None:
            if self._passes > 0:
                raise ValueError("first_raw_batch() is for before the first pass")
            with tl.backend_context(self.producer_backend or tl.get_backend()):
                batches = iter(self._fresh_batches())
                first = next(batches, None)
            if first is None:
                return None
            self._pending = (first, itertools.chain([first], batches))
        return self._pending[0]

    def read_through_numpy(self) -> None:
        """From now on read an array in host memory through one numpy view of it (no copy
        for numpy and torch; for jax one transfer, instead of one sliced copy per batch)."""
        if self.kind == "array":
            self._data = B.to_host(self._data)

    def _fresh_batches(self):
        if self.kind == "callable":
            produced = self._data()
            if _is_array(produced):
                raise TypeError(
                    "a data callable must return an iterable of batches; it returned one "
                    "array: pass the array itself instead"
                )
            return produced
        return self._data

    def _raw_batches(self) -> Iterator:
        if self._pending is not None:
            batches, self._pending = self._pending[1], None
            yield from batches
        elif self.kind == "array":
            n = self.n_samples
            size = self._batch_size or self._default_batch_size()
            for start in range(0, n, size):
                yield self._data[start : start + size]
        elif self.kind == "callable":
            yield from self._fresh_batches()
        else:
            if self.kind == "once" and self._passes > 0:
                raise ValueError(
                    "this fit needs another pass over the data, but the data is a one-shot "
                    "iterator (a generator) that is used up: pass a list of batches, an "
                    "array, or a callable that returns a new iterator on each call"
                )
            yield from self._data

    def _default_batch_size(self) -> int:
        # bytes per entry in the precision the batch is converted to (float32 or float64)
        itemsize = 8 if self.context and B.dtype_name(self.context) == "float64" else 4
        per_sample = self.n_channels * self.n_positions * itemsize
        return max(1, BATCH_BYTES // per_sample)

    def _produced(self) -> Iterator:
        """The raw batches, each produced under ``producer_backend`` when one is set."""
        if self.producer_backend is None:
            yield from self._raw_batches()
            return
        batches, end = self._raw_batches(), object()
        while True:
            with tl.backend_context(self.producer_backend):
                raw = next(batches, end)
            if raw is end:
                return
            yield raw

    def __iter__(self) -> Iterator[Batch]:
        start = 0
        index = 0
        for raw in self._produced():
            if not _is_array(raw):
                raise TypeError(
                    f"batch {index} is a {type(raw).__name__}, not an array of shape "
                    "(B, C, S) or (B, C, H, W)"
                )
            B.check_materialised(raw, what=f"batch {index}")
            shape = tuple(raw.shape)
            self._check_shape(shape, where=f"batch {index}")
            self._set_layout(shape)
            if shape[0] == 0:
                continue
            if self.context is None:
                self.context = backend_context(raw, solver_dtype_name(raw))
            Z = B.to_backend(raw, self.context)
            Z = tl.reshape(Z, (shape[0], self.n_channels, self.n_positions))
            yield Batch(Z=Z, start=start, index=index)
            start += shape[0]
            index += 1
        if index == 0:
            raise ValueError("the data yielded no batches (or only empty ones)")
        if self.n_samples is None:
            self.n_samples = start
        elif start != self.n_samples:
            raise ValueError(
                f"the data yielded {start} samples on this pass but {self.n_samples} on an "
                "earlier one: a data callable must return the same samples on every call"
            )
        self._passes += 1


def as_source(data, batch_size: int | None = None) -> BatchSource:
    """``data`` as a `BatchSource`; a source is returned as is (``batch_size`` ignored)."""
    if isinstance(data, BatchSource):
        return data
    return BatchSource(data, batch_size=batch_size)


def describe_nonfinite(batch: Batch) -> str:
    """Where a batch's NaN or inf sit (for error messages), or that its squares overflow."""
    host = tl.to_numpy(batch.Z)
    bad = ~np.isfinite(host)
    if not bad.any():
        return (
            f"batch {batch.index} is finite but its squared values overflow "
            f"{host.dtype}: rescale the data or pass it as float64"
        )
    sample = int(np.argwhere(bad.any(axis=(1, 2)))[0, 0]) + batch.start
    kinds = [name for name, test in (("NaN", np.isnan), ("inf", np.isinf)) if test(host).any()]
    return f"sample {sample} (batch {batch.index}) contains {' and '.join(kinds)}"


def check_finite(batch: Batch, before: str) -> None:
    """ValueError naming the first sample of ``batch`` that holds NaN or inf (as a fit's
    message does); ``before`` completes "... replace them before <before>". One reduction
    when the batch is finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(B.scalar(tl.sum(batch.Z))):
            return
    if np.isfinite(tl.to_numpy(batch.Z)).all():
        return  # finite values whose sum overflows
    raise ValueError(
        f"the data contains non-finite values: {describe_nonfinite(batch)}. Remove or "
        f"replace them (e.g. numpy.nan_to_num) before {before}"
    )

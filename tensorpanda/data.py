"""The user's data as a stream of batches of shape (B, C, S).

A data set of feature maps ``Z`` has shape (N, C, S) or (N, C, H, W). It may be

- an in-memory tensor of any backend, or a numpy memmap: read in slices of ``batch_size``;
- a callable returning a fresh iterable of batches each time it is called;
- an iterable of batches (a list, a ``FeatureStream`` from an adapter, a DataLoader, ...).

Solvers that need several passes over the data (ranks R_C < C) need a source that can be
iterated more than once: anything but a one-shot iterator or generator object.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import tensorly as tl

from . import _backend as B

# Target size of one batch read from an in-memory array: large enough for matrix products
# to run near peak, small enough that memory stays O(batch).
BATCH_BYTES = 128 * 2**20


def _is_array(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "ndim") and not isinstance(x, (str, bytes))


def _dtype_kind(x) -> str:
    """'f' float, 'i'/'u'/'b' integer/bool, 'c' complex, 'O' other (no torch import)."""
    name = str(getattr(x, "dtype", "")).replace("torch.", "")
    if name.startswith(("float", "bfloat", "half", "double")):
        return "f"
    if name.startswith("complex"):
        return "c"
    if name.startswith(("int", "uint", "bool", "long", "short")):
        return name[0] if name[0] in "iub" else "i"
    try:
        return np.dtype(name).kind
    except TypeError:
        return "O"


def solver_dtype_name(x) -> str:
    """The precision a fit computes in: float64 for float64, integer and boolean data (like
    scikit-learn, integers are promoted to float64), float32 for other real floating types.

    That is: float64 and integer or boolean data give ``"float64"``; every other real
    floating type (float32, float16, bfloat16) gives ``"float32"``. The dtype is read from
    its name, so numpy, torch and jax arrays are handled without importing torch.

    Parameters
    ----------
    x : array-like
        Any object with a ``dtype`` attribute (numpy, torch or jax array).

    Returns
    -------
    str
        ``"float32"`` or ``"float64"``: the precision the factors are computed in.

    Raises
    ------
    TypeError
        If ``x`` is complex, or its dtype is not numeric (e.g. object arrays).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import solver_dtype_name
    >>> [solver_dtype_name(np.zeros(2, dtype=d)) for d in ("float64", "float16", "int8", "bool")]
    ['float64', 'float32', 'float64', 'float64']
    >>> solver_dtype_name(np.zeros(2, dtype=complex))
    Traceback (most recent call last):
    ...
    TypeError: complex data (complex128) is not supported: ...
    """
    name = str(getattr(x, "dtype", "")).replace("torch.", "")
    kind = _dtype_kind(x)
    if kind == "c":
        raise TypeError(
            f"complex data ({name}) is not supported: factorise the real and imaginary parts "
            "separately or their magnitude"
        )
    if kind not in "fiub":  # object, strings, bytes, dates: nothing to factorise
        raise TypeError(
            f"data of dtype {name or type(x).__name__} is not numeric: pass an array of "
            "real numbers"
        )
    if name in ("float64", "double") or kind in "iub":
        return "float64"
    return "float32"


def backend_context(sample, dtype_name: str) -> dict:
    """The context (dtype, device) of factors computed from ``sample`` on the active backend.

    Parameters
    ----------
    sample : array-like
        An array of the data; with the pytorch backend, a torch tensor's device is kept
        (anything else gives the CPU).
    dtype_name : str
        The solver's dtype, e.g. from :func:`solver_dtype_name` (``"float32"`` or
        ``"float64"``).

    Returns
    -------
    dict
        ``{"dtype": ...}`` in the active backend's dtype type, plus ``"device"`` with the
        pytorch backend.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import backend_context
    >>> backend_context(np.zeros(3), "float32")  # on the numpy backend
    {'dtype': dtype('float32')}
    """
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
    """One batch: ``Z`` of shape (B, C, S) on the active backend, and its sample offset.

    Attributes
    ----------
    Z : tensor of shape (B, C, S)
        The samples of the batch, spatial dimensions flattened, in the solver's dtype.
    start : int
        The index of the batch's first sample in the whole data (per process).
    index : int
        The batch's position in the pass (0 for the first non-empty batch).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import Batch
    >>> batch = Batch(Z=np.zeros((2, 3, 4)), start=6, index=3)
    >>> batch.size, batch.start
    (2, 6)
    """

    Z: object
    start: int
    index: int

    @property
    def size(self) -> int:
        """The number of samples B in the batch.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.data import Batch
        >>> Batch(Z=np.zeros((5, 3, 4)), start=0, index=0).size
        5
        """
        return tl.shape(self.Z)[0]


class BatchSource:
    """A uniform, validated view of the data as batches of shape (B, C, S).

    Parameters
    ----------
    data : array-like, callable or iterable
        See the module docstring.
    batch_size : int, optional
        Samples per batch when ``data`` is an array (default: about 128 MiB per batch).

    Attributes
    ----------
    kind : str
        ``"array"``, ``"callable"``, ``"iterable"`` (re-iterable, e.g. a list) or ``"once"``
        (a one-shot iterator or generator).
    n_channels : int or None
        C; None until known (for non-arrays, until the first batch is read).
    spatial_shape : tuple of int or None
        The per-sample spatial shape, (S,) or (H, W); None until known.
    n_samples : int or None
        N; for non-arrays, None until a first pass is complete.
    context : dict or None
        The dtype (and device) the batches are converted to, see :func:`backend_context`;
        set from the first array seen.

    Raises
    ------
    ValueError
        If ``batch_size`` is not a positive integer, or an array ``data`` has not 3 or 4
        dimensions, an empty channel or spatial mode, or no samples.
    TypeError
        If ``data`` is a string, bytes, dict, number or other non-iterable, or an array
        whose dtype is complex or not numeric.

    Notes
    -----
    Iterating over the source yields :class:`Batch` objects of shape (B, C, S), checks
    every batch's shape against the first one's and counts the passes. A pass raises
    ``TypeError`` for a batch that is not an array, and ``ValueError`` for a batch of a
    wrong shape, for data that yields no batches or a different number of samples than an
    earlier pass, and for a second pass over a one-shot iterator.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import BatchSource
    >>> Z = np.random.default_rng(0).standard_normal((5, 3, 2, 2))  # (N, C, H, W)
    >>> source = BatchSource(Z, batch_size=2)
    >>> [(b.start, tuple(b.Z.shape)) for b in source]
    [(0, (2, 3, 4)), (2, (2, 3, 4)), (4, (1, 3, 4))]
    >>> source.n_samples, source.n_channels, source.spatial_shape, source.passes
    (5, 3, (2, 2), 1)
    >>> BatchSource(iter([Z])).kind  # readable once only
    'once'
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
        if self.kind == "array":
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
        """Whether the data can be read more than once (anything but a one-shot iterator).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.data import BatchSource
        >>> Z = np.zeros((2, 3, 4))
        >>> BatchSource([Z]).reiterable, BatchSource(z for z in [Z]).reiterable
        (True, False)
        """
        return self.kind != "once"

    @property
    def n_positions(self) -> int | None:
        """The number of spatial positions S = H·W, or None while the layout is unknown.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.data import BatchSource
        >>> BatchSource(np.zeros((2, 3, 4, 5))).n_positions
        20
        """
        return None if self.spatial_shape is None else int(np.prod(self.spatial_shape))

    @property
    def passes(self) -> int:
        """How many times the data has been read so far.

        Only complete passes count.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorpanda.data import BatchSource
        >>> source = BatchSource(np.zeros((4, 3, 5)), batch_size=3)
        >>> for _ in range(2):
        ...     _ = list(source)
        >>> source.passes
        2
        """
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
    def _raw_batches(self) -> Iterator:
        if self.kind == "array":
            n = self.n_samples
            size = self._batch_size or self._default_batch_size()
            for start in range(0, n, size):
                yield self._data[start : start + size]
        elif self.kind == "callable":
            produced = self._data()
            if _is_array(produced):
                raise TypeError(
                    "a data callable must return an iterable of batches; it returned one "
                    "array: pass the array itself instead"
                )
            yield from produced
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

    def __iter__(self) -> Iterator[Batch]:
        start = 0
        index = 0
        for raw in self._raw_batches():
            if not _is_array(raw):
                raise TypeError(
                    f"batch {index} is a {type(raw).__name__}, not an array of shape "
                    "(B, C, S) or (B, C, H, W)"
                )
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
    """Wrap ``data`` in a :class:`BatchSource` (an existing source is returned as is).

    Parameters
    ----------
    data : array-like, callable, iterable or BatchSource
        The data, in any form :class:`BatchSource` accepts.
    batch_size : int, optional
        Samples per batch when ``data`` is an array; ignored when ``data`` is already a
        :class:`BatchSource`.

    Returns
    -------
    BatchSource
        ``data`` itself if it is a :class:`BatchSource`, else a new source over it.

    Raises
    ------
    TypeError, ValueError
        As :class:`BatchSource`, for data it cannot read.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import as_source
    >>> source = as_source(np.zeros((10, 3, 4)), batch_size=4)
    >>> as_source(source) is source, [b.size for b in source]
    (True, [4, 4, 2])
    """
    if isinstance(data, BatchSource):
        return data
    return BatchSource(data, batch_size=batch_size)


def describe_nonfinite(batch: Batch) -> str:
    """Say where the non-finite values of a batch sit (for error messages).

    Parameters
    ----------
    batch : Batch
        A batch whose statistics came out non-finite.

    Returns
    -------
    str
        The first sample (index in the whole data) that holds NaN or inf, and which of the
        two the batch holds; or, for a finite batch, that its squares overflow its dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.data import Batch, describe_nonfinite
    >>> Z = np.zeros((3, 2, 4))
    >>> Z[1, 0, 2] = np.nan
    >>> describe_nonfinite(Batch(Z=Z, start=10, index=2))
    'sample 11 (batch 2) contains NaN'
    """
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

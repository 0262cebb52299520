"""Device and dtype arguments of the adapters, checked before any weights are read.

A device string torch cannot parse, or a device this machine lacks (``cuda`` without a
GPU), would otherwise fail deep inside torch, after the checkpoint was read, with an
error that seems to blame the checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch

_DEVICE_HINT = "e.g. cpu, cuda, cuda:1 or mps"


def torch_device(device: Any) -> torch.device:
    """``device`` (None, a string, an index or a ``torch.device``) as an available device."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise TypeError(f"device must be a string such as 'cuda' ({_DEVICE_HINT}) or a "
                        f"torch.device, got {type(device).__name__}")
    if isinstance(device, int):
        if device < 0:
            raise ValueError(f"device index must be >= 0, got {device}")
        device = f"cuda:{device}"
    try:
        device = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"device {device!r} is not a torch device ({_DEVICE_HINT})") from None
    kind = device.type
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(device)!r}: no CUDA GPU is available on this machine "
                             "(torch.cuda.is_available() is False); use device 'cpu'")
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {str(device)!r}: this machine has {count} CUDA "
                             f"GPU(s), cuda:0..cuda:{count - 1}")
    elif kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {str(device)!r}: the Apple MPS backend is not available "
                             "on this machine; use device 'cpu'")
    elif kind == "meta":
        raise ValueError("device 'meta' holds no weights: a generator cannot run there")
    elif kind != "cpu":
        module = getattr(torch, kind, None)
        available = getattr(module, "is_available", None)
        if callable(available) and not available():
            raise ValueError(f"device {str(device)!r} is not available on this machine")
    return device


def torch_dtype(dtype: Any) -> torch.dtype | None:
    """``dtype`` (None, a floating ``torch.dtype`` or its name) as a floating torch dtype."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
        found = getattr(torch, name, None)
        if not isinstance(found, torch.dtype):
            raise ValueError(f"dtype {dtype!r} is not a torch dtype (e.g. float32, float16, "
                             "bfloat16)")
        dtype = found
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch dtype such as torch.float16 (or its name), "
                        f"got {dtype!r}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype (float32, float16, bfloat16, "
                         f"float64) for a generator's weights, got {dtype}")
    return dtype

"""Small pieces the generator networks share.

Two normalisations of the same maths are kept, each written as its official code computes
it (NVlabs multiply by an rsqrt, genforce divide by a sqrt), so that every network stays
within rounding of its own reference outputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit mean square, as the NVlabs mapping networks do."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Divide each feature vector (axis 1) by its root mean square, as genforce does."""
    return x / torch.sqrt(torch.mean(x**2, dim=1, keepdim=True) + eps)


def plain(value: Any) -> Any:
    """Nested mappings (EasyDict stand-ins, records' dicts) as plain dicts with string keys,
    sequences as lists: constructor kwargs read from a checkpoint."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def short_keys(keys: list[Any], limit: int = 8) -> str:
    """A key list for an error message, cut after ``limit`` names."""
    shown = ", ".join(str(k) for k in keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


class ToRGB(nn.Module):
    """1×1 convolution to image channels, weights scaled by 1/√fan-in at run time (genforce's
    PGGAN and StyleGAN output layers; state keys ``weight`` and ``bias``)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 1, 1))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.gain = 1.0 / math.sqrt(c_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.gain, self.bias)

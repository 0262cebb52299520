"""A re-iterable stream of feature-map batches, computed on demand."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from .latents import Latents, batch_slices

if TYPE_CHECKING:
    from .base import Adapter

__all__ = ["FeatureStream"]


class FeatureStream:
    """Feature maps of one layer for a set of latents, computed batch by batch.

    Each ``iter()`` runs the generator again, up to the layer only, and yields float32
    tensors of shape ``(B, C, H, W)`` on the generator's device. Nothing is cached, so a
    fit that streams over it never holds all ``N`` feature maps at once, and every pass
    yields the same batches (same latents, same batch size, deterministic forward).
    Another batch size gives the same values up to float rounding: CPU matrix kernels may
    sum in another order for another batch shape.

    Made by :meth:`Adapter.features`; not meant to be built directly.

    Attributes
    ----------
    adapter : Adapter
    latents : Latents
    layer : str
        Canonical layer name (aliases resolved).
    batch_size : int
    shape : tuple of int
        ``(N, C, H, W)`` of the whole (never materialised) stack.
    n_samples : int
        ``N``.

    Examples
    --------
    >>> import torch
    >>> from tensorpanda.adapters import load
    >>> gan = load("dcgan-faces")
    >>> stream = gan.features(gan.sample_latents(48), "main.5", batch_size=16)
    >>> stream.shape, len(stream), stream.dtype
    ((48, 256, 8, 8), 3, torch.float32)
    >>> gram = sum(torch.einsum("bcs,bct->st", Z.flatten(2), Z.flatten(2))
    ...            for Z in stream)
    >>> gram.shape
    torch.Size([64, 64])

    Every pass gives the same batches:

    >>> torch.equal(next(iter(stream)), next(iter(stream)))
    True
    """

    def __init__(
        self,
        adapter: Adapter,
        latents: Latents,
        layer: str,
        batch_size: int = 64,
        progress: bool | None = None,
    ) -> None:
        self.adapter = adapter
        self.latents = latents
        self.layer = layer
        self.batch_size = batch_size
        self.progress = progress
        self._slices = batch_slices(len(latents), batch_size)

    @property
    def n_samples(self) -> int:
        """Number of samples ``N``."""
        return len(self.latents)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(N, C, H, W)``."""
        c, h, w = self.adapter.layers[self.layer]
        return (self.n_samples, c, h, w)

    @property
    def dtype(self) -> torch.dtype:
        """Always ``torch.float32``, whatever the generator's precision."""
        return torch.float32

    @property
    def device(self) -> torch.device:
        """The generator's device, where the batches are made."""
        return self.adapter.device

    def __len__(self) -> int:
        """Number of batches one pass yields."""
        return len(self._slices)

    def __iter__(self) -> Iterator[torch.Tensor]:
        bar = tqdm(
            self._slices,
            desc=f"{self.adapter.name} {self.layer}",
            unit="batch",
            disable=_tqdm_disable(self.progress),
            leave=False,
        )
        for index in bar:
            yield self.adapter._capture(self.latents[index], self.layer)

    def __repr__(self) -> str:
        return (
            f"FeatureStream({self.adapter.name!r}, layer={self.layer!r}, shape={self.shape}, "
            f"batch_size={self.batch_size})"
        )


def _tqdm_disable(progress: bool | None) -> bool | None:
    # tqdm's disable=None turns the bar off when the output is not a terminal.
    return None if progress is None else not progress

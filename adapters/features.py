"""A re-iterable stream of feature-map batches, computed on demand.

The stream knows nothing of adapters: it is given a ``capture(latents) -> features``
callable, so that the dependency goes one way (the adapter builds streams).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import torch
from tqdm import tqdm

from .latents import Latents, batch_slices

__all__ = ["FeatureStream"]

T = TypeVar("T")


class FeatureStream:
    """Feature maps of one layer for a set of latents, computed batch by batch.

    Each ``iter()`` runs the generator again, up to the layer only, and yields float32
    tensors of shape ``(B, C, H, W)`` on the generator's device. Nothing is cached, so a
    fit that streams over it never holds all ``N`` feature maps at once, and every pass
    yields the same batches (same latents, same batch size, deterministic forward).
    Another batch size gives the same values up to float rounding: CPU matrix kernels may
    sum in another order for another batch shape.

    Made by [`Adapter.features`][adapters.Adapter.features]; not meant to be built directly.

    Parameters
    ----------
    capture : callable
        ``capture(latents) -> features``: the float32 ``(B, C, H, W)`` feature maps of the
        layer for one batch of latents.
    latents : Latents
        All the inputs; cut into batches of ``batch_size``.
    layer : str
        Canonical layer name (aliases resolved).
    layer_shape : tuple of int
        ``(C, H, W)`` of one sample's feature maps.
    batch_size : int, default 64
    progress : bool, optional
        Show a tqdm bar on each pass; ``None`` shows it only on a terminal.
    device : torch.device, optional
        Where the batches are made: the generator's device when the stream is made; CPU
        by default.
    name : str, default "generator"
        The generator's name, for the progress bar and the repr.

    Attributes
    ----------
    latents : Latents
    layer : str
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
        capture: Callable[[Latents], torch.Tensor],
        latents: Latents,
        layer: str,
        layer_shape: tuple[int, int, int],
        batch_size: int = 64,
        progress: bool | None = None,
        *,
        device: torch.device | str | None = None,
        name: str = "generator",
    ) -> None:
        if not callable(capture):
            raise TypeError(
                f"capture must be a callable latents -> features, got {type(capture).__name__}"
            )
        self.capture = capture
        self.latents = latents
        self.layer = layer
        self.layer_shape = tuple(int(d) for d in layer_shape)
        self.batch_size = batch_size
        self.progress = progress
        self.name = name
        self._device = torch.device("cpu" if device is None else device)
        self._slices = batch_slices(len(latents), batch_size)

    @property
    def n_samples(self) -> int:
        """Number of samples ``N``."""
        return len(self.latents)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(N, C, H, W)``."""
        return (self.n_samples, *self.layer_shape)

    @property
    def dtype(self) -> torch.dtype:
        """Always ``torch.float32``, whatever the generator's precision."""
        return torch.float32

    @property
    def device(self) -> torch.device:
        """The generator's device, where the batches are made."""
        return self._device

    def __len__(self) -> int:
        """Number of batches one pass yields."""
        return len(self._slices)

    def __iter__(self) -> Iterator[torch.Tensor]:
        for index in progress_bar(self._slices, f"{self.name} {self.layer}", self.progress):
            yield self.capture(self.latents[index])

    def __repr__(self) -> str:
        return (
            f"FeatureStream({self.name!r}, layer={self.layer!r}, shape={self.shape}, "
            f"batch_size={self.batch_size})"
        )


def progress_bar(items: Iterable[T], desc: str, progress: bool | None) -> Iterable[T]:
    """``items`` under a tqdm bar that leaves no trace; ``progress=None``: only on a terminal."""
    # tqdm's disable=None is what turns the bar off when the output is not a terminal.
    disable = None if progress is None else not progress
    return tqdm(items, desc=desc, unit="batch", disable=disable, leave=False)

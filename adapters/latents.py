"""The inputs of a generator: latent codes, optional conditioning, truncation."""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from dataclasses import dataclass

import torch

__all__ = ["Latents"]


@dataclass(frozen=True)
class Latents:
    """A batch of generator inputs, one row per sample.

    Adapters make these with ``adapter.sample_latents``; build one by hand to feed latent
    codes of your own (e.g. codes moved along an edit direction).

    Parameters
    ----------
    z : torch.Tensor
        Latent codes, shape ``(N, *latent_shape)``.
    condition : torch.Tensor, optional
        Conditioning, one row per sample, e.g. BigGAN's one-hot class vectors ``(N, K)``.
    truncation : float, optional
        Truncation value the codes were drawn with, for generators that take it as an
        input (BigGAN, and the truncation ψ of style-based generators); ``None`` for the
        others.
    ws : torch.Tensor, optional
        Only for style-based generators (StyleGAN, StyleGAN2, StyleGAN3): intermediate
        codes in W+, ``(N, num_ws, w_dim)``, or in W, ``(N, w_dim)`` (the same w at every
        layer). When given, the generator skips its mapping network and synthesises from
        these; ``z`` is kept for the record. ``adapter.to_ws(latents)`` fills them in.

    Raises
    ------
    TypeError
        If ``z`` is not a torch tensor, or ``condition`` or ``ws`` is neither a torch
        tensor nor ``None``.
    ValueError
        If ``z`` is 0-d, or ``condition`` or ``ws`` does not have one row per sample of
        ``z``.

    Examples
    --------
    >>> import torch
    >>> from tensorpanda.adapters import Latents
    >>> lat = Latents(torch.zeros(10, 100))
    >>> len(lat), len(lat[2:5])
    (10, 3)
    >>> [len(b) for b in lat.batches(4)]
    [4, 4, 2]
    """

    z: torch.Tensor
    condition: torch.Tensor | None = None
    truncation: float | None = None
    ws: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.z, torch.Tensor):
            raise TypeError(f"Latents.z must be a torch.Tensor, got {type(self.z).__name__}")
        if self.z.ndim < 1:
            raise ValueError("Latents.z must have a sample axis first, got a 0-d tensor")
        for field in ("condition", "ws"):
            value = getattr(self, field)
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"Latents.{field} must be a torch.Tensor or None, got {type(value).__name__}"
                )
            if value.ndim < 1 or value.shape[0] != self.z.shape[0]:
                raise ValueError(
                    f"Latents.{field} must have one row per sample: z has "
                    f"{self.z.shape[0]} rows, {field} has shape {tuple(value.shape)}"
                )

    def __len__(self) -> int:
        return self.z.shape[0]

    def __getitem__(self, index: int | slice) -> Latents:
        """Samples ``index`` (an int gives a batch of one), keeping the sample axis.

        Parameters
        ----------
        index : int or slice
            One sample (negative values count from the end) or a slice of samples.

        Returns
        -------
        Latents
            The selected rows of ``z``, ``condition`` and ``ws``; the same truncation.

        Raises
        ------
        IndexError
            If the int ``index`` is out of range.
        TypeError
            If ``index`` is neither an int nor a slice.

        Examples
        --------
        >>> import torch
        >>> from tensorpanda.adapters import Latents
        >>> lat = Latents(torch.arange(12.0).reshape(6, 2), torch.eye(6), truncation=0.5)
        >>> lat[-1].z, lat[-1].condition.shape, lat[-1].truncation
        (tensor([[10., 11.]]), torch.Size([1, 6]), 0.5)
        >>> len(lat[::2])
        3
        """
        if isinstance(index, bool):  # True/False are ints to Python, not sample numbers
            raise TypeError("Latents index must be an int or a slice, got bool")
        if isinstance(index, numbers.Integral):  # numpy integers too
            index = int(index)
            n = len(self)
            if not -n <= index < n:
                raise IndexError(f"sample {index} out of range for {n} latents")
            index = slice(index % n, index % n + 1)
        if not isinstance(index, slice):
            raise TypeError(f"Latents index must be an int or a slice, got {type(index).__name__}")
        cond = None if self.condition is None else self.condition[index]
        ws = None if self.ws is None else self.ws[index]
        return Latents(self.z[index], cond, self.truncation, ws)

    def batches(self, batch_size: int) -> Iterator[Latents]:
        """Consecutive batches of at most ``batch_size`` samples, in order.

        Parameters
        ----------
        batch_size : int
            A positive integer.

        Yields
        ------
        Latents
            The samples of one batch, with their conditioning and the same truncation.

        Raises
        ------
        ValueError
            If ``batch_size`` is not a positive integer (when iteration starts).

        Examples
        --------
        >>> import torch
        >>> from tensorpanda.adapters import Latents
        >>> [len(b) for b in Latents(torch.zeros(5, 2)).batches(2)]
        [2, 2, 1]
        """
        for index in batch_slices(len(self), batch_size):
            yield self[index]

    def to(
        self,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        copy: bool = False,
    ) -> Latents:
        """Move the codes and conditioning to ``device`` and cast them to ``dtype``.

        With ``copy=True`` the tensors are always new, never views of these ones.

        Parameters
        ----------
        device : torch.device or str, optional
            Where to put the tensors; by default they stay where they are.
        dtype : torch.dtype, optional
            What to cast them to; by default they keep their dtype.
        copy : bool, default False
            Always return new tensors, even when nothing moves or changes type.

        Returns
        -------
        Latents
            The truncation value is kept; ``ws``, when present, moves too.

        Examples
        --------
        >>> import torch
        >>> from tensorpanda.adapters import Latents
        >>> lat = Latents(torch.zeros(3, 4), torch.ones(3, 2))
        >>> lat64 = lat.to(dtype=torch.float64)
        >>> lat64.z.dtype, lat64.condition.dtype
        (torch.float64, torch.float64)
        >>> lat.to("cpu").z is lat.z, lat.to("cpu", copy=True).z is lat.z
        (True, False)
        """
        kw = dict(device=device, dtype=dtype, copy=copy)
        cond = None if self.condition is None else self.condition.to(**kw)
        ws = None if self.ws is None else self.ws.to(**kw)
        return Latents(self.z.to(**kw), cond, self.truncation, ws)


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Slices cutting ``range(n)`` into consecutive batches of at most ``batch_size``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]

"""Wrap any torch generator without writing an adapter class."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .base import Adapter
from .latents import Latents

__all__ = ["GenericAdapter"]


class GenericAdapter(Adapter):
    """Adapter for a generator given as a module plus a latent sampler.

    Parameters
    ----------
    generator : torch.nn.Module
        Called as ``generator(z)`` (or through ``forward``).
    latent_sampler : callable
        ``latent_sampler(n, generator) -> z`` with ``generator`` a seeded
        ``torch.Generator`` on the CPU to draw from, and ``z`` of shape
        ``(n, *latent_shape)`` (e.g. ``(n, 100, 1, 1)``).
    layers : sequence of str, optional
        Dotted names of the feature layers. ``None`` discovers them with a dry run: every
        submodule that runs once and returns a ``(B, C, H, W)`` floating tensor.
    to_image : callable, optional
        ``to_image(output) -> images`` in ``[0, 1]``; by default a Tanh output in
        ``[-1, 1]`` is mapped linearly.
    name : str, default "generic"
    forward : callable, optional
        ``forward(generator, latents) -> output`` for generators that need more than
        ``generator(z)``, e.g. ``lambda g, lat: g(lat.z, lat.condition)``.
    default_layer : str, optional
    latent_module : str, optional
        Dotted name of the first module acting on ``z``, for
        [`latent_projection`][adapters.GenericAdapter.latent_projection] (found by a dry run if
        omitted).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from tensorpanda.adapters import GenericAdapter
    >>> net = nn.Sequential(nn.ConvTranspose2d(16, 8, 4), nn.ReLU(),
    ...                     nn.ConvTranspose2d(8, 3, 4, 2, 1), nn.Tanh())
    >>> gan = GenericAdapter(net, lambda n, g: torch.randn(n, 16, 1, 1, generator=g))
    >>> gan.layers
    {'0': (8, 4, 4), '1': (8, 4, 4), '2': (3, 8, 8), '3': (3, 8, 8)}
    >>> gan.generate(gan.sample_latents(2), "1", edit=torch.zeros(8, 4, 4)).shape
    torch.Size([2, 3, 8, 8])
    """

    def __init__(
        self,
        generator: nn.Module,
        latent_sampler: Callable[[int, torch.Generator], torch.Tensor],
        layers: Sequence[str] | None = None,
        to_image: Callable[[Any], torch.Tensor] | None = None,
        name: str = "generic",
        *,
        forward: Callable[[nn.Module, Latents], Any] | None = None,
        default_layer: str | None = None,
        latent_module: str | None = None,
    ) -> None:
        if not callable(latent_sampler):
            raise TypeError("latent_sampler must be a callable (n, torch.Generator) -> tensor")
        self._latent_sampler = latent_sampler
        self._to_image_fn = to_image
        self._forward_fn = forward
        if latent_module is not None:
            self.latent_module = latent_module
        # One draw tells the latent shape; its own generator keeps callers' RNGs untouched.
        probe = self._draw(1, torch.Generator(device="cpu").manual_seed(0))
        super().__init__(
            generator, probe.shape[1:], layers, default_layer=default_layer, name=name
        )

    def _draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` codes from the user's sampler, checked, on the CPU."""
        z = self._latent_sampler(n, generator)
        if not isinstance(z, torch.Tensor) or z.ndim < 1 or z.shape[0] != n:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(
                f"latent_sampler({n}, generator) must return a tensor of shape (n, ...) with "
                f"n = {n}, got {shape}"
            )
        return z.cpu()

    def _sample_z(
        self, n: int, generator: torch.Generator, truncation: float | None
    ) -> torch.Tensor:
        """The user's sampler (no truncation input)."""
        return self._draw(n, generator)

    def _forward(self, latents: Latents) -> Any:
        """``forward(generator, latents)`` if given, else ``generator(z)``."""
        if self._forward_fn is not None:
            return self._forward_fn(self.generator, latents)
        return self.generator(latents.z)

    def _to_image(self, output: Any) -> torch.Tensor:
        """``to_image(output)`` if given, else the Tanh mapping."""
        if self._to_image_fn is not None:
            return self._to_image_fn(output)
        return super()._to_image(output)

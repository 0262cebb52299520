"""The weight of the first operation on the latent ``z``: what SeFa factorises.

SeFa's directions are the eigenvectors of ``Wᵀ W`` for the matrix ``W`` that first maps
``z`` into the network; this module finds that module by a dry run and reads ``W`` from
it, spectral normalisation included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["effective_weight", "find_latent_module", "projection_matrix"]

# Modules whose weight can be read as a matrix acting on their input.
_LINEAR_MODULES = (nn.Linear, nn.ConvTranspose2d, nn.Conv2d)


def find_latent_module(
    generator: nn.Module, z: torch.Tensor, run: Callable[[], Any], label: str
) -> str:
    """Dotted name of the first Linear/ConvTranspose2d/Conv2d whose input is ``z`` itself."""
    z = z.reshape(-1)
    found: list[str] = []
    handles = []

    def watcher(layer: str) -> Callable[[nn.Module, tuple], None]:
        def watch(module: nn.Module, inputs: tuple) -> None:
            x = inputs[0] if inputs else None
            if (
                not found
                and isinstance(x, torch.Tensor)
                and x.numel() == z.numel()
                and torch.equal(x.reshape(-1), z)
            ):
                found.append(layer)

        return watch

    # Pre-hooks see the input before the module runs; removed whatever happens.
    try:
        for layer, module in generator.named_modules():
            if isinstance(module, _LINEAR_MODULES):
                handles.append(module.register_forward_pre_hook(watcher(layer)))
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    if not found:
        raise NotImplementedError(
            f"{label}: no Linear/ConvTranspose2d/Conv2d receives z directly; set "
            "latent_module or override latent_projection()"
        )
    return found[0]


def effective_weight(module: nn.Module) -> torch.Tensor:
    """The weight a module multiplies by, spectral normalisation included."""
    from torch.nn.utils.spectral_norm import SpectralNorm

    # spectral_norm leaves the raw weight in module.weight until the first forward pass;
    # recompute the normalised one from its stored vectors instead.
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, SpectralNorm) and hook.name == "weight":
            with torch.no_grad():
                return hook.compute_weight(module, do_power_iteration=False)
    return module.weight


def projection_matrix(module: nn.Module, latent_dim: int, name: str) -> torch.Tensor:
    """``W`` (out_features x latent_dim), float32: column ``j`` is what ``z_j`` adds."""
    weight = effective_weight(module).detach().float()
    if isinstance(module, nn.Linear):
        W = weight
    elif isinstance(module, nn.ConvTranspose2d):
        # weight (in, out, kh, kw): on a 1x1 input each latent entry paints its own
        # (out, kh, kw) block, so the block, flattened, is that entry's column.
        W = weight.reshape(weight.shape[0], -1).T
    elif isinstance(module, nn.Conv2d) and weight.shape[2:] == (1, 1):
        W = weight[:, :, 0, 0]
    else:
        raise NotImplementedError(
            f"latent_projection: cannot read a matrix from {name!r} ({type(module).__name__}); "
            "override latent_projection()"
        )
    if W.shape[1] != latent_dim:
        raise ValueError(
            f"latent_projection: {name!r} takes {W.shape[1]} inputs, but z has {latent_dim} "
            "entries; override latent_projection() to select the columns acting on z"
        )
    return W.contiguous()

"""ProGAN / PGGAN generator in plain PyTorch, loaded from genforce checkpoints.

Written from the paper (Karras et al. 2018, "Progressive Growing of GANs for Improved
Quality, Stability, and Variation") and the key layout of genforce's model-zoo files.
The latent z is pixel-normalised, turned into a 4x4 map by a 4x4 convolution of the
1x1 input (the paper's dense layer), then each resolution runs (nearest 2x up-sampling
and) two 3x3 convolutions, each followed by leaky ReLU (0.2) and pixel-wise feature
normalisation; a 1x1 convolution (toRGB) of the last block gives the image. Weights are
stored unscaled (equalised learning rate: ``sqrt(2) / sqrt(fan_in)``, 1 / sqrt(fan_in)
for toRGB).

Module names (= genforce's state-dict keys): ``layer{2b}`` / ``layer{2b+1}`` are the two
convolutions of block ``b`` (resolution ``4 * 2**b``), ``output{b}`` its toRGB (only the
last one runs), ``lod`` the level-of-detail buffer (0 for a fully grown generator).
Feature layers, named like the StyleGAN ones: ``b{res}.conv0`` -> ``layer{2b}``,
``b{res}.conv1`` -> ``layer{2b+1}``; each outputs the normalised (B, C, res, res) map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._blocks import ToRGB, pixel_norm

__all__ = ["PGGANGenerator"]

_SLOPE = 0.2


class _Conv(nn.Module):
    """Equalised-learning-rate convolution, leaky ReLU, pixel norm (one PGGAN layer)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, padding: int,
                 upsample: bool = False, fused: bool = False) -> None:
        super().__init__()
        self.upsample, self.fused, self.padding = upsample, upsample and fused, padding
        shape = (c_in, c_out, kernel, kernel) if self.fused else (c_out, c_in, kernel, kernel)
        self.weight = nn.Parameter(torch.randn(shape))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.gain = math.sqrt(2.0) / math.sqrt(c_in * kernel * kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.gain
        if self.fused:
            # Up-sampling fused with the conv: a stride-2 transposed convolution whose
            # 4x4 kernel is the 3x3 one summed over the four 1-pixel shifts.
            w = F.pad(w, (1, 1, 1, 1))
            w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
            x = F.conv_transpose2d(x, w, self.bias, stride=2, padding=1)
        else:
            if self.upsample:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = F.conv2d(x, w, self.bias, padding=self.padding)
        return pixel_norm(F.leaky_relu(x, _SLOPE))



class PGGANGenerator(nn.Module):
    """PGGAN generator: z (N, z_dim) -> image (N, img_channels, H, W) in about [-1, 1].

    Parameters
    ----------
    z_dim : int
        Latent size.
    img_resolution : int
        Output side, a power of two >= 4.
    img_channels : int, default 3
    channels : sequence of int, optional
        Feature channels per resolution 4, 8, ..., img_resolution; by default
        ``min(16384 // res, 512)`` as in the paper.
    c_dim : int, default 0
        Size of a class label concatenated to the normalised z (conditional PGGAN).
    fused_scale : bool, default False
        Up-sample with a transposed convolution (weights stored (in, out, 3, 3)).
    final_tanh : bool, default False

    Attributes
    ----------
    feature_layers : dict
        Friendly name (``"b8.conv0"``) -> dotted module path (``"layer2"``).

    Examples
    --------
    >>> import torch
    >>> from tensorpanda.adapters.pggan import PGGANGenerator
    >>> G = PGGANGenerator(z_dim=8, img_resolution=16, channels=[16, 8, 4])
    >>> tuple(G(torch.randn(2, 8)).shape)
    (2, 3, 16, 16)
    >>> G.feature_layers["b8.conv1"]
    'layer3'
    """

    def __init__(
        self,
        z_dim: int,
        img_resolution: int,
        img_channels: int = 3,
        channels: Sequence[int] | None = None,
        c_dim: int = 0,
        fused_scale: bool = False,
        final_tanh: bool = False,
    ) -> None:
        super().__init__()
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        self.z_dim, self.c_dim = z_dim, c_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.final_tanh = final_tanh
        resolutions = [4 * 2**b for b in range(int(math.log2(img_resolution)) - 1)]
        if channels is None:
            channels = [min(16384 // r, 512) for r in resolutions]
        channels = [int(c) for c in channels]
        if len(channels) != len(resolutions):
            raise ValueError(f"channels needs {len(resolutions)} entries, got {len(channels)}")
        self.channels = channels
        self.register_buffer("lod", torch.zeros(()))
        self.feature_layers: dict[str, str] = {}
        for b, res in enumerate(resolutions):
            if b == 0:
                first = _Conv(z_dim + c_dim, channels[0], kernel=4, padding=3)
            else:
                first = _Conv(channels[b - 1], channels[b], kernel=3, padding=1,
                              upsample=True, fused=fused_scale)
            self.add_module(f"layer{2 * b}", first)
            self.add_module(f"layer{2 * b + 1}",
                            _Conv(channels[b], channels[b], kernel=3, padding=1))
            self.add_module(f"output{b}", ToRGB(channels[b], img_channels))
            self.feature_layers[f"b{res}.conv0"] = f"layer{2 * b}"
            self.feature_layers[f"b{res}.conv1"] = f"layer{2 * b + 1}"
        self.num_blocks = len(resolutions)
        self.eval()

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Images (N, img_channels, H, W) for latents z (N, z_dim)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        x = pixel_norm(z)
        if self.c_dim:
            if c is None or c.shape != (z.shape[0], self.c_dim):
                raise ValueError(f"this PGGAN is conditional: pass c of shape (N, {self.c_dim})")
            x = torch.cat([x, c.to(x.dtype)], dim=1)
        # genforce normalises z, appends the label, and normalises the whole input of the
        # first layer again (for an unconditional z a near no-op, kept for equal numerics).
        x = pixel_norm(x)[:, :, None, None]
        for b in range(self.num_blocks):
            x = getattr(self, f"layer{2 * b}")(x)
            x = getattr(self, f"layer{2 * b + 1}")(x)
        img = getattr(self, f"output{self.num_blocks - 1}")(x)
        return torch.tanh(img) if self.final_tanh else img

    @classmethod
    def from_checkpoint(
        cls, path: str | PathLike, device: str | torch.device = "cpu", **overrides: Any
    ) -> PGGANGenerator:
        """Build the generator from a genforce ``.pth`` file (``generator_smooth`` first).

        Parameters
        ----------
        path : path
        device : str or torch.device, default "cpu"
        **overrides
            ``c_dim``, ``final_tanh``, ``fused_scale``: settings the weights cannot show.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            Naming the file and the problem: unreadable or truncated file, another
            architecture, missing/extra/mis-shaped keys.

        Examples
        --------
        >>> import os, tempfile, torch
        >>> from tensorpanda.adapters.pggan import PGGANGenerator
        >>> G = PGGANGenerator(z_dim=8, img_resolution=8, channels=[8, 4])
        >>> path = os.path.join(tempfile.mkdtemp(), "pggan.pth")
        >>> torch.save({"generator_smooth": G.state_dict()}, path)
        >>> PGGANGenerator.from_checkpoint(path).channels
        [8, 4]
        """
        from .genforce import load_state, read_pggan

        path = Path(path)
        kwargs, state = read_pggan(path, **overrides)
        G = cls(**kwargs)
        load_state(G, state, path, "PGGAN")
        return G.to(device).eval().requires_grad_(False)


"""StyleGAN (v1) generator in plain PyTorch, loaded from genforce checkpoints.

Written from the paper (Karras et al. 2019, "A Style-Based Generator Architecture for
Generative Adversarial Networks") and the key layout of genforce's model-zoo files.

- Mapping: z is pixel-normalised (after appending a class embedding, for conditional
  generators) and goes through ``mapping_layers`` dense layers with leaky ReLU (0.2);
  equalised learning rate with gain sqrt(2) and a learning-rate multiplier (0.01).
  The w is broadcast to ``num_ws = 2 * number of resolutions`` layers and truncated
  towards ``w_avg`` by psi on the first ``truncation_cutoff`` of them.
- Synthesis, per resolution 4, 8, ...: two style layers. Each is (the learnt constant
  at 4x4 | nearest 2x up-sampling and a 3x3 convolution, or above 64 px a fused stride-2
  transposed convolution | a 3x3 convolution), a [1, 2, 1] blur after up-sampling,
  per-pixel noise scaled per channel (the stored constant noise by default, so images
  are deterministic), bias, leaky ReLU, instance normalisation, and AdaIN: the layer's
  affine of its w gives a per-channel scale (stored as scale - 1) and shift. A 1x1
  toRGB of the last block gives the image.

Module and parameter names follow genforce's keys (``mapping.dense{i}``,
``synthesis.layer{i}.{const,weight,bias,style,apply_noise,blur}``,
``synthesis.output{b}``, ``synthesis.lod``); genforce's ``truncation.w_avg`` is held as
``mapping.w_avg``. Feature layers: ``b{res}.conv0`` -> ``synthesis.layer{2b}``,
``b{res}.conv1`` -> ``synthesis.layer{2b+1}``, the (B, C, res, res) output of the
layer's AdaIN; layer ``i`` reads ``ws[:, i]`` (``b4.conv0`` is the styled constant).
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

__all__ = ["StyleGANGenerator"]

_SLOPE = 0.2
_SQRT2 = math.sqrt(2.0)
_FUSED_MIN_RES = 128  # genforce's fused_scale="auto": fused up-convolution from 128 px


class _Dense(nn.Module):
    """Equalised-learning-rate dense layer with leaky ReLU."""

    def __init__(self, c_in: int, c_out: int, lr_multiplier: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in) / lr_multiplier)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.weight_gain = _SQRT2 / math.sqrt(c_in) * lr_multiplier
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return F.leaky_relu(x, _SLOPE)


class MappingNetwork(nn.Module):
    """z (and class label c) -> ws (N, num_ws, w_dim), truncated towards ``w_avg``."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 features: int = 512, lr_multiplier: float = 0.01,
                 repeat_w: bool = True) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.repeat_w = num_layers, repeat_w
        out_dim = w_dim if repeat_w else w_dim * num_ws
        sizes = [z_dim * (2 if c_dim else 1)] + [features] * (num_layers - 1) + [out_dim]
        for i in range(num_layers):
            self.add_module(f"dense{i}", _Dense(sizes[i], sizes[i + 1], lr_multiplier))
        if c_dim:
            self.label_weight = nn.Parameter(torch.randn(c_dim, z_dim))
        self.register_buffer("w_avg", torch.zeros(out_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None,
                truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        x = z.to(torch.float32)
        if self.c_dim:
            if c is None or c.ndim != 2 or c.shape != (z.shape[0], self.c_dim):
                raise ValueError(
                    f"this generator is class-conditional: pass c of shape (N, {self.c_dim})"
                )
            x = torch.cat([x, c.to(x.dtype) @ self.label_weight], dim=1)
        x = pixel_norm(x)
        for i in range(self.num_layers):
            x = getattr(self, f"dense{i}")(x)
        if self.repeat_w:
            ws = x[:, None, :].repeat(1, self.num_ws, 1)
        else:
            ws = x.reshape(-1, self.num_ws, self.w_dim)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else int(truncation_cutoff)
            avg = self.w_avg.reshape(-1, self.w_dim)[:cutoff] if not self.repeat_w \
                else self.w_avg[None]
            head = avg + (ws[:, :cutoff] - avg) * truncation_psi
            ws = torch.cat([head, ws[:, cutoff:]], dim=1)
        return ws


class _Noise(nn.Module):
    """Per-pixel noise (a stored constant map) scaled by a per-channel weight."""

    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))
        self.register_buffer("noise", torch.randn(1, 1, resolution, resolution))
        self.mode = "const"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "none":
            return x
        noise = self.noise
        if self.mode == "random":
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return x + noise * self.weight.reshape(1, -1, 1, 1)


class _StyleMod(nn.Module):
    """AdaIN's affine: w -> per-channel (scale - 1, shift) of 2C values."""

    def __init__(self, w_dim: int, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(2 * channels, w_dim))
        self.bias = nn.Parameter(torch.zeros(2 * channels))
        self.weight_gain = 1.0 / math.sqrt(w_dim)

    def scaled_weight(self) -> torch.Tensor:
        """The effective weight (2C, w_dim), gain included."""
        return self.weight * self.weight_gain

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = F.linear(w, self.scaled_weight(), self.bias)
        scale, shift = style.reshape(-1, 2, x.shape[1], 1, 1).unbind(1)
        return x * (scale + 1) + shift


class _Blur(nn.Module):
    """Depth-wise [1, 2, 1] x [1, 2, 1] / 16 low-pass filter."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps) / 16.0
        self.register_buffer("kernel", kernel[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel, padding=1, groups=x.shape[1])


def _instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Zero mean, unit mean square over each channel's spatial positions."""
    x = x - torch.mean(x, dim=(2, 3), keepdim=True)
    return x / torch.sqrt(torch.mean(x**2, dim=(2, 3), keepdim=True) + eps)


class StyleLayer(nn.Module):
    """One synthesis layer: (const | [up] conv [blur]), noise, bias, lrelu, IN, AdaIN."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, resolution: int,
                 kind: str = "conv", fused: bool = False) -> None:
        super().__init__()
        self.kind, self.fused = kind, fused
        if kind == "const":
            self.const = nn.Parameter(torch.ones(1, c_out, resolution, resolution))
        else:
            kernel = 4 if kind == "dense" else 3
            self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
            self.weight_gain = _SQRT2 / math.sqrt(c_in * kernel * kernel)
            self.padding = 3 if kind == "dense" else 1
            if kind == "up":
                self.blur = _Blur(c_out)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.apply_noise = _Noise(c_out, resolution)
        self.style = _StyleMod(w_dim, c_out)

    def forward(self, x: torch.Tensor | None, w: torch.Tensor) -> torch.Tensor:
        if self.kind == "const":
            x = self.const.repeat(w.shape[0], 1, 1, 1)
        elif self.kind == "dense":
            x = F.conv2d(w[:, :, None, None], self.weight * self.weight_gain, padding=3)
        else:
            weight = self.weight * self.weight_gain
            if self.kind == "up" and self.fused:
                # Up-sampling fused with the conv: stride-2 transposed convolution with the
                # 3x3 kernel summed over the four 1-pixel shifts (4x4).
                weight = F.pad(weight, (1, 1, 1, 1))
                weight = (weight[:, :, 1:, 1:] + weight[:, :, :-1, 1:]
                          + weight[:, :, 1:, :-1] + weight[:, :, :-1, :-1])
                x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2, padding=1)
            else:
                if self.kind == "up":
                    x = F.interpolate(x, scale_factor=2, mode="nearest")
                x = F.conv2d(x, weight, padding=1)
            if self.kind == "up":
                x = self.blur(x)
        x = self.apply_noise(x)
        x = F.leaky_relu(x + self.bias.reshape(1, -1, 1, 1), _SLOPE)
        return self.style(_instance_norm(x), w)



class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> image (N, img_channels, H, W)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int,
                 channels: Sequence[int], const_input: bool = True,
                 fused_scale: bool | str = "auto", final_tanh: bool = False) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.final_tanh = final_tanh
        self.resolutions = [4 * 2**b for b in range(len(channels))]
        self.num_ws = 2 * len(channels)
        self.noise_mode = "const"
        self.register_buffer("lod", torch.zeros(()))
        for b, res in enumerate(self.resolutions):
            c = channels[b]
            if b == 0:
                first = (StyleLayer(c, c, w_dim, res, kind="const") if const_input
                         else StyleLayer(w_dim, c, w_dim, res, kind="dense"))
            else:
                fused = res >= _FUSED_MIN_RES if fused_scale == "auto" else bool(fused_scale)
                first = StyleLayer(channels[b - 1], c, w_dim, res, kind="up", fused=fused)
            self.add_module(f"layer{2 * b}", first)
            self.add_module(f"layer{2 * b + 1}", StyleLayer(c, c, w_dim, res))
            self.add_module(f"output{b}", ToRGB(c, img_channels))

    def forward(self, ws: torch.Tensor, noise_mode: str | None = None) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(
                f"ws must have shape (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}"
            )
        # The mode holds for this call only; the attribute ``noise_mode`` is the default.
        mode = self.noise_mode if noise_mode is None else noise_mode
        if mode not in ("const", "random", "none"):
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', not {mode!r}")
        for i in range(self.num_ws):
            getattr(self, f"layer{i}").apply_noise.mode = mode
        ws = ws.to(torch.float32)
        x = None
        for i in range(self.num_ws):
            x = getattr(self, f"layer{i}")(x, ws[:, i])
        img = getattr(self, f"output{len(self.resolutions) - 1}")(x)
        return torch.tanh(img) if self.final_tanh else img


class StyleGANGenerator(nn.Module):
    """StyleGAN (v1) generator: ``mapping`` (z, c -> ws) and ``synthesis`` (ws -> image).

    ``G.mapping(z, c=None, truncation_psi=1.0, truncation_cutoff=None)`` gives ws of shape
    (N, num_ws, w_dim) (cutoff None: every layer is truncated); ``G.synthesis(ws)`` gives
    images (N, img_channels, H, W) in roughly [-1, 1], deterministic (stored noise).

    Parameters
    ----------
    z_dim, w_dim : int
    img_resolution : int
        A power of two >= 4.
    img_channels : int, default 3
    channels : sequence of int, optional
        Per resolution 4, 8, ..., img_resolution; default ``min(16384 // res, 512)``.
    c_dim : int, default 0
        Class-label size (genforce's ``label_size``).
    mapping_layers : int, default 8
    mapping_features : int, default 512
    mapping_lr_multiplier : float, default 0.01
    repeat_w : bool, default True
        False: the mapping outputs one w per layer (``num_ws * w_dim`` values).
    const_input : bool, default True
    fused_scale : bool or "auto", default "auto"
        Fused up-sampling convolution; "auto" from 128 px up, as genforce.
    final_tanh : bool, default False

    Examples
    --------
    >>> import torch
    >>> from tensorpanda.adapters.stylegan import StyleGANGenerator
    >>> G = StyleGANGenerator(z_dim=8, w_dim=8, img_resolution=16, channels=[16, 8, 4],
    ...                       mapping_layers=2, mapping_features=8)
    >>> G.num_ws, tuple(G(torch.randn(2, 8), truncation_psi=0.7).shape)
    (6, (2, 3, 16, 16))
    >>> G.feature_layers["b8.conv0"], G.style_affines()[2][:2]
    ('synthesis.layer2', ('b8.conv0', 2))
    """

    def __init__(
        self,
        z_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int = 3,
        channels: Sequence[int] | None = None,
        c_dim: int = 0,
        mapping_layers: int = 8,
        mapping_features: int = 512,
        mapping_lr_multiplier: float = 0.01,
        repeat_w: bool = True,
        const_input: bool = True,
        fused_scale: bool | str = "auto",
        final_tanh: bool = False,
    ) -> None:
        super().__init__()
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        n = int(math.log2(img_resolution)) - 1
        if channels is None:
            channels = [min(16384 // (4 * 2**b), 512) for b in range(n)]
        channels = [int(c) for c in channels]
        if len(channels) != n:
            raise ValueError(f"channels needs {n} entries, got {len(channels)}")
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.channels = channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, channels,
                                          const_input=const_input, fused_scale=fused_scale,
                                          final_tanh=final_tanh)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, mapping_layers,
                                      mapping_features, mapping_lr_multiplier, repeat_w)
        self.feature_layers: dict[str, str] = {}
        for b, res in enumerate(self.synthesis.resolutions):
            for j in range(2):
                self.feature_layers[f"b{res}.conv{j}"] = f"synthesis.layer{2 * b + j}"
        self.eval()

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None,
                truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        """Images (N, img_channels, H, W) in roughly [-1, 1] for latents z (N, z_dim)."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi,
                          truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws)

    def style_affines(self) -> list[tuple[str, int, torch.Tensor]]:
        """(layer name, ws index, effective AdaIN affine weight (2C, w_dim)) per layer.

        The rows are the per-channel scales then shifts; SeFa (Shen & Zhou 2021)
        factorizes these weights (gain included) to find directions in W.
        """
        out = []
        for i, name in enumerate(self.feature_layers):
            layer = self.get_submodule(self.feature_layers[name])
            out.append((name, i, layer.style.scaled_weight().detach()))
        return out

    @classmethod
    def from_checkpoint(
        cls, path: str | PathLike, device: str | torch.device = "cpu", **overrides: Any
    ) -> StyleGANGenerator:
        """Build the generator from a genforce ``.pth`` file (``generator_smooth`` first).

        Parameters
        ----------
        path : path
        device : str or torch.device, default "cpu"
        **overrides
            ``mapping_lr_multiplier``, ``fused_scale``, ``final_tanh``: settings the weights
            cannot show (genforce's defaults otherwise).

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            Naming the file and the problem: unreadable or truncated file, another
            architecture, missing/extra/mis-shaped keys, non-power-of-two resolution.

        Examples
        --------
        >>> import os, tempfile, torch
        >>> from tensorpanda.adapters.stylegan import StyleGANGenerator
        >>> G = StyleGANGenerator(z_dim=8, w_dim=8, img_resolution=8, channels=[8, 4],
        ...                       mapping_layers=2, mapping_features=8)
        >>> state = {k.replace("mapping.w_avg", "truncation.w_avg"): v
        ...          for k, v in G.state_dict().items()}
        >>> path = os.path.join(tempfile.mkdtemp(), "stylegan.pth")
        >>> torch.save({"generator_smooth": state}, path)
        >>> StyleGANGenerator.from_checkpoint(path).num_ws
        4
        """
        from .genforce import load_state, read_stylegan

        path = Path(path)
        kwargs, state = read_stylegan(path, **overrides)
        G = cls(**kwargs)
        load_state(G, state, path, "StyleGAN")
        return G.to(device).eval().requires_grad_(False)

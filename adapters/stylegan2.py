"""StyleGAN2 (and StyleGAN2-ADA) generator in plain PyTorch, loaded from checkpoint files.

Written from the StyleGAN2 paper (Karras et al. 2020, "Analyzing and Improving the Image
Quality of StyleGAN") and the key layout of the checkpoints users download; no compiled
CUDA code, so the same module runs on a CPU and on a GPU. Images are deterministic: the
synthesis network adds each layer's stored constant noise (``noise_const``) by default.

Module and parameter naming (mirrors the NVlabs network pickles, so that their
``G_ema`` state dict loads 1:1; genforce/rosinality readers map onto these names)::

    StyleGAN2Generator(z_dim, c_dim, w_dim, img_resolution, img_channels,
                       mapping_kwargs={num_layers=8, embed_features=None,
                                       layer_features=None, activation="lrelu",
                                       lr_multiplier=0.01, w_avg_beta=0.995},
                       synthesis_kwargs={channel_base=32768, channel_max=512,
                                         architecture="skip", resample_filter=[1,3,3,1],
                                         conv_clamp=None, use_noise=True,
                                         kernel_size=3, activation="lrelu",
                                         num_fp16_res (ignored: always float32)},
                       **synthesis_kwargs)   # the stylegan3 repository's flat form
      attributes: z_dim, c_dim, w_dim, num_ws, img_resolution, img_channels
      mapping.embed.weight (embed_features, c_dim), mapping.embed.bias   [c_dim > 0 only]
      mapping.fc{i}.weight (out, in), mapping.fc{i}.bias      i = 0 .. num_layers-1
      mapping.w_avg (w_dim,)          buffer (truncation centre; absent if w_avg_beta=None)
      synthesis.b{res}   res = 4, 8, ..., img_resolution; channels(res) =
                         min(channel_base // res, channel_max)
        .const (C, 4, 4)                                       [b4 only]
        .conv0 (up-sampling conv, res > 4) / .conv1:
            .affine.weight (C_in, w_dim), .affine.bias (C_in,)  style affine (bias init 1)
            .weight (C_out, C_in, 3, 3), .bias (C_out,)
            .noise_strength ()  and buffer .noise_const (res, res)   [use_noise only]
        .torgb: .affine.weight, .affine.bias, .weight (img_channels, C, 1, 1), .bias
                (every block for "skip"; the last block only for "orig" and "resnet")
        .skip.weight (C_out, C_in, 1, 1)                       ["resnet" only, no bias]
    Raw weights are stored unscaled, as in the checkpoints: the equalized-learning-rate
    gains (1/sqrt(fan_in), mapping lr_multiplier) are applied in forward.
    The FIR filters (``resample_filter``) are non-persistent buffers computed from the
    init kwargs: they are not in ``state_dict()`` (an NVlabs pickle's copies are checked
    against them and dropped).
    ws indices: block b{res} reads ws[i : i + num_conv + num_torgb] where i advances by
    num_conv per block: b4.conv1 -> 0, b4.torgb -> 1, b8.conv0 -> 1, b8.conv1 -> 2,
    b8.torgb -> 3, ...; num_ws = 2 * log2(img_resolution) - 2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._blocks import normalize_2nd_moment, plain, short_keys

__all__ = ["StyleGAN2Generator"]

_LRELU_SLOPE = 0.2
_LRELU_GAIN = math.sqrt(2.0)


def _fir_filter(taps: Sequence[float]) -> torch.Tensor:
    """The separable low-pass filter as a normalized 2-D kernel (sums to one)."""
    f = torch.as_tensor(list(taps), dtype=torch.float32)
    if f.ndim != 1 or f.numel() == 0:
        raise ValueError(f"resample_filter must be a 1-D list of taps, got {taps!r}")
    f = torch.outer(f, f)
    return f / f.sum()


def _blur(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int], gain: float) -> torch.Tensor:
    """Pad by ``pad`` (before, after) on both axes, then filter every channel with ``f``."""
    channels = x.shape[1]
    # The filter is symmetric, so correlation and convolution agree.
    kernel = (f * gain).to(x.dtype)[None, None].expand(channels, 1, *f.shape)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    return F.conv2d(x, kernel, groups=channels)


def _upsample(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x up-sampling: insert zeros between samples, then low-pass with ``f`` (gain 4)."""
    channels = x.shape[1]
    kernel = (f * 4.0).to(x.dtype)[None, None].expand(channels, 1, *f.shape)
    # A strided transposed convolution is zero insertion followed by the filter; the
    # crop centres the (2H + taps - 2)-long result on the 2H output grid.
    y = F.conv_transpose2d(x, kernel, stride=2, groups=channels)
    taps = f.shape[-1]
    lo = (taps - 1) // 2
    hi = y.shape[-1] - (taps - 2 - lo)
    return y[:, :, lo:hi, lo:hi]


def _bias_act(
    x: torch.Tensor,
    bias: torch.Tensor | None,
    activation: str,
    gain: float = 1.0,
    clamp: float | None = None,
) -> torch.Tensor:
    """Add the bias, apply the activation scaled by its gain, optionally clamp."""
    if bias is not None:
        x = x + bias.to(x.dtype).reshape(1, -1, *([1] * (x.ndim - 2)))
    if activation == "lrelu":
        x = F.leaky_relu(x, _LRELU_SLOPE) * (_LRELU_GAIN * gain)
    elif activation == "relu":
        x = F.relu(x) * (_LRELU_GAIN * gain)
    elif activation == "linear":
        if gain != 1:
            x = x * gain
    else:
        raise NotImplementedError(f"activation {activation!r} is not supported")
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalized learning rate (weights stored unscaled)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def scaled_weight(self) -> torch.Tensor:
        """The effective weight (out, in), learning-rate gain included."""
        return self.weight * self.weight_gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.scaled_weight().to(x.dtype)
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear":
            return F.linear(x, w, b)
        return _bias_act(F.linear(x, w), b, self.activation)


class MappingNetwork(nn.Module):
    """z (and class label c) -> w, broadcast to num_ws copies; truncation towards w_avg."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
        **ignored: Any,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        embed_features = w_dim if embed_features is None else embed_features
        embed_features = 0 if c_dim == 0 else embed_features
        layer_features = w_dim if layer_features is None else layer_features
        sizes = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            layer = FullyConnectedLayer(
                sizes[i], sizes[i + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{i}", layer)
        self.has_w_avg = w_avg_beta is not None
        if self.has_w_avg:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        parts = []
        if self.z_dim > 0:
            if z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(
                    f"this generator is class-conditional: pass c of shape (N, {self.c_dim})"
                )
            if c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"c must have shape (N, {self.c_dim}), got {tuple(c.shape)}")
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            if not self.has_w_avg:
                raise ValueError("truncation needs w_avg, which this generator does not keep")
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            truncated = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
            ws = torch.cat([truncated, ws[:, cutoff:]], dim=1)
        return ws


def _modulated_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    up: bool = False,
    filt: torch.Tensor | None = None,
) -> torch.Tensor:
    """Modulate the input channels by ``styles``, convolve, demodulate (per sample).

    Scaling the activations before and after a shared-weight convolution is the same
    linear map as convolving with per-sample modulated weights, and runs as one batched
    convolution. With ``up``, the convolution is transposed (stride 2: zero insertion and
    a true convolution by the kernel) and followed by the FIR low-pass filter.
    """
    n, c_in = styles.shape
    c_out, _, kh, kw = weight.shape
    x = x * styles.to(x.dtype).reshape(n, c_in, 1, 1)
    w = weight.to(x.dtype)
    if up:
        y = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
        # (2H + kh - 2) samples: pad so that the filter returns the 2H grid.
        pad_lo = (filt.shape[-1] + 1) // 2 - (kh - 1) + (kh // 2)
        pad_hi = (filt.shape[-1] - 2) // 2 - (kh - 2) + (kh // 2)
        y = _blur(y, filt, (pad_lo, pad_hi), gain=4.0)
    else:
        y = F.conv2d(x, w, padding=kh // 2)
    if demodulate:
        # 1 / ||w * s||: the L2 norm of each output's effective kernel, per sample.
        dcoefs = ((w.square().sum(dim=(2, 3))[None] * styles.square()[:, None, :]).sum(2)
                  + 1e-8).rsqrt()
        y = y * dcoefs.reshape(n, c_out, 1, 1)
    return y


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally 2x up-sampling) + noise + bias + lrelu."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        if up not in (1, 2):
            raise NotImplementedError(f"up-sampling factor {up} (only 1 or 2)")
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.register_buffer("resample_filter", _fir_filter(resample_filter), persistent=False)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, gain: float = 1.0, noise_mode: str = "const"
    ) -> torch.Tensor:
        styles = self.affine(w)
        x = _modulated_conv(x, self.weight, styles, up=self.up == 2, filt=self.resample_filter)
        if self.use_noise and noise_mode != "none":
            if noise_mode == "random":
                noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution,
                                    device=x.device, dtype=x.dtype)
            else:
                noise = self.noise_const.to(x.dtype)
            x = x + noise * self.noise_strength.to(x.dtype)
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return _bias_act(x, self.bias, self.activation, gain=gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = _modulated_conv(x, self.weight, styles, demodulate=False)
        return _bias_act(x, self.bias, "linear", clamp=self.conv_clamp)


class SkipLayer(nn.Module):
    """The "resnet" architecture's shortcut: 2x up-sampling then 1x1 conv, no bias."""

    def __init__(
        self, in_channels: int, out_channels: int, resample_filter: Sequence[float]
    ) -> None:
        super().__init__()
        self.register_buffer("resample_filter", _fir_filter(resample_filter), persistent=False)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        x = F.conv2d(x, (self.weight * self.weight_gain).to(x.dtype))
        return _upsample(x, self.resample_filter) * gain


class SynthesisBlock(nn.Module):
    """One resolution: (const | up-conv0), conv1, and the toRGB/skip image path."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        **layer_kwargs: Any,
    ) -> None:
        super().__init__()
        if architecture not in ("orig", "skip", "resnet"):
            raise NotImplementedError(f"synthesis architecture {architecture!r}")
        self.in_channels, self.resolution, self.is_last = in_channels, resolution, is_last
        self.architecture = architecture
        self.register_buffer("resample_filter", _fir_filter(resample_filter), persistent=False)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1 if (is_last or architecture == "skip") else 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2,
                                        resample_filter=resample_filter,
                                        conv_clamp=conv_clamp, **layer_kwargs)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution,
                                    resample_filter=resample_filter, conv_clamp=conv_clamp,
                                    **layer_kwargs)
        if self.num_torgb:
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        if in_channels != 0 and architecture == "resnet":
            self.skip = SkipLayer(in_channels, out_channels, resample_filter)

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str = "const",
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, ws[:, 0], noise_mode=noise_mode)
        elif self.architecture == "resnet":
            shortcut = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, ws[:, 0], noise_mode=noise_mode)
            x = self.conv1(x, ws[:, 1], gain=math.sqrt(0.5), noise_mode=noise_mode)
            x = shortcut + x
        else:
            x = self.conv0(x, ws[:, 0], noise_mode=noise_mode)
            x = self.conv1(x, ws[:, 1], noise_mode=noise_mode)
        if img is not None:
            img = _upsample(img, self.resample_filter)
        if self.num_torgb:
            y = self.torgb(x, ws[:, self.num_conv])
            img = y if img is None else img + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> image, one `SynthesisBlock` per resolution.

    ``noise_mode`` (attribute, default ``"const"``: the stored ``noise_const`` buffers) is
    what ``forward`` uses unless given one: ``"random"`` draws fresh noise, ``"none"``
    adds none.
    """

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        **block_kwargs: Any,
    ) -> None:
        super().__init__()
        _check_resolution(img_resolution)
        for unused in ("fp16_channels_last", "fused_modconv_default", "use_fp16"):
            block_kwargs.pop(unused, None)
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        self.num_ws = 0
        self.noise_mode = "const"
        for res in self.block_resolutions:
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0, channels[res], w_dim, res,
                img_channels, is_last=res == img_resolution, **block_kwargs,
            )
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            setattr(self, f"b{res}", block)

    def blocks(self) -> list[tuple[int, SynthesisBlock]]:
        """(resolution, block) pairs, lowest resolution first."""
        return [(r, getattr(self, f"b{r}")) for r in self.block_resolutions]

    def ws_index(self) -> dict[str, int]:
        """Index into ws of every modulated layer, e.g. {"b4.conv1": 0, "b4.torgb": 1}."""
        index, start = {}, 0
        for res, block in self.blocks():
            names = (["conv1"] if block.in_channels == 0 else ["conv0", "conv1"])
            names += ["torgb"] * block.num_torgb
            for offset, name in enumerate(names):
                index[f"b{res}.{name}"] = start + offset
            start += block.num_conv
        return index

    def forward(self, ws: torch.Tensor, noise_mode: str | None = None) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(
                f"ws must have shape (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}"
            )
        mode = self.noise_mode if noise_mode is None else noise_mode
        if mode not in ("const", "random", "none"):
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {mode!r}")
        ws = ws.to(torch.float32)
        x = img = None
        start = 0
        for _, block in self.blocks():
            block_ws = ws[:, start:start + block.num_conv + block.num_torgb]
            x, img = block(x, img, block_ws, noise_mode=mode)
            start += block.num_conv
        return img


def _check_resolution(resolution: Any, path: Any = None) -> None:
    """Raise ValueError unless ``resolution`` is a power of two >= 4."""
    where = f"{path}: " if path is not None else ""
    if not isinstance(resolution, int) or resolution < 4 or resolution & (resolution - 1):
        raise ValueError(
            f"{where}img_resolution must be a power of two >= 4, got {resolution!r}"
        )


class StyleGAN2Generator(nn.Module):
    """StyleGAN2 generator: ``mapping`` (z, c -> ws) and ``synthesis`` (ws -> image).

    ``mapping`` and ``synthesis`` are submodules that are called like methods:
    ``G.mapping(z, c=None, truncation_psi=1.0, truncation_cutoff=None)`` gives ws of shape
    (N, num_ws, w_dim) and ``G.synthesis(ws)`` gives images (N, img_channels, H, W) in
    roughly [-1, 1], deterministic (stored constant noise).

    Parameters
    ----------
    z_dim, c_dim, w_dim, img_resolution, img_channels : int
        As in the NVlabs ``Generator``'s init kwargs.
    mapping_kwargs, synthesis_kwargs : dict
        Likewise (see the module docstring).
    **more_synthesis_kwargs
        Synthesis kwargs given flat, as the stylegan3 repository's StyleGAN2 does.

    Examples
    --------
    >>> import torch
    >>> from tensorpanda.adapters.stylegan2 import StyleGAN2Generator
    >>> G = StyleGAN2Generator(16, 0, 16, 16, 3, mapping_kwargs={"num_layers": 2},
    ...                        synthesis_kwargs={"channel_base": 128, "channel_max": 32})
    >>> G.num_ws, tuple(G(torch.randn(2, 16)).shape)
    (6, (2, 3, 16, 16))
    >>> sorted(G.feature_layers)[:2]
    ['b16.conv0', 'b16.conv1']
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: Mapping[str, Any] | None = None,
        synthesis_kwargs: Mapping[str, Any] | None = None,
        **more_synthesis_kwargs: Any,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        # stylegan2-ada-pytorch nests the synthesis kwargs, the stylegan3 repository's
        # StyleGAN2 passes them flat: accept both.
        synthesis_kwargs = {**dict(synthesis_kwargs or {}), **more_synthesis_kwargs}
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws,
                                      **dict(mapping_kwargs or {}))
        self.feature_layers: dict[str, str] = {}
        for res, block in self.synthesis.blocks():
            for name in ("conv0", "conv1"):
                if hasattr(block, name):
                    self.feature_layers[f"b{res}.{name}"] = f"synthesis.b{res}.{name}"
        self.eval()

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        """Images (N, img_channels, H, W) in roughly [-1, 1] for latents z (N, z_dim)."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi,
                          truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws)

    def style_affines(self) -> list[tuple[str, int, torch.Tensor]]:
        """(layer name, ws index, effective affine weight (C_in, w_dim)) per conv layer.

        The weights SeFa factorizes (Shen & Zhou 2021): each convolution's style affine,
        its learning-rate gain included. ToRGB layers are left out, as in SeFa.
        """
        index = self.synthesis.ws_index()
        out = []
        for name in self.feature_layers:
            layer = self.get_submodule(self.feature_layers[name])
            out.append((name, index[name], layer.affine.scaled_weight().detach()))
        return out

    @classmethod
    def from_checkpoint(
        cls, path: str | PathLike[str], device: str | torch.device = "cpu"
    ) -> StyleGAN2Generator:
        """Build the generator from a checkpoint file, detecting its format.

        NVlabs network pickles (``G_ema``), genforce ``.pth`` (``generator_smooth``) and
        rosinality ``.pt`` (``g_ema``) files are read without executing code from them.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            Naming the file and the problem: unknown or truncated file, another
            architecture, missing/extra/mis-shaped keys, non-power-of-two resolution.
        """
        from .checkpoints import detect_format

        path = Path(path)
        fmt = detect_format(path)
        if fmt == "nvlabs-pickle":
            init_kwargs, state = _read_nvlabs(path)
        elif fmt in ("genforce", "rosinality"):
            try:
                if fmt == "genforce":
                    from .genforce import read_stylegan2
                else:
                    from .rosinality import read_stylegan2
            except ImportError as error:
                raise NotImplementedError(
                    f"{path}: reading StyleGAN2 from a {fmt} checkpoint is not implemented yet"
                ) from error
            init_kwargs, state = read_stylegan2(path)
        else:  # pragma: no cover - detect_format returns only the three formats
            raise ValueError(f"{path}: unsupported checkpoint format {fmt!r}")
        _check_resolution(init_kwargs.get("img_resolution"), path)
        try:
            G = cls(**init_kwargs)
        except NotImplementedError as error:
            raise NotImplementedError(f"{path}: {error}") from error
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: cannot build a StyleGAN2 generator: {error}") from error
        _load_state(G, state, path)
        return G.to(device).eval().requires_grad_(False)


def _read_nvlabs(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(init kwargs, state dict) of the ``G_ema`` in an NVlabs network pickle."""
    from .nvlabs_pickle import PersistentRecord, load_network_pickle

    data = load_network_pickle(path)
    record = data.get("G_ema") if isinstance(data, Mapping) else None
    if not isinstance(record, PersistentRecord):
        raise ValueError(f"{path}: the network pickle holds no G_ema generator")
    synthesis = record.state.get("_modules", {}).get("synthesis")
    if (
        record.class_name != "Generator"
        or record.module_name.endswith("networks_stylegan3")
        or not isinstance(synthesis, PersistentRecord)
        or synthesis.class_name != "SynthesisNetwork"
        or "b4" not in synthesis.state.get("_modules", {})
    ):
        raise ValueError(
            f"{path}: G_ema is not a StyleGAN2 generator (found {record.module_name}."
            f"{record.class_name}); use the matching architecture (e.g. 'stylegan3')"
        )
    kwargs = plain(record.init_kwargs)
    return kwargs, record.state_dict()


def _load_state(G: nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Strict load; derived FIR filters are checked and dropped; errors name the keys."""
    own = G.state_dict()
    state = dict(state)
    for key in [k for k in state if k.endswith("resample_filter")]:
        expected = G.get_buffer(key) if _has_buffer(G, key) else None
        if expected is None or not torch.allclose(state[key].float(), expected, atol=1e-6):
            raise ValueError(f"{path}: {key} differs from the filter its init kwargs give")
        del state[key]
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing keys {short_keys(missing)}")
        if extra:
            parts.append(f"unexpected keys {short_keys(extra)}")
        raise ValueError(f"{path}: state dict does not match StyleGAN2: " + "; ".join(parts))
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise ValueError(
                f"{path}: {key} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}"
            )
    G.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)


def _has_buffer(G: nn.Module, key: str) -> bool:
    """Whether ``key`` names a buffer of ``G`` (persistent or not)."""
    try:
        G.get_buffer(key)
    except AttributeError:
        return False
    return True



"""StyleGAN3 ("Alias-Free GAN", Karras et al. 2021) generator in plain PyTorch.

Written from the paper and from the parameter layout of the NVlabs network pickles, so
that their ``G_ema`` state dict loads as is: ``mapping.fc{i}``, ``mapping.w_avg``,
``synthesis.input`` (Fourier features), ``synthesis.L{i}_{size}_{channels}`` (modulated
convolution followed by the filtered leaky ReLU; the last one is the toRGB layer).

The filtered leaky ReLU (bias, upsampling by zero insertion and a low-pass FIR filter,
leaky ReLU, clamping, low-pass filter and downsampling) runs as ordinary convolutions, so
the same code runs on a CPU and a GPU without compiled extensions. Both published
configurations load: 'stylegan3-t' (3x3 convolutions, separable Kaiser filters) and
'stylegan3-r' (1x1 convolutions, radially symmetric downsampling filters). The filters
are rebuilt from the layer geometry for a fresh network and read from the checkpoint's
buffers when loading, like the magnitude EMAs each layer divides its input by.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._blocks import normalize_2nd_moment, plain, short_keys

__all__ = ["StyleGAN3Generator"]

_SQRT2 = math.sqrt(2.0)

# The arguments of the official SynthesisNetwork (with those it passes on to each
# SynthesisLayer) and MappingNetwork that a pickle's init_kwargs may hold; the defaults
# are those of _Synthesis / _SynthesisLayer / _Mapping below.
_SYNTHESIS_ARGS = frozenset({
    "channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff",
    "first_stopband", "last_stopband_rel", "margin_size", "output_scale", "num_fp16_res",
    "conv_kernel", "filter_size", "lrelu_upsampling", "use_radial_filters", "conv_clamp",
    "magnitude_ema_beta",
})
_MAPPING_ARGS = frozenset({"num_layers", "lr_multiplier", "w_avg_beta"})


# -- filtering ---------------------------------------------------------------------------


def _lowpass_filter(taps: int, cutoff: float, width: float, fs: float, radial: bool):
    """Kaiser-windowed low-pass FIR filter (1-D separable, or 2-D jinc when ``radial``)."""
    if taps == 1:
        return None
    import scipy.signal  # noqa: PLC0415  (only needed to build a network from scratch)
    import scipy.special  # noqa: PLC0415

    if not radial:
        taps_1d = scipy.signal.firwin(numtaps=taps, cutoff=cutoff, width=width, fs=fs)
        return torch.as_tensor(taps_1d, dtype=torch.float32)
    # The 2-D ideal low-pass is a jinc, J1(2 pi f_c r) / (pi r), windowed by the outer
    # product of two Kaiser windows and normalised to unit DC gain.
    t = (np.arange(taps) - (taps - 1) / 2) / fs
    r = np.hypot(t[:, None], t[None, :])
    kernel = scipy.special.j1(2 * np.pi * cutoff * r) / (np.pi * r)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(taps, width / (fs / 2)))
    window = np.kaiser(taps, beta)
    kernel = kernel * np.outer(window, window)
    return torch.as_tensor(kernel / kernel.sum(), dtype=torch.float32)


def _fir(x: torch.Tensor, f: torch.Tensor | None, gain: float, stride: int) -> torch.Tensor:
    """Depthwise 'valid' convolution with FIR filter ``f`` (1-D: separable, x then y)."""
    if f is None:
        return x if gain == 1 else x * gain
    channels = x.shape[1]
    # A convolution, not a correlation: the filter is flipped (a no-op for the symmetric
    # filters StyleGAN3 designs, but a checkpoint may hold any filter).
    f = f.to(x.dtype)
    if f.ndim == 1:
        f = (f * math.sqrt(gain)).flip(0)
        kx = f.view(1, 1, 1, -1).expand(channels, 1, 1, f.numel())
        ky = f.view(1, 1, -1, 1).expand(channels, 1, f.numel(), 1)
        x = F.conv2d(x, kx, stride=(1, stride), groups=channels)
        return F.conv2d(x, ky, stride=(stride, 1), groups=channels)
    k = (f * gain).flip(0, 1)
    k = k.view(1, 1, *k.shape).expand(channels, 1, *k.shape)
    return F.conv2d(x, k, stride=stride, groups=channels)


def _filtered_lrelu(
    x: torch.Tensor,
    up_filter: torch.Tensor | None,
    down_filter: torch.Tensor | None,
    bias: torch.Tensor,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
    gain: float,
    slope: float,
    clamp: float | None,
) -> torch.Tensor:
    """Bias, upsample (zero insertion, pad, low-pass), leaky ReLU, clamp, low-pass, downsample.

    ``padding`` is (left, right, top, bottom) on the zero-inserted image; negative values
    crop. The upsampling filter carries a gain of ``up**2`` so that zero insertion keeps
    the signal's magnitude.
    """
    x = x + bias.to(x.dtype).view(1, -1, 1, 1)
    if up > 1:
        n, c, h, w = x.shape
        spread = x.new_zeros(n, c, h, up, w, up)
        spread[:, :, :, 0, :, 0] = x
        x = spread.view(n, c, h * up, w * up)
    x = F.pad(x, list(padding))
    x = _fir(x, up_filter, gain=float(up * up), stride=1)
    x = F.leaky_relu(x, slope) if slope != 1 else x
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    if down_filter is None:
        return x[:, :, ::down, ::down] if down > 1 else x
    return _fir(x, down_filter, gain=1.0, stride=down)


# -- layers ------------------------------------------------------------------------------


class _Dense(nn.Module):
    """Fully connected layer with equalised learning rate (runtime weight/bias gains)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        lrelu: bool = False,
        lr_multiplier: float = 1.0,
        bias_init: Any = 0.0,
    ) -> None:
        super().__init__()
        self.lrelu = lrelu
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        bias = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
        self.bias = nn.Parameter(torch.tensor(bias / lr_multiplier))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def effective_weight(self) -> torch.Tensor:
        """The weight as applied, gain included: (out_features, in_features)."""
        return self.weight * self.weight_gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype)
        if self.bias_gain != 1:
            b = b * self.bias_gain
        if not self.lrelu:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return F.leaky_relu(x.matmul(w.t()) + b, 0.2) * _SQRT2

    def extra_repr(self) -> str:
        out_features, in_features = self.weight.shape
        return f"in_features={in_features}, out_features={out_features}, lrelu={self.lrelu}"


class _Mapping(nn.Module):
    """z (and a class label) -> W, broadcast to ``num_ws`` copies, truncated towards w_avg."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int,
        num_layers: int = 2,
        lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.998,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta  # kept for reference; the average is never updated here
        self.embed = _Dense(c_dim, w_dim) if c_dim > 0 else None
        widths = [z_dim + (w_dim if c_dim > 0 else 0)] + [w_dim] * num_layers
        for i in range(num_layers):
            self.add_module(
                f"fc{i}", _Dense(widths[i], widths[i + 1], lrelu=True, lr_multiplier=lr_multiplier)
            )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        dtype = self.w_avg.dtype  # float32 unless the module was converted
        x = normalize_2nd_moment(z.to(dtype))
        if self.embed is not None:
            if c is None or c.ndim != 2 or c.shape != (z.shape[0], self.c_dim):
                got = None if c is None else tuple(c.shape)
                raise ValueError(
                    f"this generator is class-conditional: c must have shape "
                    f"({z.shape[0]}, {self.c_dim}) (one-hot labels), got {got}"
                )
            y = normalize_2nd_moment(self.embed(c.to(dtype)))
            x = torch.cat([x, y], dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws


class _FourierInput(nn.Module):
    """The synthesis input: Fourier features at fixed frequencies, rotated and translated
    by an affine function of w, then mixed by a learned channel matrix."""

    def __init__(
        self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float
    ) -> None:
        super().__init__()
        self.channels, self.size = channels, int(size)
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        # Frequencies drawn inside a disc of radius ``bandwidth``; random phases.
        freqs = torch.randn(channels, 2)
        radii = freqs.norm(dim=1, keepdim=True)
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn(channels, channels))
        # (cos, sin, tx, ty) of the per-sample rotation and translation; starts at identity.
        self.affine = _Dense(w_dim, 4, bias_init=[1.0, 0.0, 0.0, 0.0])
        nn.init.zeros_(self.affine.weight)
        self.register_buffer("transform", torch.eye(3))  # user-set inverse image transform
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand(channels) - 0.5)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        n = w.shape[0]
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        eye = torch.eye(3, device=w.device, dtype=w.dtype)
        rot = eye.repeat(n, 1, 1)
        rot[:, 0, 0], rot[:, 0, 1] = t[:, 0], -t[:, 1]
        rot[:, 1, 0], rot[:, 1, 1] = t[:, 1], t[:, 0]
        shift = eye.repeat(n, 1, 1)
        shift[:, 0, 2], shift[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = rot @ shift @ self.transform.unsqueeze(0)
        freqs = self.freqs.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        # Frequencies pushed out of band by the user's transform fade out linearly.
        amplitudes = 1 - (freqs.norm(dim=2) - self.bandwidth) / (
            self.sampling_rate / 2 - self.bandwidth
        )
        amplitudes = amplitudes.clamp(0, 1)
        # Pixel centres in the input's coordinate frame (units of 1 / sampling_rate).
        coords = (
            torch.arange(self.size, device=w.device, dtype=w.dtype) + 0.5 - self.size / 2
        ) / self.sampling_rate
        grid = torch.stack(torch.meshgrid(coords, coords, indexing="xy"), dim=-1)  # (H, W, 2)
        x = torch.einsum("hwk,nck->nhwc", grid, freqs)
        x = torch.sin((x + phases[:, None, None, :]) * (2 * math.pi))
        x = x * amplitudes[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, size={self.size}, "
            f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}"
        )


class _SynthesisLayer(nn.Module):
    """Modulated convolution -> filtered leaky ReLU (or, for toRGB, a 1x1 unnormalised
    modulated convolution, bias and clamp)."""

    def __init__(
        self,
        *,
        w_dim: int,
        is_torgb: bool,
        is_critically_sampled: bool,
        in_channels: int,
        out_channels: int,
        in_size: int,
        out_size: int,
        in_sampling_rate: int,
        out_sampling_rate: int,
        in_cutoff: float,
        out_cutoff: float,
        in_half_width: float,
        out_half_width: float,
        conv_kernel: int = 3,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
        use_radial_filters: bool = False,
        conv_clamp: float | None = 256,
        magnitude_ema_beta: float = 0.999,
    ) -> None:
        super().__init__()
        self.is_torgb = is_torgb
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size, self.out_size = in_size, out_size
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta  # for reference; never updated here
        tmp_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.up = int(round(tmp_rate / in_sampling_rate))
        self.down = int(round(tmp_rate / out_sampling_rate))
        up_taps = filter_size * self.up if self.up > 1 and not is_torgb else 1
        down_taps = filter_size * self.down if self.down > 1 and not is_torgb else 1
        radial = use_radial_filters and not is_critically_sampled

        self.affine = _Dense(w_dim, in_channels, bias_init=1.0)
        k = self.conv_kernel
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, k, k))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.register_buffer(
            "up_filter", _lowpass_filter(up_taps, in_cutoff, 2 * in_half_width, tmp_rate, False)
        )
        self.register_buffer(
            "down_filter",
            _lowpass_filter(down_taps, out_cutoff, 2 * out_half_width, tmp_rate, radial),
        )
        # The convolution is 'full' (padding k - 1); pad the upsampled signal so that, after
        # both filters and the downsampling, out_size samples remain, centred (the
        # symmetric sample positions of the paper's appendix).
        total = (out_size - 1) * self.down + 1
        total -= (in_size + k - 1) * self.up
        total += up_taps + down_taps - 2
        lo = (total + self.up) // 2
        self.padding = (lo, total - lo, lo, total - lo)

    def styles(self, w: torch.Tensor) -> torch.Tensor:
        """Per-sample input-channel scales from w."""
        s = self.affine(w)
        if self.is_torgb:
            s = s / math.sqrt(self.in_channels * self.conv_kernel**2)
        return s

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        s = self.styles(w)
        weight = self.weight.to(x.dtype)
        demodulate = not self.is_torgb
        if demodulate:
            # Rescale weight and styles first (the result does not change: demodulation
            # divides the scale out) so that large values cannot overflow.
            weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
            s = s * s.square().mean().rsqrt()
        wm = weight.unsqueeze(0) * s[:, None, :, None, None]  # (N, O, I, k, k)
        if demodulate:
            wm = wm * (wm.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()[:, :, None, None, None]
        # Divide the input by its running RMS (the magnitude EMA).
        wm = wm * self.magnitude_ema.rsqrt()
        k = self.conv_kernel
        x = F.conv2d(
            x.reshape(1, -1, *x.shape[2:]),
            wm.reshape(-1, self.in_channels, k, k),
            padding=k - 1,
            groups=n,
        )
        x = x.reshape(n, self.out_channels, *x.shape[2:])
        return _filtered_lrelu(
            x,
            self.up_filter,
            self.down_filter,
            self.bias,
            up=self.up,
            down=self.down,
            padding=self.padding,
            gain=1.0 if self.is_torgb else _SQRT2,
            slope=1.0 if self.is_torgb else 0.2,
            clamp=self.conv_clamp,
        )

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"in_size={self.in_size}, out_size={self.out_size}, up={self.up}, "
            f"down={self.down}, conv_kernel={self.conv_kernel}, is_torgb={self.is_torgb}"
        )


class _Synthesis(nn.Module):
    """ws (N, num_ws, w_dim) -> image: the Fourier input, ``num_layers`` layers, toRGB."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_layers: int = 14,
        num_critical: int = 2,
        first_cutoff: float = 2.0,
        first_stopband: float = 2**2.1,
        last_stopband_rel: float = 2**0.3,
        margin_size: int = 10,
        output_scale: float = 0.25,
        num_fp16_res: int = 4,
        **layer_kwargs: Any,
    ) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_ws = num_layers + 2
        self.output_scale = output_scale
        del num_fp16_res  # half precision is a CUDA speed-up; this code runs in float32

        # The paper's design: cutoffs and minimum stopbands grow geometrically from the
        # first layer to the last critically sampled ones; each layer's sampling rate is
        # the smallest power of two above twice its stopband (at most the resolution).
        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * last_stopband_rel
        t = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** t
        stopbands = first_stopband * (last_stopband / first_stopband) ** t
        rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
        half_widths = np.maximum(stopbands, rates / 2) - cutoffs
        sizes = rates + 2 * margin_size
        sizes[-2:] = img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = img_channels

        self.input = _FourierInput(
            w_dim, int(channels[0]), int(sizes[0]), rates[0], cutoffs[0]
        )
        self.layer_names: list[str] = []
        for i in range(num_layers + 1):
            prev = max(i - 1, 0)
            layer = _SynthesisLayer(
                w_dim=w_dim,
                is_torgb=i == num_layers,
                is_critically_sampled=i >= num_layers - num_critical,
                in_channels=int(channels[prev]),
                out_channels=int(channels[i]),
                in_size=int(sizes[prev]),
                out_size=int(sizes[i]),
                in_sampling_rate=int(rates[prev]),
                out_sampling_rate=int(rates[i]),
                in_cutoff=float(cutoffs[prev]),
                out_cutoff=float(cutoffs[i]),
                in_half_width=float(half_widths[prev]),
                out_half_width=float(half_widths[i]),
                **layer_kwargs,
            )
            name = f"L{i}_{int(sizes[i])}_{int(channels[i])}"
            self.add_module(name, layer)
            self.layer_names.append(name)

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(
                f"ws must have shape (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}"
            )
        ws = ws.to(self.input.weight.dtype).unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:], strict=True):
            x = getattr(self, name)(x, w)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x


# -- the generator -----------------------------------------------------------------------


class StyleGAN3Generator(nn.Module):
    """The StyleGAN3 generator: mapping network z -> W, synthesis network W+ -> image.

    Parameters
    ----------
    z_dim, c_dim, w_dim : int
        Latent, class-label (0: unconditional) and intermediate latent sizes.
    img_resolution : int
        Output resolution, a power of two.
    img_channels : int
        Output channels (3 for RGB).
    mapping_kwargs : dict, optional
        ``num_layers`` (2), ``lr_multiplier`` (0.01), ``w_avg_beta`` (0.998).
    **synthesis_kwargs
        The official SynthesisNetwork / SynthesisLayer arguments (``channel_base``,
        ``channel_max``, ``num_layers``, ``conv_kernel`` (1 for 'stylegan3-r'),
        ``use_radial_filters``, ``margin_size``, ...), with the official defaults.

    Attributes
    ----------
    feature_layers : dict of str to str
        Layer name -> dotted module path whose output is a (B, C, H, W) feature map:
        ``"input"`` (the Fourier features) and each synthesis layer by its checkpoint
        name, ``"L{i}_{size}_{channels}"`` (the toRGB layer excluded). Sizes include the
        margin of 10 pixels the paper keeps around the image until the last layers.
    num_ws : int
        Number of w vectors the synthesis takes (``num_layers + 2``): ``ws[:, 0]`` drives
        the input's transform, ``ws[:, i + 1]`` layer ``L{i}``.

    Examples
    --------
    >>> import torch
    >>> from tensorpanda.adapters.stylegan3 import StyleGAN3Generator
    >>> _ = torch.manual_seed(0)
    >>> G = StyleGAN3Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
    ...                        channel_base=256, channel_max=16, num_layers=4)
    >>> list(G.feature_layers)[:3]
    ['input', 'L0_36_16', 'L1_36_16']
    >>> G(torch.randn(2, 8), truncation_psi=0.7).shape
    torch.Size([2, 3, 16, 16])
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: Mapping[str, Any] | None = None,
        **synthesis_kwargs: Any,
    ) -> None:
        super().__init__()
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(
                f"img_resolution must be a power of two (>= 4), got {img_resolution}"
            )
        unknown = set(synthesis_kwargs) - _SYNTHESIS_ARGS
        if unknown:
            raise ValueError(f"unknown StyleGAN3 synthesis arguments: {sorted(unknown)}")
        mapping_kwargs = dict(mapping_kwargs or {})
        unknown = set(mapping_kwargs) - _MAPPING_ARGS
        if unknown:
            raise ValueError(f"unknown StyleGAN3 mapping arguments: {sorted(unknown)}")
        self.z_dim, self.c_dim, self.w_dim = int(z_dim), int(c_dim), int(w_dim)
        self.img_resolution, self.img_channels = int(img_resolution), int(img_channels)
        self.init_kwargs = dict(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
            img_channels=img_channels, mapping_kwargs=mapping_kwargs, **synthesis_kwargs,
        )
        self.synthesis = _Synthesis(
            w_dim=self.w_dim, img_resolution=self.img_resolution,
            img_channels=self.img_channels, **synthesis_kwargs,
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = _Mapping(
            z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, num_ws=self.num_ws,
            **mapping_kwargs,
        )
        names = self.synthesis.layer_names[:-1]  # the last one is toRGB
        self.feature_layers: dict[str, str] = {"input": "synthesis.input"}
        self.feature_layers.update({name: f"synthesis.{name}" for name in names})

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        """Images (N, img_channels, H, W), roughly in [-1, 1], for latents z (N, z_dim).

        ``c``: one-hot class labels (N, c_dim) for a conditional generator. Truncation
        moves every w (the first ``truncation_cutoff``) towards the average w by
        ``truncation_psi``. The synthesis is deterministic (StyleGAN3 has no noise inputs).
        """
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws)

    def style_affines(self) -> list[tuple[str, int, torch.Tensor]]:
        """The style affines of the synthesis layers, for SeFa.

        Returns
        -------
        list of (str, int, torch.Tensor)
            For each feature layer ``L{i}_...`` (the toRGB layer and the input's
            transform affine left out): its name, the index into ``ws`` it reads
            (``i + 1``), and the affine's effective weight (in_channels, w_dim), gain
            included.

        Examples
        --------
        >>> from tensorpanda.adapters.stylegan3 import StyleGAN3Generator
        >>> G = StyleGAN3Generator(8, 0, 8, 16, 3, channel_base=256, channel_max=16,
        ...                        num_layers=4)
        >>> [(name, index, tuple(w.shape)) for name, index, w in G.style_affines()][:2]
        [('L0_36_16', 1, (16, 8)), ('L1_36_16', 2, (16, 8))]
        """
        out = []
        for i, name in enumerate(self.synthesis.layer_names[:-1]):
            affine = getattr(self.synthesis, name).affine
            out.append((name, i + 1, affine.effective_weight().detach()))
        return out

    # -- loading -------------------------------------------------------------------------

    @classmethod
    def from_state_dict(
        cls,
        init_kwargs: Mapping[str, Any],
        state_dict: Mapping[str, torch.Tensor],
        *,
        source: str = "the state dict",
    ) -> StyleGAN3Generator:
        """Build the generator from official constructor arguments and load its weights.

        Every error names ``source`` and the problem (unknown arguments, missing or
        unexpected parameters, shape mismatches).

        Examples
        --------
        >>> from tensorpanda.adapters.stylegan3 import StyleGAN3Generator
        >>> kw = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
        ...           channel_base=256, channel_max=16, num_layers=4)
        >>> G = StyleGAN3Generator(**kw)
        >>> H = StyleGAN3Generator.from_state_dict(kw, G.state_dict())
        >>> H.num_ws
        6
        """
        kwargs = plain(dict(init_kwargs))
        try:
            net = cls(**kwargs)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{source}: cannot build a StyleGAN3 generator: {error}") from error
        expected = net.state_dict()
        missing = set(expected) - set(state_dict)
        extra = set(state_dict) - set(expected)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing keys: {short_keys(sorted(missing))}")
            if extra:
                parts.append(f"unexpected keys: {short_keys(sorted(extra))}")
            raise ValueError(
                f"{source}: the weights do not match a StyleGAN3 generator built from its "
                f"arguments ({'; '.join(parts)})"
            )
        for key, value in state_dict.items():
            if tuple(value.shape) != tuple(expected[key].shape):
                raise ValueError(
                    f"{source}: {key!r} has shape {tuple(value.shape)}, expected "
                    f"{tuple(expected[key].shape)} for the generator's arguments"
                )
        net.load_state_dict({k: v.to(torch.float32) for k, v in state_dict.items()})
        return net.eval().requires_grad_(False)

    @classmethod
    def from_checkpoint(
        cls, path: str | PathLike[str], device: str | torch.device = "cpu"
    ) -> StyleGAN3Generator:
        """Load ``G_ema`` from an NVlabs StyleGAN3 network pickle, without running its code.

        Parameters
        ----------
        path : path
            A ``.pkl`` written by NVlabs/stylegan3 (the official model zoo's format). It is
            read by a restricted unpickler: the classes' embedded source code never runs.
        device : torch.device or str, default "cpu"

        Returns
        -------
        StyleGAN3Generator
            In eval mode, parameters not requiring gradients.

        Raises
        ------
        FileNotFoundError
            No such file.
        ValueError
            Naming the file: truncated or not a network pickle, a torch.save archive (other
            formats hold no StyleGAN3), no ``G_ema``, another architecture (e.g. a StyleGAN2
            pickle), missing or unexpected weights.

        Examples
        --------
        >>> from tensorpanda.adapters.stylegan3 import StyleGAN3Generator
        >>> StyleGAN3Generator.from_checkpoint("no-such-file.pkl")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no-such-file.pkl: no such checkpoint file
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint file")
        with open(path, "rb") as f:
            head = f.read(4)
        if head.startswith(b"PK"):
            raise ValueError(
                f"{path}: a torch.save archive (genforce .pth / rosinality .pt); StyleGAN3 "
                "checkpoints are NVlabs network pickles (.pkl) holding 'G_ema'"
            )
        if not head or head[0] != 0x80:
            raise ValueError(f"{path}: not a network pickle (an empty or unrecognised file)")
        from .nvlabs_pickle import UnsafeCheckpointError, load_network_pickle  # noqa: PLC0415

        try:
            data = load_network_pickle(path)
        except (UnsafeCheckpointError, FileNotFoundError):
            raise
        except Exception as error:  # EOFError, UnpicklingError, ...: say which file
            if str(path) in str(error):
                raise
            raise ValueError(
                f"{path}: cannot read the network pickle (truncated or corrupt file?): "
                f"{type(error).__name__}: {error}"
            ) from error
        return cls._from_pickle_data(data, str(path)).to(device)

    @classmethod
    def _from_pickle_data(cls, data: Any, source: str) -> StyleGAN3Generator:
        """The generator recorded under ``G_ema`` of an unpickled NVlabs snapshot."""
        if not isinstance(data, Mapping) or "G_ema" not in data:
            keys = sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
            raise ValueError(f"{source}: not an NVlabs network pickle: no 'G_ema' (found {keys})")
        record = data["G_ema"]
        class_name = getattr(record, "class_name", None)
        module_name = getattr(record, "module_name", "?")
        if class_name is None or not hasattr(record, "state_dict"):
            raise ValueError(
                f"{source}: 'G_ema' is a {type(record).__name__}, not a persistent network"
            )
        state = record.state_dict()
        if class_name != "Generator" or "synthesis.input.freqs" not in state:
            if "synthesis.b4.const" in state or any(k.startswith("synthesis.b4.") for k in state):
                raise ValueError(
                    f"{source}: holds a StyleGAN2 generator ({module_name}.{class_name}), not "
                    "StyleGAN3: load it as 'stylegan2'"
                )
            raise ValueError(
                f"{source}: 'G_ema' is {module_name}.{class_name}, not a StyleGAN3 generator "
                "(training.networks_stylegan3.Generator)"
            )
        return cls.from_state_dict(record.init_kwargs, state, source=source)

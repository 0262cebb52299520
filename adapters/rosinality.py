"""Read rosinality/stylegan2-pytorch checkpoints (``.pt``) without running code.

rosinality's training script saves ``{"g": ..., "d": ..., "g_ema": state_dict, ...}``
and its TensorFlow converter ``{"g_ema": state_dict, "latent_avg": w_avg, ...}``; the
moving-average generator ``g_ema`` is the one to sample from (``g`` is read only when
there is no ``g_ema``). Files are read with ``torch.load(weights_only=True)``.

`read_stylegan2` maps the state dict onto the NVlabs parameter names of
`stylegan2.StyleGAN2Generator`: ``style.{i+1}`` -> ``mapping.fc{i}``,
``input.input`` -> ``synthesis.b4.const``, ``conv1`` / ``to_rgb1`` -> ``b4.conv1`` /
``b4.torgb``, ``convs.{2k-2}`` / ``convs.{2k-1}`` / ``to_rgbs.{k-1}`` -> ``b{res}.conv0`` /
``conv1`` / ``torgb`` with ``res = 4 * 2**k``, ``noises.noise_{i}`` -> the layers'
``noise_const``. Both store the style affine's bias with its constant 1 and the
up-sampling kernels in the same orientation, so values pass unchanged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ._blocks import short_keys

__all__ = ["read_stylegan2"]

StateDict = dict[str, torch.Tensor]

#: Samples and seed of the w_avg estimate for files that hold no ``latent_avg``.
W_AVG_SAMPLES = 10_000
W_AVG_SEED = 0


def _state(obj: Any, path: Path) -> tuple[StateDict, torch.Tensor | None]:
    """(generator state dict, latent_avg or None) of a rosinality checkpoint."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: not a rosinality checkpoint (holds a {type(obj).__name__})")
    for key in ("g_ema", "g"):
        state = obj.get(key)
        if isinstance(state, Mapping):
            break
    else:
        hint = (" (a genforce checkpoint: load it with the genforce reader)"
                if "generator_smooth" in obj or "generator" in obj else "")
        raise ValueError(
            f"{path}: not a rosinality checkpoint: no 'g_ema' or 'g' state dict "
            f"(keys {short_keys(sorted(map(str, obj)))}){hint}"
        )
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"{path}: '{key}' is not a state dict of tensors")
    state = dict(state)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    avg = obj.get("latent_avg")
    return state, avg if isinstance(avg, torch.Tensor) else None


def _indices(state: Mapping[str, Any], pattern: str) -> list[int]:
    """Sorted integers ``i`` of the keys matching ``pattern`` (one regex group)."""
    return sorted({int(m.group(1)) for k in state if (m := re.fullmatch(pattern, k))})


def estimate_w_avg(fcs: list[tuple[torch.Tensor, torch.Tensor]], z_dim: int,
                   lr_multiplier: float) -> torch.Tensor:
    """Mean mapping output over ``W_AVG_SAMPLES`` z ~ N(0, I) (fixed seed)."""
    gen = torch.Generator().manual_seed(W_AVG_SEED)
    x = torch.randn(W_AVG_SAMPLES, z_dim, generator=gen)
    x = x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
    for weight, bias in fcs:
        gain = lr_multiplier / math.sqrt(weight.shape[1])
        x = F.leaky_relu(F.linear(x, weight.float() * gain, bias.float() * lr_multiplier),
                         0.2) * math.sqrt(2.0)
    return x.mean(0)


def read_stylegan2(
    path: str | PathLike, lr_multiplier: float = 0.01
) -> tuple[dict[str, Any], StateDict]:
    """Init kwargs and state dict of `stylegan2.StyleGAN2Generator` from a ``.pt``.

    Parameters
    ----------
    path : path
        A rosinality checkpoint.
    lr_multiplier : float, default 0.01
        The mapping network's learning-rate multiplier (rosinality's ``lr_mlp``), which
        the weights cannot show.

    Without a ``latent_avg`` in the file (rosinality's training script saves none), the
    truncation centre ``w_avg`` is estimated as the mean w of ``W_AVG_SAMPLES`` z.
    """
    from .checkpoints import read_torch_checkpoint
    from .genforce import channel_table, check_resolution

    path = Path(path)
    src, latent_avg = _state(read_torch_checkpoint(path), path)
    if "input.input" not in src or "conv1.conv.weight" not in src:
        what = ("a genforce generator" if any(k.startswith("synthesis.") for k in src)
                else "another architecture (e.g. SWAGAN or a discriminator)")
        raise ValueError(
            f"{path}: the state dict is not a rosinality StyleGAN2 generator: no "
            f"'input.input' / 'conv1.conv.weight'; looks like {what} "
            f"(keys {short_keys(sorted(src))})"
        )
    src = dict(src)

    def take(key: str) -> torch.Tensor:
        if key not in src:
            raise ValueError(f"{path}: StyleGAN2 state dict is missing the key {key!r}")
        return src.pop(key)

    n_map = len(_indices(src, r"style\.(\d+)\.weight"))
    if _indices(src, r"style\.(\d+)\.weight") != list(range(1, n_map + 1)) or n_map == 0:
        raise ValueError(f"{path}: mapping layers style.1 .. style.n are not contiguous")
    n_noise = len(_indices(src, r"noises\.noise_(\d+)"))
    n_convs = len(_indices(src, r"convs\.(\d+)\.conv\.weight"))
    if n_convs % 2:
        raise ValueError(f"{path}: {n_convs} convolutions in 'convs', expected an even count")
    blocks = n_convs // 2 + 1
    resolution = 4 * 2 ** (blocks - 1)
    last = src.get(f"noises.noise_{n_noise - 1}")
    if last is not None and tuple(last.shape[-2:]) != (resolution, resolution):
        check_resolution(int(last.shape[-1]), path)
        raise ValueError(f"{path}: the last noise buffer is {tuple(last.shape[-2:])} but "
                         f"{blocks} blocks give a {resolution} px resolution")
    check_resolution(resolution, path)

    dst: StateDict = {}
    fcs = []
    for i in range(n_map):
        w, b = take(f"style.{i + 1}.weight"), take(f"style.{i + 1}.bias")
        dst[f"mapping.fc{i}.weight"], dst[f"mapping.fc{i}.bias"] = w, b
        fcs.append((w, b))
    z_dim, w_dim = int(fcs[0][0].shape[1]), int(fcs[-1][0].shape[0])
    if latent_avg is None:
        latent_avg = estimate_w_avg(fcs, z_dim, lr_multiplier)
    if latent_avg.numel() != w_dim:
        raise ValueError(f"{path}: latent_avg has {latent_avg.numel()} values, expected {w_dim}")
    dst["mapping.w_avg"] = latent_avg.reshape(w_dim)
    dst["synthesis.b4.const"] = take("input.input")[0]
    channels: dict[int, int] = {}
    layers = [("conv1", "synthesis.b4.conv1", 0)]
    for k in range(1, blocks):
        res = 4 * 2**k
        layers += [(f"convs.{2 * k - 2}", f"synthesis.b{res}.conv0", 2 * k - 1),
                   (f"convs.{2 * k - 1}", f"synthesis.b{res}.conv1", 2 * k)]
    for old, new, noise_index in layers:
        dst[f"{new}.weight"] = take(f"{old}.conv.weight").squeeze(0)
        dst[f"{new}.affine.weight"] = take(f"{old}.conv.modulation.weight")
        dst[f"{new}.affine.bias"] = take(f"{old}.conv.modulation.bias")
        dst[f"{new}.noise_strength"] = take(f"{old}.noise.weight").reshape(())
        dst[f"{new}.bias"] = take(f"{old}.activate.bias")
        noise = take(f"noises.noise_{noise_index}")
        dst[f"{new}.noise_const"] = noise.reshape(noise.shape[-2:])
        channels[int(new.split(".")[1][1:])] = int(dst[f"{new}.weight"].shape[0])
    rgbs = [("to_rgb1", "synthesis.b4.torgb")] + [
        (f"to_rgbs.{k - 1}", f"synthesis.b{4 * 2**k}.torgb") for k in range(1, blocks)]
    for old, new in rgbs:
        dst[f"{new}.weight"] = take(f"{old}.conv.weight").squeeze(0)
        dst[f"{new}.affine.weight"] = take(f"{old}.conv.modulation.weight")
        dst[f"{new}.affine.bias"] = take(f"{old}.conv.modulation.bias")
        dst[f"{new}.bias"] = take(f"{old}.bias").reshape(-1)
    # The up-sampling FIR kernels are derived buffers: they must be the [1, 3, 3, 1]
    # filter (times 4, the up-sampling gain) that the init kwargs rebuild.
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    expected = torch.outer(taps, taps) / 64.0 * 4.0
    for key in [k for k in src if k.endswith(".kernel")]:
        kernel = src.pop(key)
        if kernel.shape != expected.shape or not torch.allclose(kernel.float(), expected):
            raise ValueError(f"{path}: {key} is not the [1, 3, 3, 1] up-sampling filter; "
                             "other blur kernels are not supported")
    if src:
        raise ValueError(
            f"{path}: StyleGAN2 state dict has unexpected keys {short_keys(sorted(src))}"
        )
    base, cmax = channel_table(channels, path)
    kwargs: dict[str, Any] = dict(
        z_dim=z_dim,
        c_dim=0,
        w_dim=w_dim,
        img_resolution=resolution,
        img_channels=int(dst["synthesis.b4.torgb.weight"].shape[0]),
        mapping_kwargs=dict(num_layers=n_map, layer_features=int(fcs[0][0].shape[0]),
                            lr_multiplier=lr_multiplier),
        synthesis_kwargs=dict(channel_base=base, channel_max=cmax, architecture="skip"),
    )
    return kwargs, dst



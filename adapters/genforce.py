"""Read genforce model-zoo checkpoints (PGGAN, StyleGAN, StyleGAN2) without running code.

genforce (the model zoo PandA's notebooks use) saves ``.pth`` files holding a dict
``{"generator": state_dict, "discriminator": ..., "generator_smooth": state_dict}``;
its training runner nests the same under ``"models"``. The smoothed (moving-average)
generator is the one to sample from, so it is read when present, else ``"generator"``.
Files are read with ``torch.load(weights_only=True)``: tensors and plain data only.

The architecture and its sizes are inferred from the keys and shapes; settings that
leave no trace in the weights (the mapping learning-rate multiplier, a final tanh,
StyleGAN's fused up-convolution) take genforce's defaults and can be overridden.

Three readers give ``(init_kwargs, state_dict)`` for this project's networks:
`read_pggan` (`pggan.PGGANGenerator`), `read_stylegan`
(`stylegan.StyleGANGenerator`) and `read_stylegan2`
(`stylegan2.StyleGAN2Generator`, whose parameter names follow the NVlabs pickles:
the genforce names are mapped onto them; genforce's StyleGAN2-ADA port has the same keys
and is read the same way).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._blocks import short_keys

__all__ = ["detect_architecture", "load_state", "read_genforce", "read_pggan", "read_stylegan",
           "read_stylegan2"]

StateDict = dict[str, torch.Tensor]

_NAMES = {"pggan": "PGGAN", "stylegan": "StyleGAN", "stylegan2": "StyleGAN2"}


def read_torch(path: str | PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; errors name the file."""
    from .checkpoints import read_torch_checkpoint

    return read_torch_checkpoint(Path(path))


def _is_state_dict(obj: Any) -> bool:
    """A non-empty mapping of str -> tensor."""
    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def generator_state(obj: Any, path: Path) -> StateDict:
    """The generator's state dict inside a genforce file (smoothed generator first)."""
    if isinstance(obj, Mapping) and isinstance(obj.get("models"), Mapping):
        obj = obj["models"]  # a genforce training checkpoint
    if isinstance(obj, Mapping):
        for key in ("generator_smooth", "generator"):
            if _is_state_dict(obj.get(key)):
                state = dict(obj[key])
                break
        else:
            if _is_state_dict(obj):
                state = dict(obj)
            else:
                hint = ""
                if "g_ema" in obj:
                    hint = " (a rosinality StyleGAN2 checkpoint: load it as 'stylegan2')"
                present = [k for k in ("generator_smooth", "generator") if k in obj]
                if present:
                    value = obj[present[0]]
                    what = (f"an empty {type(value).__name__}" if isinstance(value, Mapping)
                            and not value else f"a {type(value).__name__}")
                    raise ValueError(
                        f"{path}: '{present[0]}' should be the generator's state dict of "
                        f"tensors but holds {what}: the checkpoint is incomplete or corrupt"
                    )
                raise ValueError(
                    f"{path}: not a genforce checkpoint: expected a dict with "
                    f"'generator_smooth' or 'generator', found keys {short_keys(list(obj))}{hint}"
                )
    else:
        raise ValueError(
            f"{path}: not a genforce checkpoint: it holds a {type(obj).__name__}, not a dict"
        )
    # Saved from torch.nn.DataParallel / DistributedDataParallel.
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def detect_architecture(state: Mapping[str, torch.Tensor]) -> str | None:
    """``"pggan"``, ``"stylegan"``, ``"stylegan2"`` from the keys; None if none fits."""
    if "synthesis.early_layer.const" in state or "synthesis.early_layer.weight" in state:
        return "stylegan2"
    if "synthesis.layer0.style.weight" in state and "mapping.dense0.weight" in state:
        return "stylegan"
    if "layer0.weight" in state and "output0.weight" in state and "mapping.dense0.weight" \
            not in state:
        return "pggan"
    return None


def read_genforce(path: str | PathLike) -> tuple[str, StateDict]:
    """(architecture, generator state dict) of a genforce ``.pth`` file."""
    from .checkpoints import detect_format

    path = Path(path)
    try:
        fmt = detect_format(path)
    except ValueError:  # e.g. a bare state dict: read below and judged by its keys
        fmt = None
    if fmt == "nvlabs-pickle":
        raise ValueError(
            f"{path}: an NVlabs network pickle (StyleGAN2 / StyleGAN3), not a genforce "
            "checkpoint; load it as 'stylegan2' or 'stylegan3'"
        )
    state = generator_state(read_torch(path), path)
    arch = detect_architecture(state)
    if arch is None:
        raise ValueError(
            f"{path}: the generator is not a genforce PGGAN, StyleGAN or StyleGAN2 "
            f"(keys {short_keys(sorted(state))})"
        )
    return arch, state


def _expect(path: Path, arch: str, want: str) -> None:
    """Raise unless the file's architecture is the one asked for."""
    if arch != want:
        raise ValueError(
            f"{path}: this is a genforce {_NAMES[arch]} checkpoint, not {_NAMES[want]}; "
            f"load it as {arch!r}"
        )


def _indices(state: Mapping[str, Any], pattern: str) -> list[int]:
    """Sorted integers ``i`` of the keys matching ``pattern`` (a regex with one group)."""
    found = {int(m.group(1)) for k in state if (m := re.fullmatch(pattern, k))}
    return sorted(found)


def _contiguous(path: Path, found: list[int], what: str) -> int:
    """The count of ``found`` indices, which must be 0, 1, ..., n-1."""
    if not found or found != list(range(len(found))):
        raise ValueError(f"{path}: {what} indices are {found}, expected 0 .. n-1")
    return len(found)


def check_resolution(resolution: Any, path: Path) -> int:
    """The resolution if it is a power of two >= 4, else a ValueError naming the file."""
    if not isinstance(resolution, int) or resolution < 4 or resolution & (resolution - 1):
        raise ValueError(f"{path}: the resolution must be a power of two >= 4, got {resolution!r}")
    return resolution


def _get(state: Mapping[str, torch.Tensor], key: str, path: Path, arch: str) -> torch.Tensor:
    """``state[key]``, or a ValueError naming the missing key."""
    if key not in state:
        raise ValueError(f"{path}: {arch} state dict is missing the key {key!r}")
    return state[key]


def read_pggan(path: str | PathLike, **overrides: Any) -> tuple[dict[str, Any], StateDict]:
    """Init kwargs of `pggan.PGGANGenerator` and the state dict of a genforce file.

    ``overrides`` (``c_dim``, ``final_tanh``, ``fused_scale``) replace inferred values.
    """
    path = Path(path)
    arch, state = read_genforce(path)
    _expect(path, arch, "pggan")
    blocks = _contiguous(path, _indices(state, r"output(\d+)\.weight"), "PGGAN toRGB (output)")
    resolution = check_resolution(4 * 2 ** (blocks - 1), path)
    channels = [int(_get(state, f"layer{2 * b + 1}.weight", path, "PGGAN").shape[0])
                for b in range(blocks)]
    first = _get(state, "layer0.weight", path, "PGGAN")
    kwargs: dict[str, Any] = dict(
        z_dim=int(first.shape[1]),
        img_resolution=resolution,
        img_channels=int(state["output0.weight"].shape[0]),
        channels=channels,
        fused_scale=False,
    )
    # A fused up-convolution stores its weight transposed (in, out, 3, 3); when in == out
    # the shapes cannot tell, and genforce's default (not fused) is taken.
    for b in range(1, blocks):
        shape = tuple(_get(state, f"layer{2 * b}.weight", path, "PGGAN").shape)
        if shape[:2] == (channels[b - 1], channels[b]) and channels[b - 1] != channels[b]:
            kwargs["fused_scale"] = True
    c_dim = int(overrides.get("c_dim", 0))
    kwargs["z_dim"] -= c_dim
    kwargs.update(overrides)
    lod = state.get("lod")
    if lod is not None and float(lod) != 0:
        raise ValueError(
            f"{path}: PGGAN level of detail lod={float(lod)} (a snapshot taken while "
            "growing); only fully grown generators (lod = 0) are supported"
        )
    return kwargs, state


def read_stylegan(path: str | PathLike, **overrides: Any) -> tuple[dict[str, Any], StateDict]:
    """Init kwargs of `stylegan.StyleGANGenerator` and the state dict.

    ``overrides`` (``mapping_lr_multiplier``, ``fused_scale``, ``final_tanh``) replace the
    genforce defaults (0.01, ``"auto"``: fused at 128 px and above, False).
    """
    path = Path(path)
    arch, state = read_genforce(path)
    _expect(path, arch, "stylegan")
    n_map = _contiguous(path, _indices(state, r"mapping\.dense(\d+)\.weight"), "mapping layer")
    n_layers = _contiguous(path, _indices(state, r"synthesis\.layer(\d+)\.style\.weight"),
                           "synthesis layer")
    if n_layers % 2:
        raise ValueError(f"{path}: StyleGAN has {n_layers} style layers, expected an even count")
    blocks = n_layers // 2
    resolution = 4 * 2 ** (blocks - 1)
    noise = state.get(f"synthesis.layer{n_layers - 1}.apply_noise.noise")
    if noise is not None:
        if noise.ndim != 4 or noise.shape[1] != 1:
            raise ValueError(
                f"{path}: per-channel noise (noise shape {tuple(noise.shape)}) is not "
                "supported; only genforce's default spatial noise"
            )
        if noise.shape[-1] != resolution or noise.shape[-2] != resolution:
            check_resolution(int(noise.shape[-1]), path)
            raise ValueError(
                f"{path}: the last noise buffer is {tuple(noise.shape[-2:])} but "
                f"{blocks} blocks give a {resolution} px resolution"
            )
    check_resolution(resolution, path)
    channels = [int(_get(state, f"synthesis.layer{2 * b + 1}.weight", path, "StyleGAN").shape[0])
                for b in range(blocks)]
    dense0 = state["mapping.dense0.weight"]
    last = _get(state, f"mapping.dense{n_map - 1}.weight", path, "StyleGAN")
    w_avg = _get(state, "truncation.w_avg", path, "StyleGAN")
    w_dim = int(state["synthesis.layer0.style.weight"].shape[1])
    label = state.get("mapping.label_weight")
    c_dim = int(label.shape[0]) if label is not None else 0
    kwargs: dict[str, Any] = dict(
        z_dim=int(dense0.shape[1]) // (2 if c_dim else 1),
        c_dim=c_dim,
        w_dim=w_dim,
        img_resolution=resolution,
        img_channels=int(_get(state, "synthesis.output0.weight", path, "StyleGAN").shape[0]),
        channels=channels,
        mapping_layers=n_map,
        mapping_features=int(dense0.shape[0]) if n_map > 1 else w_dim,
        repeat_w=int(last.shape[0]) == w_dim,
        const_input="synthesis.layer0.const" in state,
    )
    if not kwargs["repeat_w"] and w_avg.numel() != w_dim * n_layers:
        raise ValueError(f"{path}: w_avg has {w_avg.numel()} values, expected {w_dim * n_layers}")
    kwargs.update(overrides)
    # This project's StyleGAN keeps the truncation centre in its mapping network.
    state["mapping.w_avg"] = state.pop("truncation.w_avg")
    lod = state.get("synthesis.lod")
    if lod is not None and float(lod) != 0:
        raise ValueError(
            f"{path}: StyleGAN level of detail lod={float(lod)} (a snapshot taken while "
            "growing); only fully grown generators (lod = 0) are supported"
        )
    return kwargs, state


def channel_table(channels: Mapping[int, int], path: Path) -> tuple[int, int]:
    """(channel_base, channel_max) with ``min(base // res, max) == channels[res]``."""
    cmax = max(channels.values())
    base = cmax * max(channels)
    below = [(res, c) for res, c in channels.items() if c < cmax]
    if below:
        res, c = max(below)
        base = c * res
    if any(min(base // res, cmax) != c for res, c in channels.items()):
        raise ValueError(
            f"{path}: the channel counts {dict(sorted(channels.items()))} do not follow "
            "min(channel_base // resolution, channel_max); this StyleGAN2 is not supported"
        )
    return base, cmax


def read_stylegan2(path: str | PathLike) -> tuple[dict[str, Any], StateDict]:
    """Init kwargs and state dict of `stylegan2.StyleGAN2Generator` from genforce.

    genforce names are mapped onto the NVlabs ones (``synthesis.layer{i}`` ->
    ``synthesis.b{res}.conv0/conv1``, ``output{k}`` -> ``b{res}.torgb``, ``mapping.dense{i}``
    -> ``mapping.fc{i}``, ``truncation.w_avg`` -> ``mapping.w_avg``); genforce adds the
    style affine's constant 1 outside the stored bias, NVlabs inside it, and keeps the
    up-sampling kernels in TensorFlow's orientation (NVlabs: flipped).
    """
    path = Path(path)
    arch, src = read_genforce(path)
    _expect(path, arch, "stylegan2")
    src = dict(src)

    def take(key: str) -> torch.Tensor:
        if key not in src:
            raise ValueError(f"{path}: StyleGAN2 state dict is missing the key {key!r}")
        return src.pop(key)

    if "mapping.label_weight" in src:
        raise ValueError(
            f"{path}: class-conditional genforce StyleGAN2 with a concatenated label "
            "('mapping.label_weight') is not supported (StyleGAN2-ADA's embedded label is)"
        )
    if "synthesis.early_layer.const" not in src:
        raise ValueError(f"{path}: genforce StyleGAN2 without a constant input is not supported")
    n_map = _contiguous(path, _indices(src, r"mapping\.dense(\d+)\.weight"), "mapping layer")
    n_layers = _contiguous(path, _indices(src, r"synthesis\.layer(\d+)\.style\.weight"),
                           "synthesis layer") + 1  # layer0 .. layer{n-2}, plus toRGB
    if n_layers % 2:
        raise ValueError(f"{path}: StyleGAN2 has {n_layers - 1} conv layers, expected an odd count")
    blocks = n_layers // 2
    resolution = 4 * 2 ** (blocks - 1)
    last_noise = src.get(f"synthesis.layer{n_layers - 2}.noise")
    if last_noise is not None and tuple(last_noise.shape[-2:]) != (resolution, resolution):
        check_resolution(int(last_noise.shape[-1]), path)
        raise ValueError(
            f"{path}: the last noise buffer is {tuple(last_noise.shape[-2:])} but {blocks} "
            f"blocks give a {resolution} px resolution"
        )
    check_resolution(resolution, path)
    outputs = _indices(src, r"synthesis\.output(\d+)\.weight")
    if outputs == list(range(blocks)):
        architecture = "skip"
    elif outputs == [blocks - 1]:
        architecture = "orig"
    else:
        raise ValueError(f"{path}: toRGB layers {outputs} fit neither 'skip' nor 'origin'")
    if any(k.startswith("synthesis.skip_layer") for k in src):
        raise ValueError(f"{path}: genforce 'resnet' StyleGAN2 is not supported")

    w_dim = int(src["synthesis.layer0.style.weight"].shape[1])
    dense0 = src["mapping.dense0.weight"]
    dst: StateDict = {}
    for i in range(n_map):
        dst[f"mapping.fc{i}.weight"] = take(f"mapping.dense{i}.weight")
        dst[f"mapping.fc{i}.bias"] = take(f"mapping.dense{i}.bias")
    if int(dst[f"mapping.fc{n_map - 1}.weight"].shape[0]) != w_dim:
        raise ValueError(f"{path}: genforce StyleGAN2 with repeat_w=False is not supported")
    dst["mapping.w_avg"] = take("truncation.w_avg")
    c_dim = embed = 0
    if "mapping.LabelEmbed.weight" in src:
        # genforce's StyleGAN2-ADA port: the label goes through a dense layer and is
        # normalised apart from z, as NVlabs' mapping.embed.
        dst["mapping.embed.weight"] = take("mapping.LabelEmbed.weight")
        dst["mapping.embed.bias"] = take("mapping.LabelEmbed.bias")
        embed, c_dim = (int(n) for n in dst["mapping.embed.weight"].shape)
    dst["synthesis.b4.const"] = take("synthesis.early_layer.const")[0]
    channels: dict[int, int] = {}
    for i in range(n_layers - 1):
        res = 4 * 2 ** ((i + 1) // 2)
        name = f"synthesis.b{res}.conv{0 if i % 2 else 1}"
        g = f"synthesis.layer{i}"
        weight = take(f"{g}.weight")
        # genforce keeps the TensorFlow orientation of the up-sampling kernels and flips
        # them when it runs; the NVlabs layout stores them flipped.
        dst[f"{name}.weight"] = weight.flip(2, 3) if i % 2 else weight
        dst[f"{name}.bias"] = take(f"{g}.bias")
        dst[f"{name}.affine.weight"] = take(f"{g}.style.weight")
        dst[f"{name}.affine.bias"] = take(f"{g}.style.bias") + 1.0
        dst[f"{name}.noise_strength"] = take(f"{g}.noise_strength").reshape(())
        dst[f"{name}.noise_const"] = take(f"{g}.noise").reshape(res, res)
        channels[res] = int(dst[f"{name}.weight"].shape[0])
    for k in outputs:
        res = 4 * 2 ** k
        name, g = f"synthesis.b{res}.torgb", f"synthesis.output{k}"
        dst[f"{name}.weight"] = take(f"{g}.weight")
        dst[f"{name}.bias"] = take(f"{g}.bias")
        dst[f"{name}.affine.weight"] = take(f"{g}.style.weight")
        dst[f"{name}.affine.bias"] = take(f"{g}.style.bias") + 1.0
    # Derived FIR kernels (the [1, 3, 3, 1] filter) are rebuilt from the init kwargs.
    for key in [k for k in src if k.endswith(".kernel")]:
        del src[key]
    if src:
        raise ValueError(
            f"{path}: StyleGAN2 state dict has unexpected keys {short_keys(sorted(src))}"
        )
    base, cmax = channel_table(channels, path)
    mapping_kwargs: dict[str, Any] = dict(num_layers=n_map, layer_features=int(dense0.shape[0]),
                                          lr_multiplier=0.01)
    if c_dim:
        mapping_kwargs["embed_features"] = embed
    kwargs: dict[str, Any] = dict(
        z_dim=int(dense0.shape[1]) - embed,
        c_dim=c_dim,
        w_dim=w_dim,
        img_resolution=resolution,
        img_channels=int(dst[f"synthesis.b{resolution}.torgb.weight"].shape[0]),
        mapping_kwargs=mapping_kwargs,
        synthesis_kwargs=dict(channel_base=base, channel_max=cmax, architecture=architecture),
    )
    return kwargs, dst


def load_state(G: nn.Module, state: dict[str, torch.Tensor], path: Path, arch: str) -> None:
    """Strict load whose errors name the file and the missing, extra or mis-shaped keys."""
    own = G.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    problems = []
    if missing:
        problems.append(f"missing keys {short_keys(missing)}")
    if extra:
        problems.append(f"unexpected keys {short_keys(extra)}")
    problems += [
        f"{k} has shape {tuple(state[k].shape)}, expected {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape
    ]
    if problems:
        raise ValueError(f"{path}: state dict does not match {arch}: " + "; ".join(problems))
    G.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)



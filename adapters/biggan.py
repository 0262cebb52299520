"""``biggan``: BigGAN-deep through ``pytorch-pretrained-biggan``.

The generator takes a truncated-normal latent ``z``, a class vector (one-hot over the
ImageNet classes) and the truncation value, which also selects the batch-norm
statistics. Feature layers are the outputs of the blocks of ``generator.layers`` (the
residual blocks and the self-attention layer), named by their dotted module names,
``generator.layers.0`` ... in forward order.

Because capture and re-injection go through forward hooks, the whole forward pass runs
with the sample's own class vector and truncation: the conditioning of the blocks after
the edited layer is kept as it is.

Weights are never downloaded: pass a local folder with ``config.json`` and
``pytorch_model.bin`` (the files ``BigGAN.from_pretrained`` caches, e.g. for
``biggan-deep-128``). Random weights are built only on request (``random_weights=True``),
for tests and for trying the pipeline.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from .base import Adapter
from .devices import torch_device, torch_dtype
from .latents import Latents
from .projection import effective_weight

__all__ = ["BigGANAdapter"]

_CONFIG_FILE = "config.json"
_WEIGHTS_FILE = "pytorch_model.bin"
# Power iterations run on the spectral-norm vectors of a randomly initialised model: its
# random u, v give a meaningless sigma, and eval mode never refines them.
_SPECTRAL_ITERATIONS = 20


class BigGANAdapter(Adapter):
    """Adapter for BigGAN-deep (``pytorch_pretrained_biggan.BigGAN``).

    Parameters
    ----------
    weights : path, optional
        Folder holding ``config.json`` and ``pytorch_model.bin``. Required unless
        ``random_weights=True``.
    config : BigGANConfig or dict, optional
        Architecture for ``random_weights=True`` (default: the package's default,
        the 128x128 model). With ``weights`` the folder's ``config.json`` is used.
    random_weights : bool, default False
        Build an untrained model. Never done silently: without weights and without this
        flag a ``ValueError`` says what to pass.
    seed : int, default 0
        Seed of the random initialisation (the global RNG state is restored afterwards).
    device, dtype : optional
        Where to put the generator, and its precision.
    package : str, default "pytorch_pretrained_biggan"
        Import name of the package providing ``BigGAN`` and ``BigGANConfig``.

    Raises
    ------
    ImportError
        If the package is missing.
    FileNotFoundError
        If the weights folder or one of its two files is missing.
    ValueError
        If a file cannot be read or the weights do not fit the configuration.

    Examples
    --------
    A small untrained model, as the tests use:

    >>> from tensorpanda.adapters import BigGANAdapter
    >>> cfg = dict(output_dim=32, z_dim=16, class_embed_dim=16, channel_width=4,
    ...            num_classes=10, attention_layer_position=2,
    ...            layers=[(False, 16, 16), (True, 16, 8), (True, 8, 4), (False, 4, 2),
    ...                    (True, 2, 1)])
    >>> gan = BigGANAdapter(config=cfg, random_weights=True)
    >>> gan.layers["generator.layers.3"], gan.num_classes
    ((16, 16, 16), 10)
    >>> list(gan.layers)
    ['generator.layers.0', 'generator.layers.1', 'generator.layers.2',
     'generator.layers.3', 'generator.layers.4', 'generator.layers.5']

    Without weights and without the flag nothing is built:

    >>> BigGANAdapter()
    Traceback (most recent call last):
        ...
    ValueError: BigGAN weights are not bundled and are never downloaded: ...
    """

    name = "biggan"
    has_truncation = True
    latent_module = "generator.gen_z"

    def __init__(
        self,
        weights: str | PathLike | None = None,
        *,
        config: Any = None,
        random_weights: bool = False,
        seed: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        package: str = "pytorch_pretrained_biggan",
    ) -> None:
        lib = _import_package(package)
        device = torch_device(device)
        dtype = torch_dtype(dtype)
        if weights is not None:
            if random_weights:
                raise ValueError("pass either weights=... or random_weights=True, not both")
            if config is not None:
                raise ValueError(
                    "config is read from the weights folder's config.json; do not pass "
                    "config= together with weights="
                )
            model = _load_folder(lib, Path(weights).expanduser(), device)
        elif random_weights:
            model = _random_model(lib, config, seed)
        else:
            raise ValueError(
                "BigGAN weights are not bundled and are never downloaded: pass weights= a "
                f"folder with {_CONFIG_FILE} and {_WEIGHTS_FILE} (e.g. those of "
                "biggan-deep-128), or random_weights=True for an untrained model"
            )
        model.to(device=device, dtype=dtype)
        self.config = model.config
        self.num_classes = int(model.config.num_classes)
        blocks = [f"generator.layers.{i}" for i in range(len(model.generator.layers))]
        super().__init__(model, latent_shape=(int(model.config.z_dim),), layers=blocks)

    def _sample_z(
        self, n: int, generator: torch.Generator, truncation: float | None
    ) -> torch.Tensor:
        """Truncated-normal codes scaled by the truncation."""
        # BigGAN's truncation trick: z = truncation * truncnorm(-2, 2).
        z = torch.empty(n, self.latent_dim)
        torch.nn.init.trunc_normal_(z, 0.0, 1.0, -2.0, 2.0, generator=generator)
        return z * (1.0 if truncation is None else truncation)

    def _forward(self, latents: Latents) -> Any:
        """``BigGAN(z, class vector, truncation)``."""
        truncation = 1.0 if latents.truncation is None else latents.truncation
        return self.generator(latents.z, latents.condition, truncation)

    def latent_projection(self) -> torch.Tensor:
        """Columns of ``generator.gen_z``'s weight that act on ``z``.

        ``gen_z`` acts on ``[z, embed(class)]``; the class-embedding half is left out.

        Returns
        -------
        torch.Tensor
            ``(4 * 4 * 16 * channel_width, z_dim)``, float32.

        Examples
        --------
        >>> from tensorpanda.adapters import BigGANAdapter
        >>> cfg = dict(output_dim=32, z_dim=16, class_embed_dim=16, channel_width=4,
        ...            num_classes=10, attention_layer_position=2,
        ...            layers=[(False, 16, 16), (True, 16, 8), (True, 8, 4), (False, 4, 2),
        ...                    (True, 2, 1)])
        >>> gan = BigGANAdapter(config=cfg, random_weights=True)
        >>> W = gan.latent_projection()   # 4 * 4 * 16 * 4 rows, one column per entry of z
        >>> W.shape, W.dtype
        (torch.Size([1024, 16]), torch.float32)
        """
        weight = effective_weight(self.generator.generator.gen_z).detach().float()
        return weight[:, : self.latent_dim].contiguous()


def _import_package(package: str) -> ModuleType:
    """Import the BigGAN package, or say what to install."""
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError as err:
        if err.name is not None and err.name.split(".")[0] != package.split(".")[0]:
            # The package is there but one of its own imports (boto3, requests) is not.
            raise ImportError(
                f"{package!r} needs {err.name!r}, which is not installed; install it with "
                f"`pip install {err.name}`"
            ) from err
        raise ImportError(
            f"the biggan adapter needs the package {package!r}, which is not installed; "
            "install it with `pip install pytorch-pretrained-biggan` (or "
            "`pip install tensorpanda[biggan]`)"
        ) from err


def _make_config(lib: ModuleType, config: Any) -> Any:
    """A ``BigGANConfig`` from ``None`` (the default), a config, or a dict."""
    if config is None:
        return lib.BigGANConfig()
    if isinstance(config, lib.BigGANConfig):
        return config
    if isinstance(config, Mapping):
        return lib.BigGANConfig.from_dict(dict(config))
    raise TypeError(f"config must be a BigGANConfig or a dict, got {type(config).__name__}")


def _random_model(lib: ModuleType, config: Any, seed: int) -> nn.Module:
    """An untrained BigGAN, seeded, with usable batch-norm and spectral-norm state."""
    config = _make_config(lib, config)
    # Seed the initialisation without disturbing the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = lib.BigGAN(config)
    from torch.nn.utils.spectral_norm import SpectralNorm

    with torch.no_grad():
        for module in model.modules():
            # The unconditional batch norm allocates weight and bias with torch.Tensor(n),
            # i.e. uninitialised memory; give them the identity transform.
            if type(module).__name__ == "BigGANBatchNorm" and not module.conditional:
                module.weight.fill_(1.0)
                module.bias.zero_()
            for hook in module._forward_pre_hooks.values():
                if isinstance(hook, SpectralNorm):
                    for _ in range(_SPECTRAL_ITERATIONS):
                        hook.compute_weight(module, do_power_iteration=True)
    return model


def _load_folder(lib: ModuleType, folder: Path, device: torch.device) -> nn.Module:
    """BigGAN from a local ``config.json`` and ``pytorch_model.bin``, every failure explained."""
    if not folder.is_dir():
        raise FileNotFoundError(
            f"BigGAN weights folder {str(folder)!r} does not exist; it must hold "
            f"{_CONFIG_FILE} and {_WEIGHTS_FILE}"
        )
    config_path, weights_path = folder / _CONFIG_FILE, folder / _WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"{str(path)!r} is missing from the BigGAN weights folder")
    try:
        config_dict = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{str(config_path)!r} is not valid JSON: {err}") from None
    if not isinstance(config_dict, dict):
        raise ValueError(f"{str(config_path)!r} must hold a JSON object of BigGAN settings")
    try:
        state = torch.load(weights_path, weights_only=True, map_location=device)
    except Exception as err:  # torch raises several types for a file that is not its own
        raise ValueError(
            f"cannot read {str(weights_path)!r} as a torch checkpoint "
            f"({type(err).__name__}: {err}); expected a state dict written by torch.save"
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(
            f"{str(weights_path)!r} holds a {type(state).__name__}, not a state dict of "
            "parameter name -> tensor"
        )
    try:
        model = lib.BigGAN(lib.BigGANConfig.from_dict(config_dict))
    except Exception as err:
        raise ValueError(f"cannot build BigGAN from {str(config_path)!r}: {err}") from None
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError) as err:
        raise ValueError(
            f"{str(weights_path)!r} does not fit the BigGAN of {str(config_path)!r}: {err}"
        ) from None
    return model

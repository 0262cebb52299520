"""``dcgan-faces``: the DCGAN trained on DigiFace1M shipped by ``gan-face-generate``.

64x64 RGB faces from a 100-d standard normal latent. The generator is one
``nn.Sequential`` named ``main``: four ConvTranspose2d -> BatchNorm2d -> ReLU blocks and
a final ConvTranspose2d -> Tanh. The feature layers are the block outputs (after ReLU):

=========  =======  ============
layer      alias    (C, H, W)
=========  =======  ============
main.2     4x4      (512, 4, 4)
main.5     8x8      (256, 8, 8)
main.8     16x16    (128, 16, 16)
main.11    32x32    (64, 32, 32)
=========  =======  ============

The generator runs in eval mode: BatchNorm then uses its running statistics, so a
sample's image does not depend on the other samples in its batch (in train mode it does,
and an edit of one sample would leak into the others).

Install the weights with ``pip install --no-deps gan-face-generate``: its declared
dependencies (wandb, torchvision, ...) are not needed here, and would replace a CPU
build of torch.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from .base import Adapter
from .devices import torch_device, torch_dtype
from .latents import Latents

__all__ = ["DCGANFaces", "DCGAN_FACES_LAYERS"]

#: Dotted module name -> alias of the feature layers (outputs of the ReLU blocks).
DCGAN_FACES_LAYERS = {"main.2": "4x4", "main.5": "8x8", "main.8": "16x16", "main.11": "32x32"}

_INSTALL_HINT = "pip install --no-deps gan-face-generate"
_WEIGHTS_FILE = "weights.tar"
_STATE_KEY = "netG_state_dict"


class DCGANFaces(Adapter):
    """Adapter for the DCGAN-faces generator of ``gan-face-generate``.

    Parameters
    ----------
    weights : path, optional
        A checkpoint to read instead of the packaged ``weights.tar``: either the
        package's format (a dict with ``"netG_state_dict"``) or a bare state dict of the
        generator. Channel counts are read from the weights.
    device : torch.device or str, optional
        Where to put the generator (default CPU).
    dtype : torch.dtype, optional
        Cast the generator, e.g. ``torch.float16`` (features still come back float32).
    package : str, default "gan_face_generate"
        Import name of the package that provides the architecture (``models.Generator``)
        and the weights; a parameter so that forks, and the missing-package message, can
        be exercised.

    Raises
    ------
    ImportError
        If the package is not installed (the message says how to install it).
    FileNotFoundError
        If ``weights`` does not exist.
    ValueError
        If the weights are not a state dict of this architecture.

    Examples
    --------
    >>> from tensorpanda.adapters import DCGANFaces
    >>> gan = DCGANFaces()
    >>> gan.layers["main.5"], gan.aliases["8x8"], gan.default_layer
    ((256, 8, 8), 'main.5', 'main.5')
    >>> gan.weights_path.name
    'weights.tar'

    A checkpoint of one's own, here the generator's state dict saved again:

    >>> import os, tempfile, torch
    >>> path = os.path.join(tempfile.mkdtemp(), "generator.pt")
    >>> torch.save(gan.generator.state_dict(), path)
    >>> DCGANFaces(weights=path).latent_shape
    (100,)
    """

    name = "dcgan-faces"
    latent_module = "main.0"

    def __init__(
        self,
        weights: str | PathLike | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        package: str = "gan_face_generate",
    ) -> None:
        package_dir = _package_dir(package)
        path = Path(weights) if weights is not None else package_dir / _WEIGHTS_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"DCGAN weights not found at {str(path)!r}"
                + ("" if weights is not None else f"; reinstall with `{_INSTALL_HINT}`")
            )
        device = torch_device(device)
        dtype = torch_dtype(dtype)
        state = _read_state_dict(path, device)
        # models.py imports only torch; the package's train.py / inference.py would pull in
        # wandb and torchvision, so they are never imported.
        Generator = importlib.import_module(f"{package}.models").Generator
        nz, ngf, nc = _dimensions(state, path)
        net = Generator(ngpu=0, nc=nc, nz=nz, ngf=ngf)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(
                f"{str(path)!r} is not a state dict of the DCGAN-faces generator: {err}"
            ) from None
        net.to(device=device, dtype=dtype)
        super().__init__(
            net,
            latent_shape=(nz,),
            layers=list(DCGAN_FACES_LAYERS),
            aliases={alias: layer for layer, alias in DCGAN_FACES_LAYERS.items()},
            default_layer="main.5",
        )
        self.weights_path = path

    def _sample_z(
        self, n: int, generator: torch.Generator, truncation: float | None
    ) -> torch.Tensor:
        """z ~ N(0, I), shape ``(n, nz)``."""
        # The training script draws z ~ N(0, I) (torch.randn).
        return torch.randn(n, self.latent_dim, generator=generator)

    def _forward(self, latents: Latents) -> Any:
        """The generator takes z as a ``(B, nz, 1, 1)`` image."""
        return self.generator(latents.z[:, :, None, None])


def _package_dir(package: str) -> Path:
    """Folder of ``package``, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"the dcgan-faces adapter needs the package {package!r}, which is not installed; "
            f"install it with `{_INSTALL_HINT}` (--no-deps: its declared dependencies are "
            "not needed and would replace the CPU build of torch)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _read_state_dict(path: Path, device: torch.device) -> Mapping[str, torch.Tensor]:
    """The generator's state dict from the package's checkpoint format or a bare one."""
    try:
        # map_location matters: the packaged checkpoint was saved from a CUDA device.
        obj = torch.load(path, weights_only=True, map_location=device)
    except Exception as err:  # torch raises several types for a file that is not its own
        raise ValueError(
            f"cannot read {str(path)!r} as a torch checkpoint ({type(err).__name__}: {err}); "
            "expected a file written by torch.save"
        ) from None
    if isinstance(obj, Mapping) and _STATE_KEY in obj:
        obj = obj[_STATE_KEY]
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise ValueError(
            f"{str(path)!r} holds a {type(obj).__name__}, not a state dict; expected a dict "
            f"with key {_STATE_KEY!r} or a dict of parameter name -> tensor"
        )
    return obj


def _dimensions(state: Mapping[str, torch.Tensor], path: Path) -> tuple[int, int, int]:
    """(nz, ngf, nc) from the first and last ConvTranspose2d weights."""
    first, last = state.get("main.0.weight"), state.get("main.12.weight")
    if first is None or last is None or first.ndim != 4 or last.ndim != 4:
        raise ValueError(
            f"{str(path)!r} is not a state dict of the DCGAN-faces generator: expected "
            "4-d weights 'main.0.weight' and 'main.12.weight', found keys "
            f"{sorted(state)[:8]}{' ...' if len(state) > 8 else ''}"
        )
    return int(first.shape[0]), int(first.shape[1]) // 8, int(last.shape[1])

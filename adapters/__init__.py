"""Per-architecture adapters: capture and re-inject a generator's feature maps.

An adapter wraps a pretrained generator and answers what PandA needs from it: sample
latents, stream the feature maps of a named layer, and generate images with those feature
maps edited. Capture and re-injection use forward hooks ([`Trace`][adapters.Trace]), so a zero edit
gives bit-for-bit the plain forward pass.

Importing this package imports no generator package and reads no weights: the built-in
adapters (``"dcgan-faces"``, ``"biggan"``, and from checkpoint files ``"stylegan2"``,
``"stylegan3"``, ``"stylegan"``, ``"pggan"``: `tensorpanda.adapters.style`) are
loaded by [`load`][adapters.load].

Examples
--------
>>> from tensorpanda.adapters import load
>>> gan = load("dcgan-faces")
>>> latents = gan.sample_latents(1000, seed=0)
>>> stream = gan.features(latents, "8x8", batch_size=100)  # lazy: nothing runs yet
>>> stream.shape, len(stream)
((1000, 256, 8, 8), 10)
>>> next(iter(stream)).shape
torch.Size([100, 256, 8, 8])
"""

try:
    import torch  # noqa: F401  (the generators are torch modules)
except ImportError as error:  # the core installs without torch; say which extra brings it
    raise ImportError(
        "tensorpanda.adapters needs torch, which the core does not install: "
        "pip install 'tensorpanda[gan]'"
    ) from error

from .base import Adapter
from .biggan import BigGANAdapter
from .dcgan import DCGANFaces
from .features import FeatureStream
from .generic import GenericAdapter
from .hooks import Trace, assert_no_hooks, forward_hooks
from .latents import Latents
from .registry import available, load, register
from .style import (
    PGGANAdapter,
    StyleGAN1Adapter,
    StyleGAN2Adapter,
    StyleGAN3Adapter,
    StyleGANAdapter,
)

__all__ = [
    "Adapter",
    "BigGANAdapter",
    "DCGANFaces",
    "FeatureStream",
    "GenericAdapter",
    "Latents",
    "PGGANAdapter",
    "StyleGAN1Adapter",
    "StyleGAN2Adapter",
    "StyleGAN3Adapter",
    "StyleGANAdapter",
    "Trace",
    "assert_no_hooks",
    "available",
    "forward_hooks",
    "load",
    "register",
]

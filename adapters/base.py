"""The [`Adapter`][adapters.Adapter] base class: what a generator must tell tensorpanda.

A new architecture fills three things in: a layer table (the dotted names of the modules
whose outputs are feature maps), a latent sampler (`Adapter._sample_z`), and how to
call the generator and turn its output into images (`Adapter._forward`,
`Adapter._to_image`). Everything else, capture, re-injection, batching, validation,
comes from this class through forward hooks ([`Trace`][adapters.hooks.Trace]).
This module runs the generator; which modules are feature layers (`layers`) and the
weight SeFa reads (`projection`) live beside it.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .devices import torch_device, torch_dtype
from .features import FeatureStream, progress_bar
from .hooks import Trace, find_module
from .latents import Latents, batch_slices
from .layers import check_layer_names, probe_layers, resolve_layer
from .projection import find_latent_module, projection_matrix

__all__ = ["Adapter", "Edit"]

logger = logging.getLogger(__name__)

#: What ``Adapter.generate(edit=...)`` accepts: an additive delta, or a callable
#: ``edit(features, index) -> new features``.
Edit = torch.Tensor | np.ndarray | Callable[[torch.Tensor, slice], torch.Tensor]


class Adapter:
    """A pretrained generator seen as latents -> feature maps at named layers -> images.

    Subclasses pass the generator, the latent shape and the layer table to ``__init__``
    and implement `_sample_z` and `_forward` (and `_to_image` when the
    output is not a Tanh image in ``[-1, 1]``). Conditional generators set
    `num_classes`; generators that take a truncation value set
    [`has_truncation`][adapters.Adapter.has_truncation].

    Parameters
    ----------
    generator : torch.nn.Module
        The network; it is put in eval mode and run under ``torch.no_grad()``.
    latent_shape : tuple of int
        Shape of one latent code ``z`` (without the sample axis).
    layers : sequence of str, optional
        Dotted module names whose outputs are ``(B, C, H, W)`` feature maps. ``None``
        discovers them with one dry run: every submodule that runs once and returns a 4-D
        floating tensor.
    aliases : mapping of str to str, optional
        Friendly names for layers, alias -> dotted name.
    default_layer : str, optional
        Layer used when none is given; by default the middle one of the table.
    name : str, optional
        Overrides the class attribute [`name`][adapters.Adapter.name].

    Attributes
    ----------
    name : str
        Registry name of the adapter.
    generator : torch.nn.Module
    latent_shape : tuple of int
    num_classes : int or None
        Number of classes of a class-conditional generator.
    has_truncation : bool
        Whether latents carry a truncation value passed to the generator.

    Examples
    --------
    The built-in adapters are subclasses, made by [`load`][adapters.load]:

    >>> from tensorpanda.adapters import Adapter, load
    >>> gan = load("dcgan-faces")
    >>> isinstance(gan, Adapter), gan.latent_shape, gan.num_classes
    (True, (100,), None)
    >>> gan.layers
    {'main.2': (512, 4, 4), 'main.5': (256, 8, 8), 'main.8': (128, 16, 16),
     'main.11': (64, 32, 32)}

    A new architecture subclasses it, here for a toy generator (or is wrapped without a
    class by [`GenericAdapter`][adapters.GenericAdapter]):

    >>> import torch
    >>> from torch import nn
    >>> class Toy(Adapter):
    ...     name = "toy"
    ...     def __init__(self):
    ...         net = nn.Sequential(nn.Unflatten(1, (8, 1, 1)), nn.ConvTranspose2d(8, 4, 4),
    ...                             nn.ReLU(), nn.ConvTranspose2d(4, 3, 4, 2, 1), nn.Tanh())
    ...         super().__init__(net, latent_shape=(8,), layers=["2"])
    ...     def _sample_z(self, n, generator, truncation):
    ...         return torch.randn(n, 8, generator=generator)
    ...     def _forward(self, latents):
    ...         return self.generator(latents.z)
    >>> toy = Toy()
    >>> toy.layers
    {'2': (4, 4, 4)}
    >>> toy.generate(toy.sample_latents(2)).shape
    torch.Size([2, 3, 8, 8])
    """

    name: str = "adapter"
    num_classes: int | None = None
    has_truncation: bool = False
    #: Truncation used when ``sample_latents`` gets ``truncation=None`` (``has_truncation``).
    default_truncation: float = 1.0
    #: Dotted name of the first module acting on ``z``; ``None`` finds it by a dry run.
    latent_module: str | None = None
    #: Whether the generator reads W / W+ codes (``Latents.ws``): style-based ones do.
    reads_ws: bool = False

    def __init__(
        self,
        generator: nn.Module,
        latent_shape: Sequence[int],
        layers: Sequence[str] | None = None,
        *,
        aliases: Mapping[str, str] | None = None,
        default_layer: str | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(generator, nn.Module):
            raise TypeError(f"generator must be a torch.nn.Module, got {type(generator).__name__}")
        self.generator = generator.eval()
        self.latent_shape = tuple(int(d) for d in latent_shape)
        if name is not None:
            self.name = name
        if isinstance(layers, str):
            layers = [layers]
        self._layer_names = None if layers is None else list(layers)
        self._aliases = dict(aliases or {})
        check_layer_names(generator, self._layer_names, self._aliases)
        self._default_layer = default_layer
        self._layers: dict[str, tuple[int, int, int]] | None = None

    # -- what a subclass provides ------------------------------------------------------

    def _sample_z(
        self, n: int, generator: torch.Generator, truncation: float | None
    ) -> torch.Tensor:
        """Draw ``n`` latent codes ``(n, *latent_shape)`` on the CPU from ``generator``."""
        raise NotImplementedError(f"{type(self).__name__} must implement _sample_z")

    def _forward(self, latents: Latents) -> Any:
        """Run the generator on a batch already on its device and dtype."""
        raise NotImplementedError(f"{type(self).__name__} must implement _forward")

    def _to_image(self, output: Any) -> torch.Tensor:
        """Map the generator's output to ``(B, 3, H, W)`` in ``[0, 1]`` (default: Tanh)."""
        return ((output.float() + 1.0) / 2.0).clamp_(0.0, 1.0)

    # -- properties ----------------------------------------------------------------------

    @property
    def latent_dim(self) -> int:
        """Number of entries of one latent code."""
        return math.prod(self.latent_shape)

    @property
    def device(self) -> torch.device:
        """Device of the generator's parameters."""
        p = next(self.generator.parameters(), None)
        return torch.device("cpu") if p is None else p.device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the generator's parameters."""
        for p in self.generator.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.float32

    @property
    def layers(self) -> dict[str, tuple[int, int, int]]:
        """Feature layers, dotted name -> ``(C, H, W)``, in forward order.

        Shapes are measured once, by a forward pass on one sample.
        """
        if self._layers is None:
            self._layers = self._probe_layers()
        return dict(self._layers)

    @property
    def aliases(self) -> dict[str, str]:
        """Friendly layer names, alias -> dotted name."""
        return dict(self._aliases)

    @property
    def default_layer(self) -> str:
        """The layer used when none is given."""
        if self._default_layer is not None:
            return self.resolve_layer(self._default_layer)
        names = list(self.layers)
        return names[len(names) // 2]

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Adapter:
        """Move the generator (in place) and return the adapter.

        Parameters
        ----------
        device : torch.device or str, optional
            Target device; ``None`` keeps the current one.
        dtype : torch.dtype, optional
            Target floating dtype; ``None`` keeps the current one.

        Returns
        -------
        Adapter
            ``self``, so that calls chain.

        Examples
        --------
        >>> import torch
        >>> from tensorpanda.adapters import load
        >>> gan = load("dcgan-faces").to(dtype=torch.float64)
        >>> gan.dtype, gan.device
        (torch.float64, device(type='cpu'))
        >>> gan.generate(gan.sample_latents(2)).dtype  # images are float32 whatever the dtype
        torch.float32
        """
        device = None if device is None else torch_device(device)
        self.generator.to(device=device, dtype=torch_dtype(dtype))
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} on {self.device}, {self.dtype}>"

    # -- latents -------------------------------------------------------------------------

    def sample_latents(
        self,
        n: int,
        seed: int = 0,
        truncation: float | None = None,
        classes: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
    ) -> Latents:
        """Draw ``n`` reproducible generator inputs.

        Parameters
        ----------
        n : int
            Number of samples.
        seed : int, default 0
            Seed of a private ``torch.Generator`` (the global RNG is not touched); the
            same seed gives the same latents on every device.
        truncation : float, optional
            Only for generators with a truncation input (``has_truncation``).
        classes : int or sequence of int, optional
            Only for class-conditional generators: one class for all samples, or one per
            sample. ``None`` draws classes uniformly at random.

        Returns
        -------
        Latents
            On the CPU, float32; moved to the generator's device batch by batch.

        Raises
        ------
        ValueError
            If ``n`` is not a positive integer, or ``truncation`` or ``classes`` is given
            to a generator that does not take it.

        Examples
        --------
        >>> import torch
        >>> from tensorpanda.adapters import load
        >>> gan = load("dcgan-faces")
        >>> latents = gan.sample_latents(8, seed=1)
        >>> latents.z.shape, latents.z.dtype, latents.condition
        (torch.Size([8, 100]), torch.float32, None)
        >>> torch.equal(latents.z, gan.sample_latents(8, seed=1).z)
        True
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
        if truncation is not None and not self.has_truncation:
            raise ValueError(f"{self.name} has no truncation input; leave truncation=None")
        if classes is not None and self.num_classes is None:
            raise ValueError(f"{self.name} is not class-conditional; leave classes=None")
        if self.has_truncation:
            if truncation is None:
                truncation = self.default_truncation
            _check_real("truncation", truncation)
            truncation = float(truncation)
            self._check_truncation(truncation)
        rng = torch.Generator(device="cpu").manual_seed(int(seed))
        z = self._sample_z(int(n), rng, truncation)
        expected = (int(n), *self.latent_shape)
        if tuple(z.shape) != expected:
            raise RuntimeError(
                f"{self.name}: _sample_z gave shape {tuple(z.shape)}, not {expected}"
            )
        condition = None
        if self.num_classes is not None:
            condition = self._class_vectors(int(n), rng, classes)
        return Latents(z.float(), condition, truncation)

    def _check_truncation(self, truncation: float) -> None:
        """Refuse a truncation outside (0, 1]; subclasses may allow other ranges."""
        if not 0.0 < truncation <= 1.0:
            raise ValueError(f"truncation must be in (0, 1], got {truncation}")

    def _class_vectors(self, n: int, rng: torch.Generator, classes: Any) -> torch.Tensor:
        """One-hot ``(n, num_classes)`` vectors: drawn from ``rng``, or ``classes`` checked."""
        k = self.num_classes
        assert k is not None
        if classes is None:
            index = torch.randint(k, (n,), generator=rng)
        elif isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
            index = torch.full((n,), int(classes), dtype=torch.long)
        else:
            index = torch.as_tensor(np.asarray(classes))
            if index.ndim != 1 or len(index) != n or index.is_floating_point():
                raise ValueError(
                    f"classes must be an int or {n} ints (one per sample), got shape "
                    f"{tuple(index.shape)} of {index.dtype}"
                )
            index = index.long()
        if index.numel() and (index.min() < 0 or index.max() >= k):
            raise ValueError(f"{self.name} has classes 0..{k - 1}, got {classes!r}")
        return nn.functional.one_hot(index, k).float()

    def _as_latents(self, latents: Latents | torch.Tensor) -> Latents:
        """Accept Latents (or a bare z for unconditional models) and check the shapes."""
        if isinstance(latents, torch.Tensor):
            latents = Latents(latents)
        if not isinstance(latents, Latents):
            raise TypeError(
                f"latents must be Latents (see sample_latents) or a tensor of codes, got "
                f"{type(latents).__name__}"
            )
        n = len(latents)
        if n == 0:
            raise ValueError("latents are empty; pass at least one sample")
        if tuple(latents.z.shape[1:]) != self.latent_shape:
            raise ValueError(
                f"{self.name} expects latent codes z of shape (N, "
                f"{', '.join(map(str, self.latent_shape))}), got {tuple(latents.z.shape)}"
            )
        if latents.ws is not None and not self.reads_ws:
            # silently generating from z would ignore the user's codes
            raise ValueError(f"{self.name} has no W space; Latents.ws must be None")
        if self.num_classes is None:
            if latents.condition is not None:
                raise ValueError(f"{self.name} is not conditional; Latents.condition must be None")
        else:
            expected = (n, self.num_classes)
            if latents.condition is None or tuple(latents.condition.shape) != expected:
                given = None if latents.condition is None else tuple(latents.condition.shape)
                raise ValueError(
                    f"{self.name} needs class vectors: Latents.condition of shape {expected}, "
                    f"got {given} (sample_latents(n, classes=...) makes them)"
                )
        for field in ("z", "condition", "ws"):
            value = getattr(latents, field)
            if value is not None:
                _check_finite_codes(f"Latents.{field}", value)
        if self.has_truncation:
            if latents.truncation is not None:
                _check_real("Latents.truncation", latents.truncation)
                self._check_truncation(float(latents.truncation))
        elif latents.truncation is not None:
            raise ValueError(
                f"{self.name} has no truncation input; Latents.truncation must be None"
            )
        return latents

    # -- layers --------------------------------------------------------------------------

    def resolve_layer(self, layer: str | None) -> str:
        """Dotted name of ``layer`` (an alias, a dotted name, or None for the default).

        Parameters
        ----------
        layer : str or None
            A key of [`layers`][adapters.Adapter.layers], a key of
            [`aliases`][adapters.Adapter.aliases], or ``None`` for
            [`default_layer`][adapters.Adapter.default_layer].

        Returns
        -------
        str
            A key of [`layers`][adapters.Adapter.layers].

        Raises
        ------
        ValueError
            If ``layer`` is neither a layer nor an alias; the message lists both.

        Examples
        --------
        >>> from tensorpanda.adapters import load
        >>> gan = load("dcgan-faces")
        >>> gan.resolve_layer("16x16"), gan.resolve_layer("main.8"), gan.resolve_layer(None)
        ('main.8', 'main.8', 'main.5')
        >>> gan.resolve_layer("main.3")
        Traceback (most recent call last):
            ...
        ValueError: dcgan-faces has no feature layer 'main.3'; valid names are: ...
        """
        if layer is None:
            return self.default_layer
        return resolve_layer(layer, self.layers, self._aliases, self.name)

    def _probe_layers(self) -> dict[str, tuple[int, int, int]]:
        """The layer table, measured by one forward pass on one sample."""
        batch = self._prepare(self.sample_latents(1))
        return probe_layers(self.generator, self._layer_names, lambda: self._forward(batch),
                            self.name)

    # -- running the generator -----------------------------------------------------------

    def _prepare(self, batch: Latents) -> Latents:
        """A private copy of ``batch`` on the generator's device and dtype, in eval mode."""
        if self.generator.training:
            # BatchNorm in train mode would make every sample depend on its batch-mates,
            # and spectral norm would update its vectors: edits must not do either.
            logger.warning("%s: generator was in train mode; switching to eval", self.name)
            self.generator.eval()
        # A private copy: a generator that writes into its input, or a layer that returns
        # a view of it (captured features), must never alias the caller's latents.
        return batch.to(self.device, self.dtype, copy=True)

    def _capture(self, batch: Latents, layer: str) -> torch.Tensor:
        """Float32 feature maps of ``layer`` for one batch; stops right after the layer."""
        batch = self._prepare(batch)
        # A view is enough (clone=False): with stop=True nothing runs after the layer
        # that could overwrite it in place.
        trace = Trace(self.generator, layer, retain_output=True, clone=False, stop=True)
        with torch.no_grad(), trace:
            self._forward(batch)
        return trace.output.float()

    def features(
        self,
        latents: Latents | torch.Tensor,
        layer: str | None = None,
        batch_size: int = 64,
        progress: bool | None = None,
    ) -> FeatureStream:
        """Feature maps of ``layer``, streamed batch by batch.

        Parameters
        ----------
        latents : Latents or torch.Tensor
            Inputs, e.g. from [`sample_latents`][adapters.Adapter.sample_latents].
        layer : str, optional
            Layer name or alias; [`default_layer`][adapters.Adapter.default_layer] if omitted.
        batch_size : int, default 64
        progress : bool, optional
            Show a tqdm bar; ``None`` shows it only on a terminal.

        Returns
        -------
        FeatureStream
            Re-iterable; each pass yields float32 ``(B, C, H, W)`` tensors on
            [`device`][adapters.Adapter.device] and gives the same batches.

        Examples
        --------
        >>> from tensorpanda.adapters import load
        >>> gan = load("dcgan-faces")
        >>> stream = gan.features(gan.sample_latents(100), "8x8", batch_size=64)
        >>> [tuple(Z.shape) for Z in stream]
        [(64, 256, 8, 8), (36, 256, 8, 8)]
        """
        latents = self._as_latents(latents)
        layer = self.resolve_layer(layer)
        return FeatureStream(
            lambda batch: self._capture(batch, layer),
            latents,
            layer,
            self.layers[layer],
            batch_size=batch_size,
            progress=progress,
            device=self.device,
            name=self.name,
        )

    def generate(
        self,
        latents: Latents | torch.Tensor,
        layer: str | None = None,
        edit: Edit | None = None,
        batch_size: int = 64,
        progress: bool | None = None,
    ) -> torch.Tensor:
        """Images for ``latents``, optionally with the feature maps of ``layer`` edited.

        Parameters
        ----------
        latents : Latents or torch.Tensor
        layer : str, optional
            Layer to edit (name or alias); required with ``edit``.
        edit : tensor, ndarray or callable, optional
            - a delta ``D`` added to the layer's output: shape ``(C, H, W)`` (the same for
              every sample) or ``(N, C, H, W)`` (one per sample);
            - a callable ``edit(features, index) -> new_features`` called once per batch
              with the float32 ``(B, C, H, W)`` features and the ``slice`` of the samples
              in the batch; what it returns replaces the features.

            With a zero delta, or a callable returning its input, the images are
            bit-for-bit those of the plain forward pass. Re-injecting features captured
            by [`features`][adapters.Adapter.features] is bit-for-bit too when both use the same
            ``batch_size``; with another batch size matrix kernels may round differently (~1e-7).
        batch_size : int, default 64
        progress : bool, optional
            Show a tqdm bar; ``None`` shows it only on a terminal.

        Returns
        -------
        torch.Tensor
            ``(N, 3, H, W)`` float32 in ``[0, 1]`` on [`device`][adapters.Adapter.device].

        Examples
        --------
        >>> import torch
        >>> from tensorpanda.adapters import load
        >>> gan = load("dcgan-faces")
        >>> lat = gan.sample_latents(2)
        >>> images = gan.generate(lat)
        >>> images.shape, images.dtype, bool(images.min() >= 0 and images.max() <= 1)
        (torch.Size([2, 3, 64, 64]), torch.float32, True)

        Paint appearance ``a`` (``(C,)``) into part ``p`` (``(H, W)``, values in [0, 1]);
        a zero edit gives the plain images bit for bit:

        >>> a = torch.randn(256, generator=torch.Generator().manual_seed(0))
        >>> p = torch.zeros(8, 8)
        >>> p[5:7, 2:6] = 1.0
        >>> delta = 5.0 * a[:, None, None] * p[None]
        >>> edited = gan.generate(lat, "8x8", edit=delta)
        >>> edited.shape, torch.equal(edited, images)
        (torch.Size([2, 3, 64, 64]), False)
        >>> torch.equal(gan.generate(lat, "8x8", edit=0 * delta), images)
        True

        A callable edit gets each batch's features and the ``slice`` of its samples:

        >>> def dim(features, index):
        ...     return 0.5 * features
        >>> gan.generate(lat, "8x8", edit=dim, batch_size=1).shape
        torch.Size([2, 3, 64, 64])
        """
        latents = self._as_latents(latents)
        if edit is not None and layer is None:
            raise ValueError("an edit needs layer=...: the layer whose output it changes")
        layer = None if layer is None else self.resolve_layer(layer)
        make_edit = None if edit is None else self._edit_factory(edit, layer, len(latents))
        slices = batch_slices(len(latents), batch_size)
        images = []
        for index in progress_bar(slices, f"{self.name} generate", progress):
            batch = self._prepare(latents[index])
            with torch.no_grad():
                if make_edit is None:
                    output = self._forward(batch)
                else:
                    with Trace(self.generator, layer, edit_output=make_edit(index)):
                        output = self._forward(batch)
                images.append(self._to_image(output).float())
        return torch.cat(images)

    def _edit_factory(
        self, edit: Edit, layer: str, n: int
    ) -> Callable[[slice], Callable[[torch.Tensor], torch.Tensor]]:
        """Turn ``edit`` into: batch slice -> ``edit_output`` callback for a Trace."""
        c, h, w = self.layers[layer]
        if callable(edit):

            def make(index: slice) -> Callable[[torch.Tensor], torch.Tensor]:
                def apply(output: torch.Tensor) -> torch.Tensor:
                    new = edit(output.float(), index)
                    if new is None:
                        raise TypeError(
                            "edit(features, index) returned None; return the new features "
                            "(the features themselves to leave them unchanged)"
                        )
                    new = torch.as_tensor(new)
                    if new.shape != output.shape:
                        raise ValueError(
                            f"edit(features, index) for layer {layer!r} must return shape "
                            f"{tuple(output.shape)}, got {tuple(new.shape)}"
                        )
                    if new.is_floating_point() and not bool(torch.isfinite(new).all()):
                        raise ValueError(
                            f"edit(features, index) for layer {layer!r} returned NaN or "
                            "infinite values: the images would be NaN (black)"
                        )
                    return new.to(device=output.device, dtype=output.dtype)

                return apply

            return make

        if not isinstance(edit, (torch.Tensor, np.ndarray)):
            raise TypeError(
                "edit must be a tensor or ndarray delta, or a callable "
                f"edit(features, index), got {type(edit).__name__}"
            )
        delta = torch.as_tensor(edit)
        if delta.is_complex() or delta.dtype == torch.bool:
            raise TypeError(f"edit must hold real numbers, got {delta.dtype}")
        if not bool(torch.isfinite(delta).all()):
            raise ValueError(
                "edit holds NaN or infinite values: every edited image would be NaN (black); "
                "check the edit's strength and direction"
            )
        if tuple(delta.shape) not in ((c, h, w), (n, c, h, w)):
            raise ValueError(
                f"edit for layer {layer!r} must have shape (C, H, W) = {(c, h, w)} or "
                f"(N, C, H, W) = {(n, c, h, w)}, got {tuple(delta.shape)}"
            )
        delta = delta.to(device=self.device, dtype=torch.float32)

        def make_delta(index: slice) -> Callable[[torch.Tensor], torch.Tensor]:
            d = delta if delta.ndim == 3 else delta[index]

            def add(output: torch.Tensor) -> torch.Tensor:
                # Added in float32, like the features handed out, then cast back.
                return (output.float() + d).to(output.dtype)

            return add

        return make_delta

    # -- the first weight acting on z (SeFa) ---------------------------------------------

    def latent_projection(self) -> torch.Tensor:
        """Weight matrix ``W`` (out_features x latent_dim) of the first operation on ``z``.

        SeFa's directions are the eigenvectors of ``Wᵀ W``. The module is
        `latent_module` or, if that is ``None``, the first ``Linear``,
        ``ConvTranspose2d`` or 1x1 ``Conv2d`` that receives ``z`` itself in a dry run.

        Returns
        -------
        torch.Tensor
            float32, on [`device`][adapters.Adapter.device]; column ``j`` is the output direction of
            ``z_j``.

        Examples
        --------
        >>> from tensorpanda.adapters import load
        >>> gan = load("dcgan-faces")
        >>> W = gan.latent_projection()   # main.0, a ConvTranspose2d: 100 -> 512 x 4 x 4
        >>> W.shape, W.dtype
        (torch.Size([8192, 100]), torch.float32)
        """
        name = self.latent_module or self._find_latent_module()
        return projection_matrix(find_module(self.generator, name), self.latent_dim, name)

    def _find_latent_module(self) -> str:
        """Dotted name of the first module that receives ``z`` itself, found by a dry run."""
        batch = self._prepare(self.sample_latents(1))
        return find_latent_module(self.generator, batch.z, lambda: self._forward(batch),
                                  self.name)


def _check_real(name: str, value: Any) -> None:
    """TypeError unless ``value`` is a real number (not a bool, a string or an array)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        if not (isinstance(value, torch.Tensor) and value.numel() == 1
                and not value.is_complex()):
            raise TypeError(f"{name} must be a number, got {value!r}")


def _check_finite_codes(name: str, codes: torch.Tensor) -> None:
    """ValueError if latent codes hold NaN or infinity (the images would be NaN)."""
    if codes.is_complex():
        raise TypeError(f"{name} must be real, got {codes.dtype}")
    if codes.is_floating_point() and codes.device.type != "meta" and not bool(
            torch.isfinite(codes).all()):
        raise ValueError(f"{name} holds NaN or infinite values; every code must be finite")

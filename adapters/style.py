"""Style-based generators (StyleGAN, StyleGAN2, StyleGAN3) and PGGAN from checkpoint files.

One adapter, [`StyleGANAdapter`][adapters.StyleGANAdapter], serves every network with the *style
interface*: ``mapping(z, c, truncation_psi, truncation_cutoff) -> ws`` (``(N, num_ws, w_dim)``),
``synthesis(ws) -> image`` (deterministic: stored constant noise), ``style_affines()``
(the affine layers that turn a w into the styles of one synthesis layer, with the index
of the w they read), ``feature_layers`` (friendly name -> dotted module path) and the
attributes ``z_dim``, ``c_dim``, ``w_dim``, ``num_ws``, ``img_resolution``,
``img_channels``. The networks themselves live in `stylegan2`, `stylegan3`,
`stylegan` and `pggan`; each reads its checkpoint formats
(``from_checkpoint``). The thin subclasses here load them by name:
``load("stylegan2", checkpoint=PATH)`` and so on.

What the adapter adds on top of [`Adapter`][adapters.Adapter]:

- truncation ψ (default 1) and a truncation cutoff, class labels for conditional
  checkpoints (``c_dim > 0``);
- W and W+ latents: ``Latents.ws`` holds intermediate codes;
[`StyleGANAdapter.to_ws`][adapters.StyleGANAdapter.to_ws]
  fills them in, [`StyleGANAdapter.latents_from_ws`][adapters.StyleGANAdapter.latents_from_ws] wraps
  codes of one's own (e.g. from GAN inversion),
  [`StyleGANAdapter.shift_ws`][adapters.StyleGANAdapter.shift_ws] moves them along a direction at
  chosen layers;
- SeFa as its paper does on style-based generators (eigenvectors of the stacked,
  row-normalised style-affine weights of a layer range, edits in W+ at those layers):
  [`StyleGANAdapter.sefa_directions`][adapters.StyleGANAdapter.sefa_directions]; GANSpace as PCA of
  sampled w's:
  [`StyleGANAdapter.ganspace_directions`][adapters.StyleGANAdapter.ganspace_directions].

PGGAN has no mapping network: [`PGGANAdapter`][adapters.PGGANAdapter] is a plain adapter around it.
"""

from __future__ import annotations

import importlib
import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .base import Adapter
from .devices import torch_device, torch_dtype
from .latents import Latents, batch_slices

__all__ = [
    "PGGANAdapter",
    "StyleGAN1Adapter",
    "StyleGAN2Adapter",
    "StyleGAN3Adapter",
    "StyleGANAdapter",
]

#: What a network must have to be wrapped by [`StyleGANAdapter`][adapters.StyleGANAdapter].
STYLE_INTERFACE = ("z_dim", "c_dim", "w_dim", "num_ws", "mapping", "synthesis",
                   "style_affines", "feature_layers")

#: Selects style layers: ``None`` (all), ws indices, affine names, or a slice of ws indices.
LayerSelection = None | int | str | slice | range | Sequence[int | str]


class StyleGANAdapter(Adapter):
    """Adapter for any style-based generator (StyleGAN, StyleGAN2, StyleGAN3).

    Latents are ``z ~ N(0, I)`` of shape ``(N, z_dim)``; the generator maps them to
    ``ws`` (truncated towards the average w by ψ), then synthesises the image from
    ``ws``. Layers are the network's ``feature_layers`` (their friendly names are the
    aliases). Images come back in ``[0, 1]``, ``(N, 3, H, W)`` (a grey-scale generator's
    channel is repeated).

    Parameters
    ----------
    generator : torch.nn.Module
        A network with the style interface (see the module's docstring).
    truncation : float, default 1.0
        Truncation ψ used when the latents carry none (``sample_latents(truncation=None)``
        or a bare ``z`` tensor). 1 is no truncation; the NVlabs default for pictures is
        0.7.
    truncation_cutoff : int, optional
        Truncate only the first ``truncation_cutoff`` ws (coarse layers); all by default.
    classes : int, optional
        Class used when ``sample_latents`` gets ``classes=None`` and for bare ``z``
        tensors, for conditional checkpoints (``c_dim > 0``); random classes otherwise.
    default_layer : str, optional
        Layer used when none is given; by default the first at 32×32 (PandA's choice on
        512 and 1024 px generators), or at a quarter of the image side for generators
        under 128 px.
    name : str, optional

    Attributes
    ----------
    num_ws, w_dim : int
        Number and size of the intermediate codes.
    truncation_cutoff : int or None
    default_classes : int or None

    Raises
    ------
    TypeError
        If ``generator`` lacks part of the style interface.
    ValueError
        If ``truncation`` is not finite, or ``classes`` is given to an unconditional
        generator or is out of range.

    Examples
    --------
    A small random-weight StyleGAN2 (``load("stylegan2", checkpoint=PATH)`` reads a real
    one):

    >>> import torch
    >>> from tensorpanda.adapters.style import StyleGANAdapter
    >>> from tensorpanda.adapters.stylegan2 import StyleGAN2Generator
    >>> _ = torch.manual_seed(0)
    >>> net = StyleGAN2Generator(16, 0, 16, 16, 3, mapping_kwargs={"num_layers": 2},
    ...                          synthesis_kwargs={"channel_base": 128, "channel_max": 32})
    >>> gan = StyleGANAdapter(net, truncation=0.7)
    >>> gan.latent_shape, gan.num_ws, gan.w_dim, gan.num_classes
    ((16,), 6, 16, None)
    >>> gan.layers["synthesis.b8.conv1"], gan.aliases["b8.conv1"]
    ((16, 8, 8), 'synthesis.b8.conv1')
    >>> images = gan.generate(torch.randn(2, 16))       # a bare z, or sample_latents(...)
    >>> images.shape, bool(images.min() >= 0 and images.max() <= 1)
    (torch.Size([2, 3, 16, 16]), True)
    >>> lat = gan.sample_latents(2)
    >>> lat.truncation
    0.7
    >>> torch.equal(gan.generate(lat, "b8.conv1", edit=torch.zeros(16, 8, 8)),
    ...             gan.generate(lat))
    True
    """

    name = "style-based"
    has_truncation = True
    default_truncation = 1.0
    #: Synthesises from ``Latents.ws`` when given (for a base-class check that others refuse it).
    reads_ws = True

    def __init__(
        self,
        generator: nn.Module,
        *,
        truncation: float = 1.0,
        truncation_cutoff: int | None = None,
        classes: int | None = None,
        default_layer: str | None = None,
        name: str | None = None,
    ) -> None:
        missing = [a for a in STYLE_INTERFACE if not hasattr(generator, a)]
        if missing:
            raise TypeError(
                f"{type(generator).__name__} lacks the style interface: no {', '.join(missing)}"
            )
        self.w_dim = int(generator.w_dim)
        self.num_ws = int(generator.num_ws)
        c_dim = int(generator.c_dim)
        self.num_classes = c_dim if c_dim > 0 else None
        self._check_truncation(truncation)
        self.default_truncation = float(truncation)
        if truncation_cutoff is not None and (
            isinstance(truncation_cutoff, bool)
            or not isinstance(truncation_cutoff, numbers.Integral)
            or not 0 <= truncation_cutoff <= self.num_ws
        ):
            raise ValueError(
                f"truncation_cutoff must be an int in 0..{self.num_ws} (num_ws), "
                f"got {truncation_cutoff!r}"
            )
        self.truncation_cutoff = None if truncation_cutoff is None else int(truncation_cutoff)
        if classes is not None:
            if self.num_classes is None:
                raise ValueError("classes= is for conditional checkpoints; this one has c_dim 0")
            if isinstance(classes, bool) or not isinstance(classes, numbers.Integral) or not (
                0 <= classes < self.num_classes
            ):
                raise ValueError(f"classes must be an int in 0..{self.num_classes - 1}, "
                                 f"got {classes!r}")
        self.default_classes = None if classes is None else int(classes)
        aliases = {str(k): str(v) for k, v in dict(generator.feature_layers).items()}
        super().__init__(
            generator,
            latent_shape=(int(generator.z_dim),),
            layers=list(dict.fromkeys(aliases.values())),
            aliases=aliases,
            default_layer=default_layer,
            name=name,
        )

    # -- the Adapter hooks -------------------------------------------------------------

    def _sample_z(
        self, n: int, generator: torch.Generator, truncation: float | None
    ) -> torch.Tensor:
        """z ~ N(0, I), ``(n, z_dim)``."""
        return torch.randn(n, self.latent_dim, generator=generator)

    def _check_truncation(self, truncation: float) -> None:
        """ψ may be any finite number (ψ > 1 extrapolates away from the average w)."""
        if isinstance(truncation, bool) or not isinstance(truncation, numbers.Real):
            raise TypeError(f"truncation ψ must be a number, got {truncation!r}")
        if not math.isfinite(truncation):
            raise ValueError(f"truncation ψ must be a finite number, got {truncation}")

    def _forward(self, latents: Latents) -> Any:
        """``synthesis(ws)``, with ``ws`` from the latents or from ``mapping(z, c)``."""
        return self.generator.synthesis(self._ws(latents))

    def _ws(self, batch: Latents) -> torch.Tensor:
        """W+ codes of a prepared batch: its own ``ws`` (W broadcast) or the mapping's."""
        if batch.ws is not None:
            ws = batch.ws
            # repeat, not expand: a synthesis network may write into its input
            return ws[:, None, :].repeat(1, self.num_ws, 1) if ws.ndim == 2 else ws
        psi = self.default_truncation if batch.truncation is None else batch.truncation
        return self.generator.mapping(batch.z, batch.condition, truncation_psi=psi,
                                      truncation_cutoff=self.truncation_cutoff)

    def _to_image(self, output: Any) -> torch.Tensor:
        """``[-1, 1]`` -> ``[0, 1]``; one channel repeated to three, a fourth dropped."""
        if output.shape[1] == 1:
            output = output.repeat(1, 3, 1, 1)
        elif output.shape[1] > 3:
            output = output[:, :3]
        return super()._to_image(output)

    def _as_latents(self, latents: Latents | torch.Tensor) -> Latents:
        """Bare z gets the default class; W / W+ codes are checked."""
        if isinstance(latents, torch.Tensor) and self.default_classes is not None:
            latents = Latents(latents, self._class_vectors(len(latents), None,
                                                           self.default_classes))
        if isinstance(latents, Latents) and latents.ws is not None:
            ws = latents.ws
            if tuple(ws.shape[1:]) not in ((self.w_dim,), (self.num_ws, self.w_dim)):
                raise ValueError(
                    f"{self.name} expects ws of shape (N, {self.w_dim}) (W) or (N, "
                    f"{self.num_ws}, {self.w_dim}) (W+), got {tuple(ws.shape)}"
                )
            if self.num_classes is not None and latents.condition is None:
                # the class acts through the mapping only, which ws bypass
                latents = replace(latents, condition=torch.zeros(len(latents),
                                                                 self.num_classes))
        return super()._as_latents(latents)

    # -- latents ---------------------------------------------------------------------------

    def sample_latents(
        self,
        n: int,
        seed: int = 0,
        truncation: float | None = None,
        classes: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
    ) -> Latents:
        """Draw ``n`` reproducible inputs: z, class vectors of conditional checkpoints, ψ.

        Parameters
        ----------
        n : int
        seed : int, default 0
        truncation : float, optional
            ψ; the adapter's ``truncation`` by default.
        classes : int or sequence of int, optional
            For conditional checkpoints; the adapter's ``classes`` by default, random
            classes if that is None too.

        Returns
        -------
        Latents
            ``z`` ``(n, z_dim)``, ``condition`` one-hot ``(n, c_dim)`` or None, the
            truncation ψ, no ``ws`` (see [`to_ws`][adapters.StyleGANAdapter.to_ws]).

        Examples
        --------
        >>> import torch
        >>> from tensorpanda.adapters.style import StyleGANAdapter
        >>> from tensorpanda.adapters.stylegan2 import StyleGAN2Generator
        >>> _ = torch.manual_seed(0)
        >>> net = StyleGAN2Generator(16, 0, 16, 16, 3, mapping_kwargs={"num_layers": 2},
        ...                          synthesis_kwargs={"channel_base": 128, "channel_max": 32})
        >>> gan = StyleGANAdapter(net)
        >>> lat = gan.sample_latents(3, seed=1, truncation=0.5)
        >>> lat.z.shape, lat.truncation, lat.condition, lat.ws
        (torch.Size([3, 16]), 0.5, None, None)
        """
        if classes is None and self.default_classes is not None:
            classes = self.default_classes
        return super().sample_latents(n, seed=seed, truncation=truncation, classes=classes)

    def _class_vectors(self, n: int, rng: torch.Generator | None, classes: Any) -> torch.Tensor:
        """One-hot class vectors (``rng`` may be None when ``classes`` is given)."""
        if rng is None:
            rng = torch.Generator().manual_seed(0)
        return super()._class_vectors(n, rng, classes)

    def to_ws(self, latents: Latents | torch.Tensor, batch_size: int = 64) -> Latents:
        """The latents with their W+ codes filled in (mapping and truncation applied).

        With the same ``batch_size`` as [`generate`][adapters.StyleGANAdapter.generate], generating
        from the result is bit-for-bit generating from the latents themselves.

        Parameters
        ----------
        latents : Latents or torch.Tensor
        batch_size : int, default 64

        Returns
        -------
        Latents
            The same z, condition and truncation, with ``ws`` ``(N, num_ws, w_dim)``
            float32 on the CPU. Latents that already carry ws come back with them as W+.

        Examples
        --------
        >>> import torch
        >>> from tensorpanda.adapters.style import StyleGANAdapter
        >>> from tensorpanda.adapters.stylegan2 import StyleGAN2Generator
        >>> _ = torch.manual_seed(0)
        >>> net = StyleGAN2Generator(16, 0, 16, 16, 3, mapping_kwargs={"num_layers": 2},
        ...                          synthesis_kwargs={"channel_base": 128, "channel_max": 32})
        >>> gan = StyleGANAdapter(net)
        >>> lat = gan.sample_latents(3)
        >>> ws = gan.to_ws(lat)
        >>> ws.ws.shape
        torch.Size([3, 6, 16])
        >>> torch.equal(gan.generate(ws), gan.generate(lat))
        True
        """
        latents = self._as_latents(latents)
        out = []
        for index in batch_slices(len(latents), batch_size):
            batch = self._prepare(latents[index])
            with torch.no_grad():
                out.append(self._ws(batch).float().cpu())
        return replace(latents, ws=torch.cat(out))

    def latents_from_ws(
        self, ws: torch.Tensor, classes: Any = None
    ) -> Latents:
        """Latents for W ``(N, w_dim)`` or W+ ``(N, num_ws, w_dim)`` codes of one's own.

        Parameters
        ----------
        ws : torch.Tensor
            E.g. from GAN inversion. ``z`` is set to zeros: the generator reads ``ws``.
        classes : optional
            Unused by the synthesis (the class acts through the mapping); kept in the
            latents' ``condition`` for the record.

        Returns
        -------
        Latents

        Examples
        --------
        >>> import torch
        >>> from tensorpanda.adapters.style import StyleGANAdapter
        >>> from tensorpanda.adapters.stylegan2 import StyleGAN2Generator
        >>> _ = torch.manual_seed(0)
        >>> net = StyleGAN2Generator(16, 0, 16, 16, 3, mapping_kwargs={"num_layers": 2},
        ...                          synthesis_kwargs={"channel_base": 128, "channel_max": 32})
        >>> gan = StyleGANAdapter(net)
        >>> w = torch.randn(2, 16)                            # W: one w per sample
        >>> gan.generate(gan.latents_from_ws(w)).shape
        torch.Size([2, 3, 16, 16])
        >>> w_plus = w[:, None].repeat(1, 6, 1)               # W+: one w per layer
        >>> torch.equal(gan.generate(gan.latents_from_ws(w_plus)),
        ...             gan.generate(gan.latents_from_ws(w)))
        True
        """
        ws = torch.as_tensor(ws, dtype=torch.float32)
        if ws.ndim not in (2, 3):
            raise ValueError(f"ws must be (N, w_dim) or (N, num_ws, w_dim), got {tuple(ws.shape)}")
        condition = None
        if self.num_classes is not None:
            condition = (torch.zeros(len(ws), self.num_classes) if classes is None
                         else self._class_vectors(len(ws), None, classes))
        return self._as_latents(Latents(torch.zeros(len(ws), self.latent_dim), condition,
                                        None, ws))

    # -- style layers, SeFa and GANSpace ---------------------------------------------------

    @property
    def style_layers(self) -> list[tuple[str, int]]:
        """The style-affine layers, ``(name, index into ws)``, in the network's order."""
        return [(str(name), int(index)) for name, index, _ in self.generator.style_affines()]

    def style_indices(self, layers: LayerSelection = None) -> list[int]:
        """Sorted ws indices a layer selection covers.

        Parameters
        ----------
        layers : None, int, str, slice, range or sequence of int or str
            ``None``: every index that has a style layer. Ints and slices/ranges are ws
            indices (``slice(0, 4)``: the coarse layers); strings are names from
            [`style_layers`][adapters.StyleGANAdapter.style_layers] (all their indices).

        Returns
        -------
        list of int

        Examples
        --------
        >>> import torch
        >>> from tensorpanda.adapters.style import StyleGANAdapter
        >>> from tensorpanda.adapters.stylegan2 import StyleGAN2Generator
        >>> _ = torch.manual_seed(0)
        >>> net = StyleGAN2Generator(16, 0, 16, 16, 3, mapping_kwargs={"num_layers": 2},
        ...                          synthesis_kwargs={"channel_base": 128, "channel_max": 32})
        >>> gan = StyleGANAdapter(net)
        >>> gan.style_layers[:3]
        [('b4.conv1', 0), ('b8.conv0', 1), ('b8.conv1', 2)]
        >>> gan.style_indices(), gan.style_indices(slice(0, 2)), gan.style_indices("b8.conv1")
        ([0, 1, 2, 3, 4], [0, 1], [2])
        """
        if layers is None:
            return sorted({i for _, i in self.style_layers})
        if isinstance(layers, slice):
            if layers.step == 0:
                raise ValueError("layers: a slice step cannot be zero")
            layers = range(*layers.indices(self.num_ws))
        if isinstance(layers, (int, str, np.integer)) and not isinstance(layers, bool):
            layers = [layers]
        if not isinstance(layers, (Sequence, range, np.ndarray)):
            raise TypeError("layers must be None, a ws index, a style layer name, a slice, "
                            f"or a list of them, got {layers!r}")
        by_name: dict[str, set[int]] = {}
        for name, index in self.style_layers:
            by_name.setdefault(name, set()).add(index)
        chosen: set[int] = set()
        for item in layers:
            if isinstance(item, str):
                if item not in by_name:
                    raise ValueError(f"{self.name} has no style layer {item!r}; style layers: "
                                     f"{', '.join(by_name)}")
                chosen |= by_name[item]
            elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                if not 0 <= int(item) < self.num_ws:
                    raise ValueError(f"ws index {item} out of range 0..{self.num_ws - 1}")
                chosen.add(int(item))
            else:
                raise TypeError(f"layers must be ws indices or style layer names, got {item!r}")
        if not chosen:
            raise ValueError("the layer selection is empty")
        return sorted(chosen)

    def latent_projection(self, layers: LayerSelection = None) -> torch.Tensor:
        """The style-affine weights of the selected layers, stacked: ``(Σ out, w_dim)``.

        This is what SeFa factorises on style-based generators; unlike
        [`Adapter.latent_projection`][adapters.Adapter.latent_projection] its columns act on w (in
        W), not on z.

        Parameters
        ----------
        layers : see [`style_indices`][adapters.StyleGANAdapter.style_indices]

        Returns
        -------
        torch.Tensor
            float32; each affine's weight includes its gain (the weight actually applied).

        Examples
        --------
        >>> import torch
        >>> from tensorpanda.adapters.style import StyleGANAdapter
        >>> from tensorpanda.adapters.stylegan2 import StyleGAN2Generator
        >>> _ = torch.manual_seed(0)
        >>> net = StyleGAN2Generator(16, 0, 16, 16, 3, mapping_kwargs={"num_layers": 2},
        ...                          synthesis_kwargs={"channel_base": 128, "channel_max": 32})
        >>> gan = StyleGANAdapter(net)
        >>> gan.latent_projection(slice(0, 2)).shape   # 32 + 32 input channels, w_dim 16
        torch.Size([64, 16])
        """
        indices = set(self.style_indices(layers))
        weights = [w.detach().float() for _, i, w in self.generator.style_affines()
                   if int(i) in indices]
        if not weights:
            raise ValueError(f"no style layer reads the ws indices {sorted(indices)}")
        return torch.cat(weights, dim=0)

    def sefa_directions(self, layers: LayerSelection = None, n_directions: int | None = None):
        """SeFa's directions in W for the style layers ``layers`` (edit them with
        [`shift_ws`][adapters.StyleGANAdapter.shift_ws] at the same ``layers``).

        The eigenvectors of ``Wᵀ W`` for the stacked affine weights ``W`` of those layers,
        each output unit normalised ([`tensorpanda.sefa`][tensorpanda.sefa]), as in SeFa's code for
        style-based generators.

        Parameters
        ----------
        layers : see [`style_indices`][adapters.StyleGANAdapter.style_indices]
        n_directions : int, optional
            How many; all ``w_dim`` by default.

        Returns
        -------
        tensorpanda.LatentDirections
            ``U`` (n_directions × w_dim) as a numpy array, unit rows.

        Examples
        --------
        >>> import torch
        >>> from tensorpanda.adapters.style import StyleGANAdapter
        >>> from tensorpanda.adapters.stylegan2 import StyleGAN2Generator
        >>> _ = torch.manual_seed(0)
        >>> net = StyleGAN2Generator(16, 0, 16, 16, 3, mapping_kwargs={"num_layers": 2},
        ...                          synthesis_kwargs={"channel_base": 128, "channel_max": 32})
        >>> gan = StyleGANAdapter(net)
        >>> d = gan.sefa_directions(layers=slice(0, 2), n_directions=3)
        >>> d.method, d.U.shape
        ('sefa', (3, 16))
        >>> moved = gan.shift_ws(gan.sample_latents(2), d.U[0], alpha=3.0, layers=slice(0, 2))
        >>> gan.generate(moved).shape
        torch.Size([2, 3, 16, 16])
        """
        import tensorpanda as tp

        W = self.latent_projection(layers).cpu().numpy()
        directions = tp.sefa(W, n_directions)
        return replace(directions, U=_to_numpy(directions.U))

    def ganspace_directions(
        self, n_directions: int = 10, n_samples: int = 10_000, seed: int = 0,
        batch_size: int = 256,
    ):
        """GANSpace's directions for style-based generators: principal axes of sampled w.

        w's are drawn without truncation; edit with [`shift_ws`][adapters.StyleGANAdapter.shift_ws]
        (at every layer, or at a range as in GANSpace's layer-wise edits).

        Parameters
        ----------
        n_directions : int, default 10
        n_samples : int, default 10000
        seed : int, default 0
        batch_size : int, default 256

        Returns
        -------
        tensorpanda.LatentDirections
            ``U`` (n_directions × w_dim) numpy, unit rows; ``scores`` the variances of w
            along them.

        Examples
        --------
        >>> import torch
        >>> from tensorpanda.adapters.style import StyleGANAdapter
        >>> from tensorpanda.adapters.stylegan2 import StyleGAN2Generator
        >>> _ = torch.manual_seed(0)
        >>> net = StyleGAN2Generator(16, 0, 16, 16, 3, mapping_kwargs={"num_layers": 2},
        ...                          synthesis_kwargs={"channel_base": 128, "channel_max": 32})
        >>> gan = StyleGANAdapter(net)
        >>> d = gan.ganspace_directions(n_directions=4, n_samples=300)
        >>> d.method, d.U.shape, bool(d.scores[0] >= d.scores[-1])
        ('ganspace', (4, 16), True)
        """
        import tensorpanda as tp

        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or (
                n_samples < 2):
            raise ValueError(f"n_samples must be an integer >= 2 (PCA of sampled w), "
                             f"got {n_samples!r}")
        if isinstance(n_directions, numbers.Integral) and n_directions > n_samples:
            raise ValueError(f"n_directions={n_directions} needs at least as many samples; "
                             f"n_samples is {n_samples}")
        latents = self.sample_latents(n_samples, seed=seed, truncation=1.0)
        ws = self.to_ws(latents, batch_size=batch_size).ws
        w = ws[:, 0].double().numpy()  # one w per sample: the mapping repeats it num_ws times
        pca = tp.pca(w, n_directions, random_state=seed)
        return tp.LatentDirections(U=_to_numpy(pca.components).astype(np.float32),
                                   scores=np.asarray(pca.variances), method="ganspace")

    def shift_ws(
        self,
        latents: Latents | torch.Tensor,
        direction: torch.Tensor | np.ndarray,
        alpha: float = 1.0,
        layers: LayerSelection = None,
        batch_size: int = 64,
    ) -> Latents:
        """Latents whose W+ codes moved by ``alpha * direction`` at the ``layers`` only.

        Parameters
        ----------
        latents : Latents or torch.Tensor
            Their ``ws`` are computed first ([`to_ws`][adapters.StyleGANAdapter.to_ws]) if they
            carry none.
        direction : tensor or array of shape (w_dim,)
        alpha : float, default 1.0
        layers : see [`style_indices`][adapters.StyleGANAdapter.style_indices]
        batch_size : int, default 64
            For [`to_ws`][adapters.StyleGANAdapter.to_ws]; use the one of
            [`generate`][adapters.StyleGANAdapter.generate] to keep a zero shift exact.

        Returns
        -------
        Latents
            ``ws`` of shape ``(N, num_ws, w_dim)``.

        Examples
        --------
        >>> import torch
        >>> from tensorpanda.adapters.style import StyleGANAdapter
        >>> from tensorpanda.adapters.stylegan2 import StyleGAN2Generator
        >>> _ = torch.manual_seed(0)
        >>> net = StyleGAN2Generator(16, 0, 16, 16, 3, mapping_kwargs={"num_layers": 2},
        ...                          synthesis_kwargs={"channel_base": 128, "channel_max": 32})
        >>> gan = StyleGANAdapter(net)
        >>> lat = gan.sample_latents(2)
        >>> moved = gan.shift_ws(lat, torch.ones(16), alpha=0.5, layers=[1, 2])
        >>> before = gan.to_ws(lat).ws
        >>> [bool(torch.equal(moved.ws[:, i], before[:, i])) for i in range(6)]
        [True, False, False, True, True, True]
        """
        latents = self._as_latents(latents)
        if latents.ws is None or latents.ws.ndim == 2:
            latents = self.to_ws(latents, batch_size=batch_size)
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(
                alpha):
            raise ValueError(f"alpha must be a finite number, got {alpha!r}")
        direction = (direction.detach().float().cpu().numpy()
                     if isinstance(direction, torch.Tensor) else np.asarray(direction))
        if direction.dtype.kind not in "fiu":
            raise TypeError(f"direction must hold real numbers, got dtype {direction.dtype}")
        d = torch.as_tensor(direction.astype(np.float32)).reshape(-1)
        if d.numel() != self.w_dim:
            raise ValueError(f"direction must have w_dim = {self.w_dim} entries, got {d.numel()}")
        if not bool(torch.isfinite(d).all()):
            raise ValueError("direction holds NaN or infinite values")
        ws = latents.ws.clone()
        index = self.style_indices(layers)
        ws[:, index] += float(alpha) * d.to(ws)
        return replace(latents, ws=ws)

    # -- layers ----------------------------------------------------------------------------

    @property
    def default_layer(self) -> str:
        """The layer used when none is given (see the class's ``default_layer``)."""
        if self._default_layer is not None:
            return self.resolve_layer(self._default_layer)
        table = self.layers
        side = max(shape[1] for shape in table.values())
        target = 32 if side >= 128 else max(side // 4, 4)
        for name, shape in table.items():
            if shape[1] == target:
                return name
        names = list(table)
        return names[len(names) // 2]


class _FromCheckpoint:
    """Loads the network module of ``arch`` lazily and reads a checkpoint with it."""

    arch = ""
    network = ""

    @classmethod
    def _load_network(cls, checkpoint: str | PathLike | None, device: Any,
                      dtype: Any = None) -> nn.Module:
        """``<Network>.from_checkpoint(path, device)``, with clear errors before it runs."""
        if checkpoint is None:
            raise ValueError(
                f"{cls.arch}: pass checkpoint=PATH, a checkpoint file (see "
                "docs/generators.md for where to get one); weights are never downloaded"
            )
        if isinstance(checkpoint, bytes):
            checkpoint = os.fsdecode(checkpoint)
        if not isinstance(checkpoint, (str, PathLike)):
            raise TypeError(f"{cls.arch}: checkpoint must be a path (str or os.PathLike), "
                            f"got {type(checkpoint).__name__}")
        path = Path(checkpoint).expanduser()
        if path.is_dir():
            raise ValueError(f"{cls.arch}: checkpoint {str(path)!r} is a folder; pass the "
                             "checkpoint file itself (.pkl, .pth or .pt)")
        if not path.is_file():
            raise FileNotFoundError(f"{cls.arch} checkpoint not found: {str(path)!r}")
        # checked before the file is read: a bad device would otherwise fail deep inside
        # torch after the read, as if the checkpoint were at fault
        device = torch_device(device)
        dtype = torch_dtype(dtype)
        module_name = f"{__package__}.{cls.arch}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            raise ImportError(
                f"the {cls.arch} network ({module_name}) is not part of this installation "
                "of tensorpanda"
            ) from None
        network = getattr(module, cls.network)
        net = network.from_checkpoint(path, device=device)
        _check_finite_weights(net, path, cls.arch)
        if dtype is not None:
            net.to(dtype=dtype)
        return net


class _StyleCheckpointAdapter(_FromCheckpoint, StyleGANAdapter):
    """A [`StyleGANAdapter`][adapters.StyleGANAdapter] whose network is read from a checkpoint
    file."""

    def __init__(
        self,
        checkpoint: str | PathLike | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        truncation: float = 1.0,
        truncation_cutoff: int | None = None,
        classes: int | None = None,
        default_layer: str | None = None,
    ) -> None:
        net = self._load_network(checkpoint, device, dtype)
        super().__init__(net, truncation=truncation, truncation_cutoff=truncation_cutoff,
                         classes=classes, default_layer=default_layer)
        self.checkpoint = Path(os.fsdecode(checkpoint)).expanduser()


class StyleGAN2Adapter(_StyleCheckpointAdapter):
    """``load("stylegan2", checkpoint=PATH)``: StyleGAN2 / StyleGAN2-ADA checkpoints.

    Reads NVlabs network pickles (stylegan2-ada-pytorch; never executed), genforce
    ``.pth`` and rosinality ``.pt`` files through ``StyleGAN2Generator.from_checkpoint``.

    Parameters
    ----------
    checkpoint : path
    device : torch.device or str, optional
    dtype : torch.dtype, optional
    truncation, truncation_cutoff, classes, default_layer
        As for [`StyleGANAdapter`][adapters.StyleGANAdapter].

    Examples
    --------
    Weights are never downloaded: without a checkpoint nothing is built.

    >>> from tensorpanda.adapters import load
    >>> load("stylegan2")
    Traceback (most recent call last):
        ...
    ValueError: stylegan2: pass checkpoint=PATH, a checkpoint file (see docs/generators.md ...
    """

    name = "stylegan2"
    arch = "stylegan2"
    network = "StyleGAN2Generator"


class StyleGAN3Adapter(_StyleCheckpointAdapter):
    """``load("stylegan3", checkpoint=PATH)``: StyleGAN3 (T and R) NVlabs pickles.

    Parameters
    ----------
    checkpoint : path
    device : torch.device or str, optional
    dtype : torch.dtype, optional
    truncation, truncation_cutoff, classes, default_layer
        As for [`StyleGANAdapter`][adapters.StyleGANAdapter].

    Examples
    --------
    Weights are never downloaded: without a checkpoint nothing is built.

    >>> from tensorpanda.adapters import load
    >>> load("stylegan3")
    Traceback (most recent call last):
        ...
    ValueError: stylegan3: pass checkpoint=PATH, a checkpoint file (see docs/generators.md ...
    """

    name = "stylegan3"
    arch = "stylegan3"
    network = "StyleGAN3Generator"


class StyleGAN1Adapter(_StyleCheckpointAdapter):
    """``load("stylegan", checkpoint=PATH)``: StyleGAN (v1) genforce checkpoints.

    Parameters
    ----------
    checkpoint : path
    device : torch.device or str, optional
    dtype : torch.dtype, optional
    truncation, truncation_cutoff, classes, default_layer
        As for [`StyleGANAdapter`][adapters.StyleGANAdapter].

    Examples
    --------
    Weights are never downloaded: without a checkpoint nothing is built.

    >>> from tensorpanda.adapters import load
    >>> load("stylegan")
    Traceback (most recent call last):
        ...
    ValueError: stylegan: pass checkpoint=PATH, a checkpoint file (see docs/generators.md ...
    """

    name = "stylegan"
    arch = "stylegan"
    network = "StyleGANGenerator"


class PGGANAdapter(_FromCheckpoint, Adapter):
    """``load("pggan", checkpoint=PATH)``: ProGAN / PGGAN genforce checkpoints.

    No mapping network: latents are ``z ~ N(0, I)`` given straight to the generator, as
    for the DCGAN. Layers are the network's ``feature_layers``.

    Parameters
    ----------
    checkpoint : path
    device : torch.device or str, optional
    dtype : torch.dtype, optional
    default_layer : str, optional
        By default the middle layer of the table.

    Examples
    --------
    Weights are never downloaded: without a checkpoint nothing is built.

    >>> from tensorpanda.adapters import load
    >>> load("pggan")
    Traceback (most recent call last):
        ...
    ValueError: pggan: pass checkpoint=PATH, a checkpoint file (see docs/generators.md ...
    """

    name = "pggan"
    arch = "pggan"
    network = "PGGANGenerator"

    def __init__(
        self,
        checkpoint: str | PathLike | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        default_layer: str | None = None,
    ) -> None:
        net = self._load_network(checkpoint, device, dtype)
        aliases = {str(k): str(v) for k, v in dict(net.feature_layers).items()}
        c_dim = int(getattr(net, "c_dim", 0) or 0)
        self.num_classes = c_dim if c_dim > 0 else None
        super().__init__(net, latent_shape=(int(net.z_dim),),
                         layers=list(dict.fromkeys(aliases.values())), aliases=aliases,
                         default_layer=default_layer)
        self.checkpoint = Path(os.fsdecode(checkpoint)).expanduser()

    def _sample_z(
        self, n: int, generator: torch.Generator, truncation: float | None
    ) -> torch.Tensor:
        """z ~ N(0, I), ``(n, z_dim)``."""
        return torch.randn(n, self.latent_dim, generator=generator)

    def _forward(self, latents: Latents) -> Any:
        """``generator(z)``, or ``generator(z, c)`` for a conditional checkpoint."""
        if latents.condition is None:
            return self.generator(latents.z)
        return self.generator(latents.z, latents.condition)

    def latent_projection(self) -> torch.Tensor:
        """The first convolution's weight as a matrix on z, ``(C·4·4, z_dim)``, as SeFa reads
        PGGAN (the 4×4 kernel on the 1×1 normalised z; class columns left out).

        Returns
        -------
        torch.Tensor
            float32; column ``j`` is what ``z_j`` adds to the first 4×4 feature map.

        Examples
        --------
        >>> import os, tempfile, torch
        >>> from tensorpanda.adapters import load
        >>> from tensorpanda.adapters.pggan import PGGANGenerator
        >>> path = os.path.join(tempfile.mkdtemp(), "pggan.pth")
        >>> G = PGGANGenerator(z_dim=8, img_resolution=8, channels=[8, 4])
        >>> torch.save({"generator": G.state_dict()}, path)
        >>> load("pggan", checkpoint=path).latent_projection().shape
        torch.Size([128, 8])
        """
        first = self.generator.get_submodule(self.generator.feature_layers[
            next(iter(self.generator.feature_layers))])
        weight = (first.weight * getattr(first, "gain", 1.0)).detach().float()
        if weight.ndim != 4 or weight.shape[1] < self.latent_dim:
            raise NotImplementedError(f"{self.name}: cannot read the first layer's weight")
        # (out, in, kh, kw): on a 1×1 input padded by 3 every (out, kh, kw) is one output unit
        return weight[:, : self.latent_dim].permute(0, 2, 3, 1).reshape(-1, self.latent_dim)

    def _to_image(self, output: Any) -> torch.Tensor:
        """``[-1, 1]`` -> ``[0, 1]``; one channel repeated to three."""
        if output.shape[1] == 1:
            output = output.repeat(1, 3, 1, 1)
        return super()._to_image(output)


def _check_finite_weights(net: nn.Module, path: Path, arch: str) -> None:
    """Refuse a checkpoint whose weights hold NaN or infinity (every image would be NaN)."""
    for name, tensor in [*net.named_parameters(), *net.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{path}: {arch} checkpoint has NaN or infinite values in "
                             f"{name}; the file is corrupt (or from a diverged training run)")


def _to_numpy(x: Any) -> np.ndarray:
    """A backend tensor (numpy, torch, jax) as a numpy array."""
    import tensorly as tl

    return np.asarray(tl.to_numpy(x))


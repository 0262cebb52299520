"""How local is an edit? PandA against SeFa and GANSpace on any generator (DESIGN.md §5).

For each region (a boolean image mask) every method proposes candidate edits; each candidate
is calibrated to the same mean change inside the region, the method keeps the candidate
with the lowest ROIR on a *selection* set of samples, and that edit is measured on a
separate *evaluation* set. So every method gets the same masks, the same samples, a matched
edit strength, and its best direction for each region.

- PandA edits the feature maps: α · s a_j p̂_Kᵀ at the fitted layer, for the parts K that
  overlap the region and the appearances j most present there (sign s).
- SeFa and GANSpace edit the latent for their leading directions u, both signs, as their
  papers do on each kind of generator. On a plain generator (DCGAN, BigGAN, PGGAN): z + α u,
  with SeFa's u from the first weight acting on z and GANSpace's from the PCA of an early
  layer's activations carried back to z. On a style-based generator (an adapter with
  ``sefa_directions`` and ``shift_ws``: StyleGAN, StyleGAN2, StyleGAN3): w + α u in W+ at
  the chosen layers, with SeFa's u from the style-affine weights of those layers and
  GANSpace's from the PCA of sampled w's.

The full evaluation (masked baselines in the same regions, fixed regions, spread over fits,
measures of what an edit does) builds on these editors: see ``eval_protocol``,
``eval_masked``, ``eval_measures`` and ``eval_removal`` in this package.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import tensorpanda as tp
from tensorpanda.adapters import Adapter, Latents

Editor = Callable[[Latents, float], torch.Tensor]


@dataclass
class Candidate:
    """One edit a method proposes: a label and ``edit(latents, alpha) -> images``."""

    label: str
    edit: Editor


@dataclass
class Method:
    """A method's ``candidates_for(region)`` and the seconds it took to find its directions."""

    name: str
    candidates_for: Callable[[np.ndarray], list[Candidate]]
    seconds: float


@dataclass
class Result:
    """A method's best edit for a region, measured on the evaluation set by `evaluate`."""

    method: str
    region: str
    label: str
    alpha: float
    roir: np.ndarray
    inside_change: float
    edit: Editor


@dataclass
class Setting:
    """Sizes of the evaluation and the matched strength every candidate is calibrated to."""

    target_change: float = 0.08  # RMS pixel change inside the region, pixels in [0, 1]
    n_directions: int = 10  # leading latent directions tried per baseline (× 2 signs)
    n_appearances: int = 8  # appearances tried per PandA part set (signed)
    n_parts: int = 8
    fit_samples: int = 2000
    ganspace_samples: int = 5000
    ganspace_layer: str | None = None  # plain generators; default: the first feature layer
    # style-based generators: the W+ layers SeFa factorises and both methods edit (a
    # selection as for StyleGANAdapter.style_indices; None: every layer)
    sefa_layers: object = None
    ganspace_layers: object = None
    batch_size: int = 250


# -- editors -------------------------------------------------------------------------------------
def shifted(latents: Latents, direction: torch.Tensor, alpha: float) -> Latents:
    """Latents with z moved by α u (conditioning and truncation kept)."""
    z = latents.z + alpha * direction.to(latents.z).reshape(1, *latents.z.shape[1:])
    return Latents(z=z, condition=latents.condition, truncation=latents.truncation)


def latent_editor(gan: Adapter, direction: torch.Tensor, batch_size: int) -> Editor:
    """``edit(latents, alpha)``: generate from the latents moved by ``alpha * direction``."""

    def edit(latents: Latents, alpha: float) -> torch.Tensor:
        return gan.generate(shifted(latents, direction, alpha), batch_size=batch_size)

    return edit


def ws_editor(gan: Adapter, direction: torch.Tensor, layers, batch_size: int) -> Editor:
    """``edit(latents, alpha)``: generate from W+ codes moved by ``alpha * direction`` at
    ``layers`` (a style-based adapter); alpha = 0 gives the plain images bit for bit."""

    def edit(latents: Latents, alpha: float) -> torch.Tensor:
        moved = gan.shift_ws(latents, direction, alpha, layers, batch_size=batch_size)
        return gan.generate(moved, batch_size=batch_size)

    return edit


def is_style_based(gan: Adapter) -> bool:
    """Whether the adapter edits in W+ (it has SeFa directions of its style layers)."""
    return callable(getattr(gan, "sefa_directions", None)) and callable(
        getattr(gan, "shift_ws", None))


def feature_editor(gan: Adapter, layer: str, delta: torch.Tensor, batch_size: int) -> Editor:
    """``edit(latents, alpha)``: generate with ``alpha * delta`` added at ``layer``."""

    def edit(latents: Latents, alpha: float) -> torch.Tensor:
        return gan.generate(latents, layer, edit=alpha * delta, batch_size=batch_size)

    return edit


# -- methods -------------------------------------------------------------------------------------
def sefa_method(gan: Adapter, setting: Setting) -> Method:
    """SeFa: the leading eigenvectors of ``Wᵀ W`` (``gan.latent_projection()``), both signs.

    On a style-based generator, those of the style affines of ``setting.sefa_layers``,
    edited in W+ at those layers.
    """
    start = time.perf_counter()
    if is_style_based(gan):
        directions = gan.sefa_directions(setting.sefa_layers, setting.n_directions)
        seconds = time.perf_counter() - start
        U = torch.as_tensor(np.asarray(directions.U), dtype=torch.float32)
        candidates = _signed_ws_candidates(gan, U, "sefa", setting.sefa_layers,
                                           setting.batch_size)
        return Method("SeFa", lambda region: candidates, seconds)
    directions = tp.sefa(gan.latent_projection().detach().cpu().numpy(), setting.n_directions)
    seconds = time.perf_counter() - start
    U = torch.as_tensor(np.asarray(directions.U), dtype=torch.float32)
    candidates = _signed_latent_candidates(gan, U, "sefa", setting.batch_size)
    return Method("SeFa", lambda region: candidates, seconds)


def ganspace_method(gan: Adapter, setting: Setting, seed: int) -> Method:
    """GANSpace: PCA of a layer's activations carried back to the latent, both signs.

    On a style-based generator, PCA of sampled w's, edited in W+ at
    ``setting.ganspace_layers``.
    """
    start = time.perf_counter()
    if is_style_based(gan):
        directions = gan.ganspace_directions(setting.n_directions,
                                             n_samples=setting.ganspace_samples, seed=seed,
                                             batch_size=setting.batch_size)
        seconds = time.perf_counter() - start
        U = torch.as_tensor(np.asarray(directions.U), dtype=torch.float32)
        candidates = _signed_ws_candidates(gan, U, "ganspace", setting.ganspace_layers,
                                           setting.batch_size)
        return Method("GANSpace", lambda region: candidates, seconds)
    layer = setting.ganspace_layer or next(iter(gan.layers))
    latents = gan.sample_latents(setting.ganspace_samples, seed=seed)
    Y = torch.cat([b.reshape(len(b), -1).cpu() for b in
                   gan.features(latents, layer, batch_size=setting.batch_size)])
    z = latents.z.reshape(len(latents), -1).cpu()
    directions = tp.ganspace(z.numpy(), Y.numpy(), setting.n_directions, random_state=seed)
    seconds = time.perf_counter() - start
    U = torch.as_tensor(np.asarray(directions.U), dtype=torch.float32)
    candidates = _signed_latent_candidates(gan, U, f"ganspace@{layer}", setting.batch_size)
    return Method("GANSpace", lambda region: candidates, seconds)


def _signed_latent_candidates(gan, U, name, batch_size) -> list[Candidate]:
    """One latent candidate per direction and sign."""
    return [
        Candidate(f"{name} u_{i} × {sign:+d}",
                  latent_editor(gan, sign * U[i], batch_size))
        for i in range(len(U))
        for sign in (1, -1)
    ]


def _signed_ws_candidates(gan, U, name, layers, batch_size) -> list[Candidate]:
    """One W+ candidate per direction and sign."""
    where = "" if layers is None else f" at {gan.style_indices(layers)}"
    return [
        Candidate(f"{name} u_{i} × {sign:+d}{where}",
                  ws_editor(gan, sign * U[i], layers, batch_size))
        for i in range(len(U))
        for sign in (1, -1)
    ]


def panda_method(gan: Adapter, layer: str, setting: Setting, seed: int):
    """Fit PandA on streamed features; return the method and the fit.

    For a region, the candidates paint, into each of the part sets of
    `overlapping_parts`, the ``n_appearances`` appearances with the largest
    [`region_scores`][tensorpanda.region_scores] there (signed so that they add what lives there),
    scaled by the mean norm of a channel fibre at the layer (measured on 200 more samples,
    seed ``seed + 7``).
    """
    start = time.perf_counter()
    stream = gan.features(gan.sample_latents(setting.fit_samples, seed=seed), layer,
                          batch_size=setting.batch_size)
    fit = tp.tucker2(stream, (None, setting.n_parts), solver="hals", random_state=seed)
    seconds = time.perf_counter() - start
    probe = gan.sample_latents(200, seed=seed + 7)
    Z = torch.cat(list(gan.features(probe, layer, batch_size=setting.batch_size))).cpu().numpy()
    scale = float(np.sqrt((Z**2).sum(axis=1)).mean())  # edits in units of a fibre's norm

    def candidates_for(region: np.ndarray) -> list[Candidate]:
        out = []
        for parts in overlapping_parts(fit, region):
            inside = np.asarray(tp.part_map(fit, parts)) >= 0.5
            scores = tp.region_scores(fit, Z, inside)
            for j in np.argsort(-np.abs(scores))[: setting.n_appearances]:
                sign = float(np.sign(scores[j]))
                delta = sign * scale * np.asarray(tp.edit_direction(fit, int(j), parts))
                out.append(Candidate(
                    f"panda a_{int(j)} × {sign:+.0f} in parts {parts}",
                    feature_editor(gan, layer, torch.as_tensor(delta, dtype=torch.float32),
                                   setting.batch_size),
                ))
        return out

    return Method("PandA", candidates_for, seconds), fit


def overlapping_parts(fit: tp.Factorization, region: np.ndarray) -> list[list[int]]:
    """The two parts whose mass lies most inside ``region`` (an image mask), alone and together."""
    size = region.shape
    share = []
    for k in range(fit.rank[1]):
        p = np.asarray(tp.upsample(tp.part_map(fit, k), size))
        share.append((p * region).sum() / max(p.sum(), 1e-30))
    first, second = (int(k) for k in np.argsort(share)[::-1][:2])
    return [[first], [second], sorted([first, second])]


# -- calibration and measurement --------------------------------------------------------------
def inside_change(original: torch.Tensor, edited: torch.Tensor, region: np.ndarray) -> float:
    """Mean over samples of the RMS pixel change inside the region."""
    diff = (edited - original).cpu().numpy()[:, :, region]
    return float(np.sqrt((diff**2).mean(axis=(1, 2))).mean())


def calibrate(edit: Editor, latents: Latents, images: torch.Tensor, region: np.ndarray,
              target: float, steps: int = 12) -> float:
    """The α > 0 whose edit changes the region by ``target`` on average.

    Bracketing by factors of 4, then bisection in log α; above 1e4 the edit barely touches
    the region and that α is returned, so that its ROIR shows it.
    """
    low, high = 0.0, 1.0
    while inside_change(images, edit(latents, high), region) < target:
        low, high = high, high * 4
        if high > 1e4:
            return float(high)  # this edit barely touches the region: let its ROIR show it
    for _ in range(steps):
        mid = (low + high) / 2 if low == 0 else np.sqrt(low * high)
        if inside_change(images, edit(latents, mid), region) < target:
            low = mid
        else:
            high = mid
    return float(high)


def best_edit(method: Method, region: np.ndarray, selection: Latents,
              selection_images: torch.Tensor, setting: Setting) -> tuple[Candidate, float]:
    """The candidate with the lowest mean ROIR on the selection set, and its calibrated α."""
    best, best_score, best_alpha = None, np.inf, None
    for candidate in method.candidates_for(region):
        alpha = calibrate(candidate.edit, selection, selection_images, region,
                          setting.target_change)
        edited = candidate.edit(selection, alpha)
        score = tp.summarize(tp.roir(selection_images, edited, region))[0]
        if score < best_score:
            best, best_score, best_alpha = candidate, score, alpha
    return best, best_alpha


def evaluate(methods: list[Method], regions: dict[str, np.ndarray], selection: Latents,
             evaluation: Latents, gan: Adapter, setting: Setting) -> list[Result]:
    """ROIR of each method's best edit for each region (outer loop), on the evaluation set."""
    selection_images = gan.generate(selection, batch_size=setting.batch_size)
    evaluation_images = gan.generate(evaluation, batch_size=setting.batch_size)
    results = []
    for name, region in regions.items():
        for method in methods:
            candidate, alpha = best_edit(method, region, selection, selection_images, setting)
            edited = candidate.edit(evaluation, alpha)
            results.append(Result(
                method=method.name, region=name, label=candidate.label, alpha=alpha,
                roir=tp.roir(evaluation_images, edited, region),
                inside_change=inside_change(evaluation_images, edited, region),
                edit=candidate.edit,
            ))
    return results

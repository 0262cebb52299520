"""How local is an edit? PandA against SeFa and GANSpace on one generator (DESIGN.md §5).

For each region (a boolean image mask) every method proposes candidate edits; each candidate
is calibrated to the same mean change inside the region, the method keeps the candidate
with the lowest ROIR on a *selection* set of samples, and that edit is measured on a
separate *evaluation* set. So every method gets the same masks, the same samples, a matched
edit strength, and its best direction for each region.

- PandA edits the feature maps: α · s a_j p̂_Kᵀ at the fitted layer, for the parts K that
  overlap the region and the appearances j most present there (sign s).
- SeFa and GANSpace edit the latent: z + α u for their leading directions u, both signs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import tensorpanda as tp

from .base import Adapter
from .latents import Latents

Editor = Callable[[Latents, float], torch.Tensor]


@dataclass
class Candidate:
    """One edit a method proposes: a label and ``edit(latents, alpha) -> images``.

    Attributes
    ----------
    label : str
        What the edit is, e.g. ``"sefa u_0 × +1"``.
    edit : callable
        ``edit(latents, alpha) -> images``, images ``(N, 3, H, W)`` in ``[0, 1]``;
        ``alpha = 0`` gives the unedited images.

    Examples
    --------
    >>> import torch
    >>> from tensorpanda.adapters import load
    >>> from tensorpanda.adapters.locality import Candidate, latent_editor
    >>> gan = load("dcgan-faces")
    >>> u = torch.zeros(100)
    >>> u[0] = 1.0
    >>> candidate = Candidate("z_0 × +1", latent_editor(gan, u, batch_size=8))
    >>> candidate.edit(gan.sample_latents(2), 3.0).shape
    torch.Size([2, 3, 64, 64])
    """

    label: str
    edit: Editor


@dataclass
class Method:
    """A method's candidates and the seconds it took to find its directions.

    Attributes
    ----------
    name : str
        E.g. ``"PandA"``, ``"SeFa"``, ``"GANSpace"``.
    candidates_for : callable
        ``candidates_for(region) -> list of Candidate`` for a boolean image mask
        ``region`` (latent-space methods ignore it and always propose the same ones).
    seconds : float
        Time spent finding the directions (fit included).

    Examples
    --------
    A method with one candidate that brightens the whole image:

    >>> import numpy as np
    >>> import torch
    >>> from tensorpanda.adapters.locality import Candidate, Method
    >>> images = torch.zeros(1, 3, 4, 4)
    >>> brighten = Candidate("brighter", lambda latents, alpha: images + 0.1 * alpha)
    >>> method = Method("toy", lambda region: [brighten], seconds=0.0)
    >>> [c.label for c in method.candidates_for(np.ones((4, 4), bool))]
    ['brighter']
    """

    name: str
    candidates_for: Callable[[np.ndarray], list[Candidate]]
    seconds: float


@dataclass
class Result:
    """A method's best edit for a region, measured on the evaluation set.

    Made by :func:`evaluate`.

    Attributes
    ----------
    method : str
    region : str
        The region's name.
    label : str
        The chosen candidate's label.
    alpha : float
        The strength calibrated on the selection set.
    roir : numpy.ndarray
        ROIR per evaluation sample (lower is more local).
    inside_change : float
        Mean RMS pixel change inside the region on the evaluation set.
    edit : callable
        The chosen candidate's ``edit(latents, alpha) -> images``.

    Examples
    --------
    >>> import numpy as np
    >>> import tensorpanda as tp
    >>> from tensorpanda.adapters.locality import Result
    >>> result = Result("SeFa", "mouth", "sefa u_0 × +1", alpha=2.0,
    ...                 roir=np.array([1.0, 3.0]), inside_change=0.08, edit=None)
    >>> tp.summarize(result.roir)
    (2.0, 1.0)
    """

    method: str
    region: str
    label: str
    alpha: float
    roir: np.ndarray
    inside_change: float
    edit: Editor


@dataclass
class Setting:
    """Sizes and the matched strength of the evaluation.

    Attributes
    ----------
    target_change : float, default 0.08
        RMS pixel change inside the region (pixels in ``[0, 1]``) that every candidate
        is calibrated to.
    n_directions : int, default 10
        Leading latent directions tried per baseline (each with both signs).
    n_appearances : int, default 8
        Appearances tried per PandA part set (signed).
    n_parts : int, default 8
        Parts of the PandA fit.
    fit_samples : int, default 2000
        Samples of the PandA fit.
    ganspace_samples : int, default 5000
        Samples of GANSpace's PCA.
    ganspace_layer : str, optional
        Layer of GANSpace's PCA; default the adapter's first feature layer.
    batch_size : int, default 250

    Examples
    --------
    >>> from tensorpanda.adapters.locality import Setting
    >>> setting = Setting(n_directions=2, fit_samples=300)
    >>> setting.n_directions, setting.fit_samples, setting.target_change
    (2, 300, 0.08)
    """

    target_change: float = 0.08  # RMS pixel change inside the region, pixels in [0, 1]
    n_directions: int = 10  # leading latent directions tried per baseline (× 2 signs)
    n_appearances: int = 8  # appearances tried per PandA part set (signed)
    n_parts: int = 8
    fit_samples: int = 2000
    ganspace_samples: int = 5000
    ganspace_layer: str | None = None  # default: the adapter's first feature layer
    batch_size: int = 250


# -- editors -------------------------------------------------------------------------------------
def shifted(latents: Latents, direction: torch.Tensor, alpha: float) -> Latents:
    """Latents with z moved by α u (conditioning and truncation kept).

    Parameters
    ----------
    latents : Latents
    direction : torch.Tensor
        ``u``, with as many entries as one latent code (reshaped to its shape).
    alpha : float

    Returns
    -------
    Latents

    Examples
    --------
    >>> import torch
    >>> from tensorpanda.adapters import Latents
    >>> from tensorpanda.adapters.locality import shifted
    >>> moved = shifted(Latents(torch.zeros(2, 3), truncation=0.5), torch.tensor([1.0, 0, 0]), 2.0)
    >>> moved.z, moved.truncation
    (tensor([[2., 0., 0.],
            [2., 0., 0.]]), 0.5)
    """
    z = latents.z + alpha * direction.to(latents.z).reshape(1, *latents.z.shape[1:])
    return Latents(z=z, condition=latents.condition, truncation=latents.truncation)


def latent_editor(gan: Adapter, direction: torch.Tensor, batch_size: int) -> Editor:
    """An editor that moves the latents along ``direction`` and generates.

    Parameters
    ----------
    gan : Adapter
    direction : torch.Tensor
        A latent direction ``u`` (see :func:`shifted`).
    batch_size : int
        Batch size of :meth:`Adapter.generate`.

    Returns
    -------
    callable
        ``edit(latents, alpha) -> images`` of ``z + alpha * u``.

    Examples
    --------
    >>> import torch
    >>> from tensorpanda.adapters import load
    >>> from tensorpanda.adapters.locality import latent_editor
    >>> gan = load("dcgan-faces")
    >>> edit = latent_editor(gan, torch.ones(100) / 10, batch_size=8)
    >>> latents = gan.sample_latents(2)
    >>> torch.equal(edit(latents, 0.0), gan.generate(latents))
    True
    """
    def edit(latents: Latents, alpha: float) -> torch.Tensor:
        return gan.generate(shifted(latents, direction, alpha), batch_size=batch_size)

    return edit


def feature_editor(gan: Adapter, layer: str, delta: torch.Tensor, batch_size: int) -> Editor:
    """An editor that adds ``alpha * delta`` to the feature maps of ``layer``.

    Parameters
    ----------
    gan : Adapter
    layer : str
        Layer name or alias.
    delta : torch.Tensor
        ``(C, H, W)`` (or ``(N, C, H, W)``), as for :meth:`Adapter.generate`.
    batch_size : int

    Returns
    -------
    callable
        ``edit(latents, alpha) -> images``.

    Examples
    --------
    >>> import torch
    >>> from tensorpanda.adapters import load
    >>> from tensorpanda.adapters.locality import feature_editor
    >>> gan = load("dcgan-faces")
    >>> edit = feature_editor(gan, "8x8", torch.ones(256, 8, 8), batch_size=8)
    >>> latents = gan.sample_latents(2)
    >>> torch.equal(edit(latents, 0.0), gan.generate(latents))
    True
    >>> edit(latents, 1.0).shape
    torch.Size([2, 3, 64, 64])
    """
    def edit(latents: Latents, alpha: float) -> torch.Tensor:
        return gan.generate(latents, layer, edit=alpha * delta, batch_size=batch_size)

    return edit


# -- methods -------------------------------------------------------------------------------------
def sefa_method(gan: Adapter, setting: Setting) -> Method:
    """SeFa: the leading eigenvectors of ``Wᵀ W`` (:meth:`Adapter.latent_projection`).

    Parameters
    ----------
    gan : Adapter
    setting : Setting
        Uses ``n_directions`` and ``batch_size``.

    Returns
    -------
    Method
        The same ``2 * n_directions`` latent candidates for every region.

    Examples
    --------
    >>> from tensorpanda.adapters import load
    >>> from tensorpanda.adapters.locality import Setting, sefa_method
    >>> method = sefa_method(load("dcgan-faces"), Setting(n_directions=2))
    >>> method.name, [c.label for c in method.candidates_for(None)]
    ('SeFa', ['sefa u_0 × +1', 'sefa u_0 × -1', 'sefa u_1 × +1', 'sefa u_1 × -1'])
    """
    start = time.perf_counter()
    directions = tp.sefa(gan.latent_projection().detach().cpu().numpy(), setting.n_directions)
    seconds = time.perf_counter() - start
    U = torch.as_tensor(np.asarray(directions.U), dtype=torch.float32)
    candidates = _signed_latent_candidates(gan, U, "sefa", setting.batch_size)
    return Method("SeFa", lambda region: candidates, seconds)


def ganspace_method(gan: Adapter, setting: Setting, seed: int) -> Method:
    """GANSpace: PCA of a layer's activations, carried back to the latent space.

    Parameters
    ----------
    gan : Adapter
    setting : Setting
        Uses ``ganspace_samples``, ``ganspace_layer``, ``n_directions`` and
        ``batch_size``.
    seed : int
        Seed of the samples and of the PCA.

    Returns
    -------
    Method
        The same ``2 * n_directions`` latent candidates for every region.

    Examples
    --------
    >>> from tensorpanda.adapters import load
    >>> from tensorpanda.adapters.locality import Setting, ganspace_method
    >>> setting = Setting(n_directions=1, ganspace_samples=32, batch_size=32)
    >>> method = ganspace_method(load("dcgan-faces"), setting, seed=0)
    >>> [c.label for c in method.candidates_for(None)]
    ['ganspace@main.2 u_0 × +1', 'ganspace@main.2 u_0 × -1']
    """
    layer = setting.ganspace_layer or next(iter(gan.layers))
    start = time.perf_counter()
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
    return [
        Candidate(f"{name} u_{i} × {sign:+d}",
                  latent_editor(gan, sign * U[i], batch_size))
        for i in range(len(U))
        for sign in (1, -1)
    ]


def panda_method(gan: Adapter, layer: str, setting: Setting, seed: int):
    """Fit PandA on streamed features; return the method and the fit.

    For a region, the candidates paint, into each of the part sets of
    :func:`overlapping_parts`, the ``n_appearances`` appearances with the largest
    :func:`~tensorpanda.region_scores` there (signed so that they add what lives there),
    scaled by the mean norm of a channel fibre at the layer.

    Parameters
    ----------
    gan : Adapter
    layer : str
        Layer to fit and edit.
    setting : Setting
        Uses ``fit_samples``, ``n_parts``, ``n_appearances`` and ``batch_size``.
    seed : int
        Seed of the samples and of the fit (200 more samples, ``seed + 7``, set the
        scores and the scale).

    Returns
    -------
    method : Method
    fit : Factorization

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.adapters import load
    >>> from tensorpanda.adapters.locality import Setting, panda_method
    >>> setting = Setting(n_parts=4, n_appearances=1, fit_samples=48, batch_size=50)
    >>> method, fit = panda_method(load("dcgan-faces"), "main.5", setting, seed=0)
    >>> fit.rank
    (256, 4)
    >>> mouth = np.zeros((64, 64), bool)
    >>> mouth[40:56, 20:44] = True
    >>> len(method.candidates_for(mouth))    # 3 part sets x 1 appearance
    3
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
    """The two parts whose mass lies most inside ``region`` (an image mask), each alone and
    together.

    Parameters
    ----------
    fit : Factorization
    region : numpy.ndarray of bool
        An image mask; the parts are upsampled to its shape.

    Returns
    -------
    list of list of int
        ``[[first], [second], sorted([first, second])]``.

    Examples
    --------
    Parts on a 4x4 grid: the top half, the bottom-right and the bottom-left quadrants:

    >>> import numpy as np
    >>> import tensorpanda as tp
    >>> from tensorpanda.adapters.locality import overlapping_parts
    >>> P = np.zeros((4, 4, 3))
    >>> P[:2, :, 0] = P[2:, 2:, 1] = P[2:, :2, 2] = 1.0
    >>> fit = tp.Factorization(A=np.eye(2), P=P.reshape(16, 3), spatial_shape=(4, 4))
    >>> region = np.zeros((16, 16), bool)
    >>> region[8:, 6:] = True       # the bottom-right quadrant and a bit more
    >>> overlapping_parts(fit, region)
    [[1], [2], [1, 2]]
    """
    size = region.shape
    share = []
    for k in range(fit.rank[1]):
        p = np.asarray(tp.upsample(tp.part_map(fit, k), size))
        share.append((p * region).sum() / max(p.sum(), 1e-30))
    first, second = (int(k) for k in np.argsort(share)[::-1][:2])
    return [[first], [second], sorted([first, second])]


# -- calibration and measurement --------------------------------------------------------------
def inside_change(original: torch.Tensor, edited: torch.Tensor, region: np.ndarray) -> float:
    """Mean over samples of the RMS pixel change inside the region.

    Parameters
    ----------
    original, edited : torch.Tensor
        Images ``(N, C, H, W)``.
    region : numpy.ndarray of bool
        Mask ``(H, W)``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from tensorpanda.adapters.locality import inside_change
    >>> original = torch.zeros(2, 3, 4, 4)
    >>> edited = original.clone()
    >>> edited[:, :, :2] = 0.5
    >>> region = np.zeros((4, 4), bool)
    >>> region[:2] = True
    >>> inside_change(original, edited, region), inside_change(original, edited, ~region)
    (0.5, 0.0)
    """
    diff = (edited - original).cpu().numpy()[:, :, region]
    return float(np.sqrt((diff**2).mean(axis=(1, 2))).mean())


def calibrate(edit: Editor, latents: Latents, images: torch.Tensor, region: np.ndarray,
              target: float, steps: int = 12) -> float:
    """The α > 0 whose edit changes the region by ``target`` on average (bisection in log α
    after bracketing).

    Parameters
    ----------
    edit : callable
        ``edit(latents, alpha) -> images``.
    latents : Latents
    images : torch.Tensor
        The unedited images of ``latents``.
    region : numpy.ndarray of bool
        Image mask.
    target : float
        The wanted :func:`inside_change`.
    steps : int, default 12
        Bisection steps after bracketing.

    Returns
    -------
    float
        The strength; larger than ``1e4`` if the edit barely touches the region.

    Examples
    --------
    An edit that brightens every pixel by ``0.01 α``:

    >>> import numpy as np
    >>> import torch
    >>> from tensorpanda.adapters import Latents
    >>> from tensorpanda.adapters.locality import calibrate
    >>> images = torch.zeros(2, 3, 8, 8)
    >>> brighten = lambda latents, alpha: images + 0.01 * alpha
    >>> region = np.zeros((8, 8), bool)
    >>> region[2:6, 2:6] = True
    >>> alpha = calibrate(brighten, Latents(torch.zeros(2, 1)), images, region, target=0.05)
    >>> round(float(alpha), 2)
    5.0
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
    """The candidate with the lowest mean ROIR on the selection set, at matched strength.

    Parameters
    ----------
    method : Method
    region : numpy.ndarray of bool
        Image mask.
    selection : Latents
        Samples the choice is made on.
    selection_images : torch.Tensor
        Their unedited images.
    setting : Setting
        Uses ``target_change``.

    Returns
    -------
    candidate : Candidate
    alpha : float
        Its calibrated strength.

    Examples
    --------
    Of an edit that brightens the whole image and one that brightens only the region,
    the local one wins:

    >>> import numpy as np
    >>> import torch
    >>> from tensorpanda.adapters import Latents
    >>> from tensorpanda.adapters.locality import Candidate, Method, Setting, best_edit
    >>> images = torch.zeros(2, 3, 8, 8)
    >>> region = np.zeros((8, 8), bool)
    >>> region[2:6, 2:6] = True
    >>> inside = torch.as_tensor(region, dtype=torch.float32)
    >>> method = Method("toy", lambda region: [
    ...     Candidate("everywhere", lambda latents, alpha: images + 0.01 * alpha),
    ...     Candidate("inside", lambda latents, alpha: images + 0.01 * alpha * inside),
    ... ], seconds=0.0)
    >>> candidate, alpha = best_edit(method, region, Latents(torch.zeros(2, 1)), images,
    ...                              Setting(target_change=0.05))
    >>> candidate.label, round(float(alpha), 2)
    ('inside', 5.0)
    """
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
    """ROIR of each method's best edit for each region, on the evaluation set.

    Parameters
    ----------
    methods : list of Method
    regions : dict of str to numpy.ndarray
        Region name -> boolean image mask.
    selection : Latents
        Samples on which each method's best candidate and its strength are chosen.
    evaluation : Latents
        Separate samples on which that edit is measured.
    gan : Adapter
    setting : Setting
        Uses ``target_change`` and ``batch_size``.

    Returns
    -------
    list of Result
        One per region and method, regions in the outer loop.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorpanda.adapters import load
    >>> from tensorpanda.adapters.locality import Setting, evaluate, sefa_method
    >>> gan = load("dcgan-faces")
    >>> setting = Setting(n_directions=1)
    >>> mouth = np.zeros((64, 64), bool)
    >>> mouth[40:56, 20:44] = True
    >>> results = evaluate([sefa_method(gan, setting)], {"mouth": mouth},
    ...                    gan.sample_latents(2, seed=1), gan.sample_latents(2, seed=2),
    ...                    gan, setting)
    >>> [(r.method, r.region, r.roir.shape, bool(r.alpha > 0)) for r in results]
    [('SeFa', 'mouth', (2,), True)]
    """
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

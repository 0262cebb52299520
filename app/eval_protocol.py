"""One fit's evaluation: PandA, masked baselines and latent baselines on the same regions.

For a seed s, `run_seed` fits PandA on its own samples, then for each region:

- *masked* edits (`tensorpanda.app.eval_masked`): each direction family painted into
  PandA's part that lies most inside the region, and into the region itself (averaged down
  to the feature grid), all at the same feature-space norm;
- *latent* edits: SeFa and GANSpace (`tensorpanda.app.locality`), calibrated once to the
  median whole-image change of the masked edits on the selection samples.

Each family keeps its direction with the lowest mean ROIR on the selection samples; that edit
is measured on separate evaluation samples: ROIR, change inside, uniform share, consistency
(`tensorpanda.app.eval_measures`). Fit, probe, selection and evaluation samples all
come from seed-dependent draws, so fits of different seeds see different samples.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace

import numpy as np
import torch

import tensorpanda as tp
from tensorpanda.adapters import Adapter, Latents

from . import eval_measures as em
from .demo import part_near
from .eval_masked import (
    FAMILIES,
    directions,
    edit_many,
    masked_editor,
    part_paint,
    refined_paint,
    region_paint,
)
from .locality import (
    Setting,
    ganspace_method,
    overlapping_parts,
    sefa_method,
)


@dataclass
class EvalSetting:
    """What one seed fits and how many samples each step uses."""

    layer: str = "main.5"
    n_parts: int = 8  # R_S
    rank_c: int | None = None  # R_C (None: every channel)
    n_fit: int = 1000
    n_probe: int = 200  # picks PandA's appearances and the PCA/mean-difference directions
    n_select: int = 24
    n_eval: int = 48
    n_candidates: int = 4  # PandA appearances and random directions tried per paint map
    n_directions: int = 5  # SeFa / GANSpace leading directions (× 2 signs)
    strength: float = 1.0  # t, masked edits in units of a channel fibre's mean norm
    ganspace_samples: int = 2000
    refine: bool = False  # paint PandA's part refined on each sample
    smoothness: float | None = None  # passed to tp.tucker2 when it takes it
    latent: bool = True  # also SeFa and GANSpace
    families: tuple = FAMILIES
    paints: tuple = ("PandA part", "the region")  # where masked edits are painted
    sefa_layers: object = None
    ganspace_layers: object = None
    batch_size: int = 250
    max_images: int = 1024  # most images held at once (lower it for large images)


@dataclass
class Region:
    """An image mask to edit; ``kind`` is "fixed" (no method chose it) or "PandA part"."""

    name: str
    mask: np.ndarray
    kind: str = "fixed"


@dataclass
class Row:
    """One method's chosen edit for one region, measured on the evaluation samples."""

    seed: int
    region: str
    kind: str
    paint: str  # "PandA part", "the region" or "latent"
    method: str
    label: str
    alpha: float
    roir: float = float("nan")  # mean over the evaluation samples
    inside: float = float("nan")
    uniform: float = float("nan")
    consistency: float = float("nan")
    edit: object = field(repr=False, default=None)
    roir_std: float = float("nan")  # over the evaluation samples


@dataclass
class SeedRun:
    """The rows of one seed, its fit and the samples it measured on."""

    rows: list
    fit: tp.Factorization
    evaluation: Latents
    probe: np.ndarray
    scale: float


def fit_panda(gan: Adapter, setting: EvalSetting, latents: Latents,
              seed: int) -> tp.Factorization:
    """PandA at ``setting.layer`` on the streamed features of ``latents`` (HALS, seed ``seed``)."""
    extra = {}
    if setting.smoothness is not None:
        if "smoothness" not in inspect.signature(tp.tucker2).parameters:
            raise ValueError("this tensorpanda's tucker2 takes no smoothness prior")
        extra["smoothness"] = setting.smoothness
    stream = gan.features(latents, setting.layer, batch_size=setting.batch_size)
    return tp.tucker2(stream, (setting.rank_c, setting.n_parts), solver="hals",
                      random_state=seed, **extra)


def features(gan: Adapter, layer: str, latents: Latents, batch_size: int) -> np.ndarray:
    """Feature maps (N, C, H, W) as numpy."""
    return torch.cat(list(gan.features(latents, layer, batch_size=batch_size))).cpu().numpy()


def paints_for(gan, fit, region: Region, setting: EvalSetting):
    """The paint maps of a region: PandA's part most inside it, and the region itself."""
    k = overlapping_parts(fit, region.mask)[0]
    part = (refined_paint(gan, setting.layer, fit, k, setting.batch_size) if setting.refine
            else part_paint(fit, k))
    paints = [("PandA part", part)]
    if region.kind == "fixed":
        paints.append(("the region", region_paint(region.mask, fit.spatial_shape)))
    return [(name, paint) for name, paint in paints if name in setting.paints]


def run_seed(gan: Adapter, setting: EvalSetting, regions: list, part_targets: dict,
             seed: int, sample) -> SeedRun:
    """Evaluate every method on every region for one seed; ``sample(n, seed)`` draws latents.

    ``part_targets`` maps a name to a (row, column) in [0, 1]: the PandA part nearest it is
    added as a region of kind "PandA part".
    """
    fit = fit_panda(gan, setting, sample(setting.n_fit, 100 * seed + 1), seed)
    probe = features(gan, setting.layer, sample(setting.n_probe, 100 * seed + 2),
                     setting.batch_size)
    scale = float(np.sqrt((probe**2).sum(axis=1)).mean())
    selection, evaluation = sample(setting.n_select, 100 * seed + 3), sample(setting.n_eval,
                                                                           100 * seed + 4)
    sel_images = images_of(gan.generate(selection, batch_size=setting.batch_size))
    size = tuple(sel_images.shape[2:])
    regions = list(regions) + [
        Region(name, np.asarray(tp.part_mask(fit, part_near(fit, where), size=size)),
               "PandA part")
        for name, where in part_targets.items()]
    chosen, changes = [], []
    for region in regions:
        for paint_name, paint in paints_for(gan, fit, region, setting):
            new, change = masked_choices(gan, setting, fit, probe, scale, region, paint, seed,
                                         selection, sel_images)
            chosen += [Row(seed, region.name, region.kind, paint_name, **c) for c in new]
            changes += change
    if setting.latent:
        chosen += latent_choices(gan, setting, regions, seed, selection, sel_images,
                                 float(np.median(changes)) if changes else 0.05)
    rows = measured(gan, setting, chosen, {r.name: r.mask for r in regions}, evaluation)
    return SeedRun(rows, fit, evaluation, probe, scale)


def images_of(x) -> np.ndarray:
    """Generated images as a float32 numpy array on the host."""
    return x.detach().cpu().numpy()


def masked_choices(gan, setting, fit, probe, scale, region, paint, seed, selection,
                   sel_images):
    """Each family's direction with the lowest ROIR on the selection samples, painted with
    ``paint`` (as Row fields, not yet measured), and every candidate's whole-image change."""
    found = [(family, label, d) for family in setting.families
             for label, d in directions(family, paint, probe, fit, setting.n_candidates, seed)]
    D = np.stack([d for _, _, d in found])
    group = max(1, setting.max_images // len(selection))
    scores, changes = [], []
    for start in range(0, len(D), group):
        for x in images_of(edit_many(gan, setting.layer, D[start:start + group], paint, scale,
                                     selection, setting.strength, setting.batch_size)):
            scores.append(tp.summarize(tp.roir(sel_images, x, region.mask))[0])
            changes.append(em.rms_change(sel_images, x))
    scores = np.where(np.isfinite(scores), scores, np.inf)
    best = [min((i for i, f in enumerate(found) if f[0] == family), key=lambda i: scores[i])
            for family in setting.families]
    return [dict(method=found[i][0], label=f"{found[i][1]} in {paint.name}",
                 alpha=setting.strength, edit=masked_editor(gan, setting.layer, D[i], paint,
                                                            scale, setting.batch_size))
            for i in best], changes


def latent_choices(gan, setting, regions, seed, selection, sel_images, target: float) -> list:
    """SeFa's and GANSpace's direction with the lowest ROIR per region on the selection
    samples, each direction calibrated once to a whole-image RMS change of ``target``."""
    ls = Setting(n_directions=setting.n_directions, ganspace_samples=setting.ganspace_samples,
                 batch_size=setting.batch_size, sefa_layers=setting.sefa_layers,
                 ganspace_layers=setting.ganspace_layers)
    everywhere = np.ones(tuple(sel_images.shape[2:]), dtype=bool)
    rows = []
    for method in (sefa_method(gan, ls), ganspace_method(gan, ls, seed)):
        candidates = method.candidates_for(everywhere)
        scores = np.full((len(candidates), len(regions)), np.inf)
        alphas = []
        for i, c in enumerate(candidates):
            alphas.append(linear_alpha(c.edit, selection, sel_images, target))
            x = images_of(c.edit(selection, alphas[-1]))
            for j, region in enumerate(regions):
                scores[i, j] = tp.summarize(tp.roir(sel_images, x, region.mask))[0]
        scores = np.where(np.isfinite(scores), scores, np.inf)
        for j, region in enumerate(regions):
            i = int(np.argmin(scores[:, j]))
            rows.append(Row(seed, region.name, region.kind, "latent", method.name,
                            candidates[i].label, alphas[i], edit=candidates[i].edit))
    return rows


class Accumulator:
    """The measures of one edit on one region, added chunk by chunk of samples (the
    consistency on the first chunk of at least two samples)."""

    def __init__(self, mask: np.ndarray):
        self.mask = np.asarray(mask, dtype=bool)
        self.roir, self.inside, self.tint, self.total = [], [], 0.0, 0.0
        self.consistency = float("nan")

    def add(self, original: np.ndarray, edited: np.ndarray) -> None:
        """Measure one chunk."""
        self.roir += list(tp.roir(original, edited, self.mask))
        D = (edited.astype(np.float64) - original)[:, :, self.mask]
        self.inside += list(np.sqrt((D**2).mean(axis=(1, 2))))
        self.tint += float((D.mean(axis=2) ** 2).sum() * D.shape[2])
        self.total += float((D**2).sum())
        if np.isnan(self.consistency) and len(D) > 1:
            self.consistency = em.consistency(original, edited, self.mask)

    def result(self) -> dict:
        """ROIR (mean over samples), change inside, uniform share, consistency."""
        roir, roir_std = tp.summarize(self.roir)
        return dict(roir=roir, roir_std=roir_std, inside=float(np.mean(self.inside)),
                    uniform=self.tint / self.total if self.total else float("nan"),
                    consistency=self.consistency)


def measured(gan, setting, chosen: list, masks: dict, evaluation) -> list:
    """The chosen edits measured on the evaluation samples, chunk by chunk."""
    edits = {(id(r.edit), r.alpha): r.edit for r in chosen}
    accumulators = [Accumulator(masks[r.region]) for r in chosen]
    size = max(1, setting.max_images // 2)
    for start in range(0, len(evaluation), size):
        chunk = evaluation[start:start + size]
        original = images_of(gan.generate(chunk, batch_size=setting.batch_size))
        for (key, alpha), edit in edits.items():
            edited = images_of(edit(chunk, alpha))
            for r, acc in zip(chosen, accumulators, strict=True):
                if (id(r.edit), r.alpha) == (key, alpha):
                    acc.add(original, edited)
    return [replace(r, **acc.result()) for r, acc in zip(chosen, accumulators, strict=True)]


def linear_alpha(edit, latents, images, target: float, probe: float = 1.0) -> float:
    """The α at which an edit changes the whole image by ``target`` (RMS), from its change at
    α = ``probe``, assuming the change grows linearly (small edits)."""
    change = em.rms_change(images, edit(latents, probe))
    return probe * target / change if change > 0 else float("inf")


def summarize_rows(rows: list, key=("region", "paint", "method"),
                   values=("roir", "inside", "uniform", "consistency")) -> dict:
    """{key tuple: {value: (mean, std, n)}} over seeds (std with ddof = 1)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(tuple(getattr(r, k) for k in key), []).append(r)
    out = {}
    for k, group in groups.items():
        out[k] = {}
        for v in values:
            x = np.array([getattr(r, v) for r in group], dtype=np.float64)
            x = x[np.isfinite(x)]
            std = float(x.std(ddof=1)) if len(x) > 1 else float("nan")
            out[k][v] = (float(x.mean()) if len(x) else float("nan"), std, len(x))
    return out


def congruence_between_fits(fits: list) -> list[float]:
    """Matched part congruence for every pair of fits."""
    Ps = [np.asarray(f.to_numpy().P) for f in fits]
    return [em.matched_congruence(Ps[i], Ps[j])
            for i in range(len(Ps)) for j in range(i + 1, len(Ps))]

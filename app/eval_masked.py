"""Masked feature edits: PandA's appearances against plain directions, in the same region.

Every edit here adds Δ_i = t · s · d p_iᵀ to the feature maps at PandA's layer, where d is a
unit C-vector (the *direction*), p_i ∈ [0, 1]^{H×W} the *paint* map (where the edit acts), s
the mean norm of a channel fibre at the layer and t the strength. For a given paint map every
direction therefore gets the same feature-space norm ‖Δ_i‖_F = t · s · ‖p_i‖_F: only the
direction differs. The directions, for a paint map p:

- ``panda``: PandA's appearances a_j most present where p ≥ ½ (signed, as the demo does);
- ``random``: random unit vectors (as many as PandA gets);
- ``pca``: the top principal direction of the feature fibres where p ≥ ½, both signs;
- ``mean difference``: the mean fibre where p ≥ ½ minus the mean fibre elsewhere.

Paint maps: PandA's part p̂_K (`part_paint`), a region no method chose, averaged down
to the feature grid (`region_paint`), or PandA's part refined on each sample
(`refined_paint`, with `tensorpanda.refine`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import tensorpanda as tp
from tensorpanda.adapters import Adapter, Latents

from .locality import Candidate

FAMILIES = ("panda", "random", "pca", "mean difference")


@dataclass
class Paint:
    """Where an edit acts: ``maps(latents)`` gives (H, W) or per-sample (N, H, W) in [0, 1]."""

    name: str
    maps: Callable[[Latents], np.ndarray]
    mean_map: np.ndarray  # (H, W): the map on average, used to pick directions


def fixed_paint(name: str, p: np.ndarray) -> Paint:
    """A paint map that is the same for every sample."""
    p = np.asarray(p, dtype=np.float64)
    return Paint(name, lambda latents: p, p)


def part_paint(fit: tp.Factorization, parts) -> Paint:
    """PandA's region p̂_K of the parts K (min-max normalised sum)."""
    return fixed_paint(f"part {parts}", np.asarray(tp.part_map(fit, parts)))


def region_paint(mask: np.ndarray, grid: tuple[int, int]) -> Paint:
    """An image mask averaged down to the feature grid (the share of each cell inside),
    scaled so that its peak is 1."""
    t = torch.as_tensor(np.asarray(mask, dtype=np.float32))[None, None]
    p = torch.nn.functional.adaptive_avg_pool2d(t, grid)[0, 0].double().numpy()
    if p.max() <= 0:
        raise ValueError("the region is empty: give a mask with at least one True pixel")
    return fixed_paint("region", p / p.max())


def refined_paint(gan: Adapter, layer: str, fit: tp.Factorization, parts,
                  batch_size: int = 250) -> Paint:
    """PandA's parts K refined on each sample (A fixed), min-max normalised per sample."""
    cache: dict[int, np.ndarray] = {}
    columns = [parts] if isinstance(parts, int) else list(parts)

    def maps(latents: Latents) -> np.ndarray:
        key = id(latents)
        if key not in cache:
            Z = torch.cat(list(gan.features(latents, layer, batch_size=batch_size)))
            P = np.asarray(tp.refine(fit, Z.cpu().double().numpy()))  # (N, S, R_S)
            p = P[:, :, columns].sum(axis=2)
            low, high = p.min(axis=1, keepdims=True), p.max(axis=1, keepdims=True)
            p = (p - low) / np.where(high > low, high - low, 1.0)
            cache[key] = p.reshape(len(p), *fit.spatial_shape)
        return cache[key]

    return Paint(f"refined part {parts}", maps, np.asarray(tp.part_map(fit, parts)))


def masked_editor(gan: Adapter, layer: str, direction: np.ndarray, paint: Paint,
                  scale: float, batch_size: int):
    """``edit(latents, t)``: images with t · scale · d pᵀ added at ``layer``."""
    d = torch.as_tensor(np.asarray(direction, dtype=np.float32))

    def edit(latents: Latents, t: float) -> torch.Tensor:
        p = torch.as_tensor(np.asarray(paint.maps(latents), dtype=np.float32))
        delta = (t * scale) * (d[:, None, None] * p[None] if p.ndim == 2 else
                               d[None, :, None, None] * p[:, None])
        return gan.generate(latents, layer, edit=delta, batch_size=batch_size)

    return edit


def repeat(latents: Latents, times: int) -> Latents:
    """The latents ``times`` times over, one copy after the other (as one batch)."""
    def tile(x):
        return None if x is None else x.repeat(times, *([1] * (x.ndim - 1)))

    return Latents(z=tile(latents.z), condition=tile(latents.condition),
                   truncation=latents.truncation, ws=tile(latents.ws))


def edit_many(gan: Adapter, layer: str, D: np.ndarray, paint: Paint, scale: float,
              latents: Latents, t: float, batch_size: int = 250) -> torch.Tensor:
    """Images (K, N, 3, h, w) of the K directions (rows of ``D``) painted at strength t, in one
    pass of the generator over K copies of the N latents."""
    K, n = len(D), len(latents)
    p = torch.as_tensor(np.asarray(paint.maps(latents), dtype=np.float32))
    p = p.expand(n, *p.shape[-2:]) if p.ndim == 2 else p
    d = torch.as_tensor(np.asarray(D, dtype=np.float32))
    delta = (t * scale) * d[:, None, :, None, None] * p[None, :, None]  # K, N, C, H, W
    images = gan.generate(repeat(latents, K), layer, edit=delta.reshape(K * n, *delta.shape[2:]),
                          batch_size=batch_size)
    return images.reshape(K, n, *images.shape[1:])


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` divided by its norm (a zero vector is refused)."""
    norm = float(np.linalg.norm(v))
    if norm == 0:
        raise ValueError("a zero direction cannot be normalised")
    return np.asarray(v, dtype=np.float64) / norm


def directions(family: str, paint: Paint, Z: np.ndarray, fit: tp.Factorization | None,
               n: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """The unit directions of ``family`` for ``paint`` (labels and C-vectors).

    ``Z`` (N, C, H, W) are probe feature maps (not the samples edited or measured).
    """
    inside = paint.mean_map >= 0.5
    if inside.all() or not inside.any():
        raise ValueError(f"the paint map {paint.name} must be ≥ ½ somewhere but not everywhere")
    fibres = np.moveaxis(Z, 1, -1)  # (N, H, W, C)
    if family == "panda":
        scores = tp.region_scores(fit, Z, inside)
        A = np.asarray(fit.to_numpy().A)
        return [(f"a_{int(j)} × {np.sign(scores[j]):+.0f}", np.sign(scores[j]) * unit(A[:, j]))
                for j in np.argsort(-np.abs(scores))[:n]]
    if family == "random":
        rng = np.random.default_rng(seed)
        return [(f"random #{i}", unit(rng.standard_normal(Z.shape[1]))) for i in range(n)]
    if family == "pca":
        X = fibres[:, inside].reshape(-1, Z.shape[1])
        X = X - X.mean(axis=0)
        top = np.linalg.eigh(X.T @ X)[1][:, -1]
        return [("pc_1 × +1", unit(top)), ("pc_1 × -1", unit(-top))]
    if family == "mean difference":
        diff = fibres[:, inside].reshape(-1, Z.shape[1]).mean(axis=0) - \
            fibres[:, ~inside].reshape(-1, Z.shape[1]).mean(axis=0)
        return [("mean inside − outside", unit(diff))]
    raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")


def masked_candidates(gan: Adapter, layer: str, family: str, paint: Paint, Z: np.ndarray,
                      fit, scale: float, n: int, seed: int,
                      batch_size: int = 250) -> list[Candidate]:
    """One `Candidate` per direction of ``family``."""
    return [Candidate(f"{family}: {label} in {paint.name}",
                      masked_editor(gan, layer, d, paint, scale, batch_size))
            for label, d in directions(family, paint, Z, fit, n, seed)]

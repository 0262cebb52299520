"""Does the demo's "removal" remove, does its "background" saliency find the background?

The demo paints the appearance most present along the feature maps' border (its
"background" appearance) into the upper-face part, and shows that appearance's saliency.
Measured here against baselines at the same feature-space norm:

- removal: distance of the painted region's mean colour to the image's border colour,
  before and after, for the background appearance, a random direction, and the channel-wise
  direction (mean border fibre − mean fibre in the part);
- saliency: AUC of each image's map for that image's background, defined without the fit
  (pixels within an RGB distance of 0.1 of the border colour,
  `background_masks`), against the AUC of the maps'
  average (one fixed pattern for every image) and of the distance from the image centre.
"""

from __future__ import annotations

import numpy as np
import torch

import tensorpanda as tp

from . import eval_measures as em
from .demo import LANDMARKS, appearance_for, border_region, part_near
from .eval_masked import part_paint, unit
from .eval_protocol import features

REMOVAL_STRENGTH = 2.0  # the demo's, in units of a channel fibre's mean norm


def removal_and_saliency(gan, layer: str, fit, run, batch_size: int = 250) -> dict:
    """The removal and saliency measures of one seed's ``run`` (a SeedRun)."""
    evaluation, probe, scale = run.evaluation, run.probe, run.scale
    images = gan.generate(evaluation, batch_size=batch_size).cpu().numpy()
    size = images.shape[2:]
    k = part_near(fit, LANDMARKS["eyes"])
    part = part_paint(fit, k).mean_map
    mask = np.asarray(tp.part_mask(fit, k, size=size))
    border = border_region(fit.spatial_shape, width=2)
    background, sign = appearance_for(fit, probe, border)
    A = np.asarray(fit.to_numpy().A)
    fibres = np.moveaxis(probe, 1, -1)
    inside = part >= 0.5
    rng = np.random.default_rng(1234)
    directions = {
        "background appearance (demo)": sign * unit(A[:, background]),
        "random direction": unit(rng.standard_normal(A.shape[0])),
        "mean border fibre − mean part fibre": unit(fibres[:, border].mean(axis=(0, 1))
                                                    - fibres[:, inside].mean(axis=(0, 1))),
    }
    reference = em.border_colour(images)
    out = {"removal: before": em.border_distance(images, mask, reference)}
    for name, d in directions.items():
        delta = torch.as_tensor(REMOVAL_STRENGTH * scale * d[:, None, None] * part[None],
                                dtype=torch.float32)
        edited = gan.generate(evaluation, layer, edit=delta, batch_size=batch_size)
        out[f"removal: {name}"] = em.border_distance(edited.cpu().numpy(), mask, reference)
    Z = features(gan, layer, evaluation, batch_size)
    maps = np.asarray(tp.saliency(fit, sign * Z, background, size=tuple(size)))
    masks = em.background_masks(images)
    average = maps.mean(axis=0)
    rows, cols = np.indices(size)
    centre = np.hypot(rows - (size[0] - 1) / 2, cols - (size[1] - 1) / 2)
    out["saliency AUC: each image's own map"] = em.background_auc(maps, masks)
    out["saliency AUC: the maps' average (one fixed map)"] = em.background_auc(
        np.broadcast_to(average, maps.shape), masks)
    out["saliency AUC: distance from the centre"] = em.background_auc(
        np.broadcast_to(centre, maps.shape), masks)
    out["saliency: correlation of a map with the average"] = float(np.mean(
        [np.corrcoef(m.ravel(), average.ravel())[0, 1] for m in maps]))
    out["background share of the image (independent mask)"] = float(masks.mean())
    return out

"""What an edit does, beyond where: measures on images before and after an edit.

- `uniform_share`: the share of the change inside a region that is one colour added
  to the whole region (a tint or a brightness shift), against structure.
- `consistency`: how alike the structural change is from sample to sample.
- `matched_congruence`: how alike two fits' parts are (stability across seeds).
- `border_distance` and `background_auc`: does a "removal" move the region's
  colour toward the background, does a "background" saliency map find each image's
  background?
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import rankdata


def _inside(original, edited, region: np.ndarray) -> np.ndarray:
    """The change inside the region, (N, 3, |region|)."""
    diff = np.asarray(edited, dtype=np.float64) - np.asarray(original, dtype=np.float64)
    return diff[:, :, np.asarray(region, dtype=bool)]


def uniform_share(original, edited, region: np.ndarray) -> float:
    """Σ_i ‖c_i 1ᵀ‖² / Σ_i ‖D_i‖² with D_i the change inside the region (3 × pixels) and c_i its
    mean colour: 1 for a pure tint or brightness shift, 0 for a change with no net colour.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((2, 3, 4, 4)); M = np.ones((4, 4), bool)
    >>> round(uniform_share(X, X + 0.1, M), 6)
    1.0
    """
    D = _inside(original, edited, region)
    total = float((D**2).sum())
    if total == 0:
        return float("nan")
    return float((D.mean(axis=2) ** 2).sum() * D.shape[2] / total)


def consistency(original, edited, region: np.ndarray) -> float:
    """Mean over samples of cos(S_i, mean of the other S_j), S_i the change inside the region
    minus its mean colour (the structure): near 1 when the edit changes every sample the
    same way, near 0 when the changes are unrelated.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((3, 3, 4, 4)); M = np.ones((4, 4), bool)
    >>> pattern = np.arange(16.0).reshape(4, 4)
    >>> round(consistency(X, X + pattern, M), 6)
    1.0
    """
    D = _inside(original, edited, region)
    S = (D - D.mean(axis=2, keepdims=True)).reshape(len(D), -1)
    if len(S) < 2:
        raise ValueError("consistency needs at least 2 samples")
    others = (S.sum(axis=0)[None] - S) / (len(S) - 1)
    num = (S * others).sum(axis=1)
    den = np.linalg.norm(S, axis=1) * np.linalg.norm(others, axis=1)
    return float(np.mean(np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)))


def rms_change(original, edited) -> float:
    """Mean over samples of the RMS pixel change over the whole image."""
    diff = np.asarray(edited, dtype=np.float64) - np.asarray(original, dtype=np.float64)
    return float(np.sqrt((diff**2).reshape(len(diff), -1).mean(axis=1)).mean())


def matched_congruence(P: np.ndarray, Q: np.ndarray) -> float:
    """Tucker's congruence of the columns of P and Q (S × R), matched one to one to maximise
    the mean |cos| (Hungarian), then averaged: 1 when the columns agree up to order and scale.

    Examples
    --------
    >>> import numpy as np
    >>> P = np.random.default_rng(0).random((16, 3))
    >>> matched_congruence(P, 2 * P[:, ::-1])
    1.0
    """
    P, Q = np.asarray(P, dtype=np.float64), np.asarray(Q, dtype=np.float64)
    if P.shape != Q.shape:
        raise ValueError(f"P and Q must have the same shape, got {P.shape} and {Q.shape}")
    Pn = P / np.maximum(np.linalg.norm(P, axis=0), 1e-30)
    Qn = Q / np.maximum(np.linalg.norm(Q, axis=0), 1e-30)
    C = np.abs(Pn.T @ Qn)
    rows, cols = linear_sum_assignment(-C)
    return float(round(C[rows, cols].mean(), 12))


def border_colour(images, width: int = 4) -> np.ndarray:
    """Each image's mean colour over its outer ``width`` pixels, (N, 3)."""
    X = np.asarray(images, dtype=np.float64)
    mask = np.ones(X.shape[2:], dtype=bool)
    mask[width:-width, width:-width] = False
    return X[:, :, mask].mean(axis=2)


def border_distance(images, region: np.ndarray, reference: np.ndarray) -> float:
    """Mean over samples of ‖mean colour in the region − reference colour‖ (RGB, [0, 1])."""
    X = np.asarray(images, dtype=np.float64)[:, :, np.asarray(region, dtype=bool)]
    return float(np.linalg.norm(X.mean(axis=2) - reference, axis=1).mean())


def background_masks(images, tolerance: float = 0.1, width: int = 4) -> np.ndarray:
    """Pixels whose colour lies within ``tolerance`` (RGB distance) of the image's border
    colour: a background defined without any fit, (N, H, W)."""
    X = np.asarray(images, dtype=np.float64)
    ref = border_colour(X, width)[:, :, None, None]
    return np.linalg.norm(X - ref, axis=1) <= tolerance


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the boolean labels ``positive`` (ties
    count half); nan when one class is empty.

    Examples
    --------
    >>> import numpy as np
    >>> auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True]))
    0.75
    """
    s, y = np.ravel(scores), np.ravel(positive).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def background_auc(maps: np.ndarray, masks: np.ndarray) -> float:
    """Mean over samples of the AUC of each map for its own mask (nan samples skipped)."""
    return float(np.nanmean([auc(m, k) for m, k in zip(maps, masks, strict=True)]))

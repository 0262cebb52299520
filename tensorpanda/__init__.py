"""tensorpanda: parts and appearances by semi-nonnegative Tucker-2 (PandA).

>>> import numpy as np, tensorpanda as tp
>>> Z = np.random.default_rng(0).standard_normal((200, 16, 8, 8))   # (N, C, H, W)
>>> fit = tp.tucker2(Z, rank=(None, 4), random_state=0)              # R_C = C, R_S = 4
>>> fit.parts.shape                                                  # 4 non-negative parts
(4, 8, 8)
"""

from .baselines import LatentDirections, ganspace, pca, sefa
from .editing import apply, edit_direction, feature_scale, part_map, part_mask, sweep
from .estimator import Tucker2
from .exceptions import ConvergenceWarning, DivergenceError
from .fitting import tucker2
from .io import load, save
from .metrics import reconstruction_error, roir, summarize
from .refine import refine
from .result import Factorization
from .saliency import region_scores, saliency, upsample

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "DivergenceError",
    "Factorization",
    "LatentDirections",
    "Tucker2",
    "apply",
    "edit_direction",
    "feature_scale",
    "ganspace",
    "load",
    "part_map",
    "part_mask",
    "pca",
    "reconstruction_error",
    "refine",
    "region_scores",
    "roir",
    "saliency",
    "save",
    "sefa",
    "summarize",
    "sweep",
    "tucker2",
    "upsample",
]

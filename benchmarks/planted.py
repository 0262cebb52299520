"""Planted PandA data with known factors, shared by the benchmarks and the tests.

Z_i = s (A G_i Pᵀ + σ E_i), where P (S×K) has disjoint non-negative unit columns (each of the
S positions belongs to one part; its value is uniform in [0.5, 1.5] before normalising), A
(C×R_C, R_C ≤ C) has orthonormal columns, the cores G_i (R_C×K) are standard normal with
column k scaled by ``core_scales[k]``, E_i is standard normal noise, and s is 1/√C with
``normalize`` (the signal's energy per sample then does not grow with C when R_C = C), else 1.
"""

from __future__ import annotations

import numpy as np

LAYOUTS = ("columns", "rows", "blocks")


class Planted:
    """A planted model: its factors ``A`` and ``P``, and samples drawn at once or by batches.

    ``seed`` is an int, or a numpy ``RandomState``/``Generator`` to draw from. The factors
    are drawn first from that stream; `sample` continues it. `batch` draws each
    batch from a stream of its own, seeded with ``(seed, start)`` (so it needs an int seed),
    which lets a stream of any length be generated piece by piece, in any order.
    ``layout`` cuts the H×W grid into K runs of ⌈S/K⌉ positions read column by column
    (``"columns"``: vertical stripes) or row by row (``"rows"``: horizontal bands), or into
    K irregular blocks (``"blocks"``: the cells of K random sites, each position joining its
    nearest site, ties broken at random). ``positive_cores`` draws |G_i| instead of G_i:
    every part present with one sign, as in post-ReLU features, which mixes the parts in the
    spatial Gram's eigenvectors.
    """

    def __init__(
        self,
        channels: int,
        spatial: tuple[int, int],
        n_parts: int,
        n_appearances: int | None = None,
        *,
        layout: str = "columns",
        core_scales=None,
        noise: float = 0.1,
        normalize: bool = False,
        positive_cores: bool = False,
        seed: int | np.random.RandomState | np.random.Generator = 0,
        dtype="float64",
    ):
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        n_appearances = channels if n_appearances is None else n_appearances
        if not 1 <= n_appearances <= channels:
            raise ValueError(f"n_appearances must be in [1, {channels}], got {n_appearances}")
        self.channels, self.spatial, self.n_parts = channels, tuple(spatial), n_parts
        self.n_appearances, self.layout, self.noise = n_appearances, layout, noise
        self.normalize, self.seed, self.dtype = normalize, seed, np.dtype(dtype)
        self.positive_cores = positive_cores
        self.core_scales = None if core_scales is None else np.asarray(core_scales, self.dtype)
        given = isinstance(seed, np.random.RandomState | np.random.Generator)
        self._rng = seed if given else np.random.default_rng(seed)
        self._pool = None
        labels = self._blocks() if layout == "blocks" else self.labels()
        S = labels.size
        # one draw of S values, given out part by part (each part's positions in order)
        order = np.argsort(labels, kind="stable")
        P = np.zeros((S, n_parts), self.dtype)
        P[order, labels[order]] = self._rng.uniform(0.5, 1.5, S)
        self.P = P / np.linalg.norm(P, axis=0)
        self.A = np.linalg.qr(self._rng.standard_normal((channels, n_appearances)))[0].astype(
            self.dtype
        )

    def labels(self) -> np.ndarray:
        """The part of each of the S positions (row-major), shape (S,)."""
        if self.layout == "blocks":
            return self._labels.copy()
        H, W = self.spatial
        S, K = H * W, self.n_parts
        run = -(-S // max(K, 1))  # ⌈S/K⌉
        if K < 1 or (K - 1) * run >= S:
            raise ValueError(f"cannot cut {S} positions into {K} non-empty runs of {run}")
        labels = np.repeat(np.arange(K), run)[:S]
        if self.layout == "columns":
            labels = labels.reshape(W, H).T.reshape(-1)
        return labels

    def _blocks(self) -> np.ndarray:
        """Labels of K irregular blocks: the nearest of K distinct random sites (drawn from
        the model's stream), with a random jitter below one cell to break ties."""
        H, W = self.spatial
        K = self.n_parts
        if not 1 <= K <= H * W:
            raise ValueError(f"cannot cut {H * W} positions into {K} non-empty blocks")
        sites = self._rng.choice(H * W, K, replace=False)
        rows, cols = np.divmod(np.arange(H * W), W)
        site_rows, site_cols = np.divmod(sites, W)
        distance = (rows[:, None] - site_rows) ** 2 + (cols[:, None] - site_cols) ** 2
        distance = distance + self._rng.uniform(0, 0.5, distance.shape)
        labels = np.argmin(distance, axis=1)  # each site is nearest to itself: no empty block
        self._labels = labels
        return labels

    def sample(self, n: int) -> np.ndarray:
        """The next ``n`` samples of the generator's own stream, in one draw: (n, C, S)."""
        return self._draw(self._rng, n)

    def batch(self, start: int, size: int, fresh_noise: bool = True) -> np.ndarray:
        """Samples start .. start+size-1, (size, C, S), from the batch's own stream.

        With ``fresh_noise=False`` every batch of one size gets the same noise from a fixed
        pool (fast, for long streams whose values do not matter, such as a memory benchmark).
        """
        if not isinstance(self.seed, int | np.integer):
            raise TypeError("batch-by-batch generation needs an int seed")
        rng = np.random.default_rng([self.seed, start])
        return self._draw(rng, size, None if fresh_noise else self._noise_pool(size))

    def array(self, n: int, batch: int) -> np.ndarray:
        """The first ``n`` samples, (n, C, S), generated ``batch`` samples at a time."""
        out = np.empty((n, self.channels, self.P.shape[0]), self.dtype)
        for start in range(0, n, batch):
            out[start : start + batch] = self.batch(start, min(batch, n - start))
        return out

    def _draw(self, rng, n: int, noise=None) -> np.ndarray:
        """n samples whose cores (then noise, unless given) are drawn from ``rng``.

        The signal takes two GEMMs for the whole batch, not 2n small ones: A times the
        cores side by side (R_C × n·K), then the stacked A G_i (n·C × K) times Pᵀ."""
        C, R_C, K = self.channels, self.n_appearances, self.n_parts
        G = self._normal(rng, (n, R_C, K))
        if self.positive_cores:
            G = np.abs(G)
        if self.core_scales is not None:
            G = G * self.core_scales
        AG = self.A @ G.transpose(1, 0, 2).reshape(R_C, n * K)  # [A G_1, ..., A G_n]
        AG = AG.reshape(C, n, K).transpose(1, 0, 2).reshape(n * C, K)  # stacked A G_i
        Z = (AG @ self.P.T).reshape(n, C, -1)
        if noise is None:
            noise = self.noise * self._normal(rng, Z.shape)
        Z += noise
        if self.normalize:
            Z /= self.dtype.type(np.sqrt(self.channels))  # a scalar of the dtype keeps it
        return Z

    def _normal(self, rng, shape) -> np.ndarray:
        """Standard normal draws in the generator's dtype (RandomState draws float64 only)."""
        if isinstance(rng, np.random.Generator):
            return rng.standard_normal(shape, dtype=self.dtype)
        return rng.standard_normal(shape).astype(self.dtype, copy=False)

    def _noise_pool(self, size: int) -> np.ndarray:
        """σ E for ``size`` samples from a stream no batch uses: the first ``size`` of a
        pool drawn once for the largest size asked (a stream of batches ending in a short
        one then draws it once, not twice per pass; the draws fill the pool in order, so
        its head is what a draw of ``size`` samples gives)."""
        if self._pool is None or len(self._pool) < size:
            rng = np.random.default_rng([self.seed, 2**31])
            shape = (size, self.channels, self.P.shape[0])
            self._pool = self.noise * self._normal(rng, shape)
        return self._pool[:size]

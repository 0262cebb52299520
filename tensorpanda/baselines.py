"""Baselines that edit through the latent space: SeFa and GANSpace.

Both return *latent directions* u (unit vectors of the latent space); an edit moves a latent
code z to z + α u and runs the whole generator again. They need no generator code here:
SeFa reads a weight matrix, GANSpace reads sampled latents and activations. An adapter
supplies both (``adapter.latent_projection()``, ``adapter.features(...)``).

- SeFa (Shen & Zhou, CVPR 2021): the first operation on z is y = W z. The directions that
  change y most are the top eigenvectors of Wᵀ W, after each output unit's weights are
  normalised to unit norm (as the SeFa code does).
- GANSpace (Härkönen et al., NeurIPS 2020): principal components of sampled activations at
  an early layer; since the generator is not linear from z to that layer in general, each
  component is mapped back to z by least squares (the paper's recipe for BigGAN), z ≈ U x,
  with x the activations' coordinates on the components.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorly as tl

from . import _backend as B
from .data import backend_context, solver_dtype_name
from .init import top_eigenvectors


@dataclass
class LatentDirections:
    """Unit latent directions ``U`` (k × latent_dim), sorted from most to least important,
    with the score that sorted them (eigenvalues or explained variances).

    An edit moves a latent code z to z + α ``U[i]``; [`sefa`][tensorpanda.sefa] and
    [`ganspace`][tensorpanda.ganspace] make these.

    Attributes
    ----------
    U : backend tensor of shape (k, latent_dim)
        The directions, one unit-norm row each, on the active backend.
    scores : numpy array of shape (k,)
        Decreasing: the eigenvalues of the normalised Wᵀ W for SeFa, the variances of the
        activations along the principal components for GANSpace.
    method : str
        ``"sefa"`` or ``"ganspace"``.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> d = tp.sefa(np.random.default_rng(0).standard_normal((20, 5)), 2)
    >>> d.method, d.U.shape, d.scores.shape
    ('sefa', (2, 5), (2,))
    >>> np.round(np.linalg.norm(d.U, axis=1), 6)
    array([1., 1.])
    """

    U: object
    scores: np.ndarray
    method: str


def sefa(weight, n_directions: int | None = None) -> LatentDirections:
    """SeFa's closed-form directions from the weight W (out_features × latent_dim) of the
    first operation acting on the latent.

    Each row of W (one output unit) is normalised to unit norm; the directions are the
    eigenvectors of Wᵀ W from a symmetric eigensolver, sorted by decreasing eigenvalue.

    Parameters
    ----------
    weight : array of shape (out_features, latent_dim)
        The weight matrix, on any backend (e.g. ``adapter.latent_projection()``). Rows of
        zeros are left as they are.
    n_directions : int, optional
        How many directions to keep, in 1..latent_dim; all ``latent_dim`` by default.

    Returns
    -------
    LatentDirections
        ``U`` (n_directions × latent_dim) with orthonormal rows, ``scores`` the matching
        eigenvalues of the normalised Wᵀ W, ``method="sefa"``.

    Raises
    ------
    ValueError
        If ``weight`` is not a matrix or ``n_directions`` is not an integer in
        1..latent_dim.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> W = np.random.default_rng(0).standard_normal((50, 8))
    >>> d = tp.sefa(W, 3)
    >>> d.U.shape, bool(np.all(np.diff(d.scores) <= 0))
    ((3, 8), True)
    >>> every = tp.sefa(W)  # the 50 unit rows give Wᵀ W a trace of 50
    >>> round(float(every.scores.sum()), 6), bool(np.allclose(every.U @ every.U.T, np.eye(8)))
    (50.0, True)
    """
    W = _as_float(weight)
    if tl.ndim(W) != 2:
        raise ValueError(f"weight must be a matrix (out_features × latent_dim), got {tl.shape(W)}")
    latent_dim = tl.shape(W)[1]
    k = _count(n_directions, latent_dim)
    norms = tl.sqrt(tl.sum(W * W, axis=1))
    W = W / tl.reshape(tl.where(norms > 0, norms, tl.ones(tl.shape(norms), **B.context_of(W))),
                       (-1, 1))
    values, vectors = B.top_eigh(tl.dot(tl.transpose(W), W), k)
    return LatentDirections(U=tl.transpose(vectors), scores=tl.to_numpy(values), method="sefa")


@dataclass
class PCA:
    """Principal components (k × D, orthonormal rows), the mean, and explained variances;
    see [`pca`][tensorpanda.pca].

    Attributes
    ----------
    components : backend tensor of shape (k, D)
        The principal directions, orthonormal rows, by decreasing variance.
    mean : backend tensor of shape (D,)
        The mean of the (flattened) activations, subtracted before projecting.
    variances : numpy array of shape (k,)
        The variance of the activations along each component (denominator N − 1),
        decreasing.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> Y = np.random.default_rng(0).standard_normal((40, 6))
    >>> p = tp.pca(Y, 2)
    >>> type(p).__name__, p.components.shape, p.mean.shape, p.variances.shape
    ('PCA', (2, 6), (6,), (2,))
    >>> coordinates = (Y - p.mean) @ p.components.T  # N × k
    >>> bool(np.allclose(coordinates.var(axis=0, ddof=1), p.variances))
    True
    """

    components: object
    mean: object
    variances: np.ndarray


class _CenteredGram:
    """X ↦ Yᵀ (Y X) for centred data Y (N × D), without forming the D × D covariance."""

    def __init__(self, Y):
        self.Y = Y

    def products(self, X):
        """(K X, K X) with K = Yᵀ Y: the pair the operators of the fit return, shared."""
        KX = tl.dot(tl.transpose(self.Y), tl.dot(self.Y, X))
        return KX, KX


def pca(activations, n_components: int, random_state=0) -> PCA:
    """Top principal components of activations (N × D, or N × ... flattened).

    Uses a randomized subspace iteration on Yᵀ Y, so the D × D covariance is never formed
    (GANSpace's early layers have thousands of dimensions).

    Parameters
    ----------
    activations : array of shape (N, D) or (N, ...)
        Samples on the first axis, on any backend; further axes are flattened into D.
    n_components : int
        How many components to keep, in 1..min(N, D).
    random_state : None, int or numpy.random.RandomState, default 0
        Seed of the random start of the subspace iteration.

    Returns
    -------
    PCA
        The components (n_components × D), the mean (D,) and the variances along the
        components (N − 1 in the denominator), sorted by decreasing variance.

    Raises
    ------
    ValueError
        If ``n_components`` is not an integer in 1..min(N, D).
    TypeError
        If ``random_state`` is neither None, an int nor a RandomState.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> Y = np.random.default_rng(0).standard_normal((100, 12)) * np.arange(1, 13)
    >>> p = tp.pca(Y, 3)
    >>> p.components.shape, bool(np.all(np.diff(p.variances) <= 0))
    ((3, 12), True)
    >>> exact = np.linalg.eigvalsh(np.cov(Y.T))[::-1][:3]  # the covariance's top eigenvalues
    >>> bool(np.allclose(p.variances, exact))
    True
    """
    Y = _as_float(activations)
    N = tl.shape(Y)[0]
    Y = tl.reshape(Y, (N, -1))
    D = tl.shape(Y)[1]
    k = _count(n_components, min(N, D))
    mean = tl.mean(Y, axis=0)
    Yc = Y - mean
    rng = B.random_state(random_state)
    V = top_eigenvectors(_CenteredGram(Yc), D, k, rng, B.context_of(Yc), power_iterations=4)
    variances = tl.to_numpy(tl.sum(tl.dot(Yc, V) ** 2, axis=0)) / max(N - 1, 1)
    order = np.argsort(-variances)
    V = tl.stack([V[:, int(i)] for i in order], axis=1)
    return PCA(components=tl.transpose(V), mean=mean, variances=variances[order])


def ganspace(latents, activations, n_directions: int, random_state=0) -> LatentDirections:
    """GANSpace directions: PCA of ``activations`` (N × D) at an early layer, each component
    mapped back to the latent space by least squares on the sampled ``latents`` (N × d).

    With X (N × k) the activations' coordinates on the components, U (k × d) solves
    min_U ‖Z − X U‖_F (Z the latents, centred); its rows, normalised, are the directions.

    Parameters
    ----------
    latents : array of shape (N, d) or (N, ...)
        The sampled latent codes, on any backend; further axes are flattened into d.
    activations : array of shape (N, D) or (N, ...)
        The generator's activations for those codes at an early layer, one row per code.
    n_directions : int
        How many principal components (hence directions) to keep, in 1..min(N, D).
    random_state : None, int or numpy.random.RandomState, default 0
        Seed of the randomized PCA (see [`pca`][tensorpanda.pca]).

    Returns
    -------
    LatentDirections
        ``U`` (n_directions × d) with unit rows, ``scores`` the activations' variances
        along the components, ``method="ganspace"``.

    Raises
    ------
    ValueError
        If ``latents`` and ``activations`` differ in number of samples, or
        ``n_directions`` is not an integer in 1..min(N, D).

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((200, 6)); y = np.tanh(z @ rng.standard_normal((6, 30)))
    >>> d = tp.ganspace(z, y, 3)
    >>> d.method, d.U.shape, np.round(np.linalg.norm(d.U, axis=1), 6)
    ('ganspace', (3, 6), array([1., 1., 1.]))
    """
    Z = _as_float(latents)
    N = tl.shape(Z)[0]
    Z = tl.reshape(Z, (N, -1))
    if int(activations.shape[0]) != N:  # any array type; no copy to the host
        raise ValueError(
            f"latents and activations must have the same number of samples, got {N} latents "
            f"and {int(activations.shape[0])} activations"
        )
    components = pca(activations, n_directions, random_state)
    Y = tl.reshape(B.to_backend(activations, B.context_of(Z)), (N, -1))
    X = tl.dot(Y - components.mean, tl.transpose(components.components))  # N × k
    Zc = Z - tl.mean(Z, axis=0)
    U = tl.lstsq(X, Zc)[0]  # k × d: row i is how z moves per unit of component i
    norms = tl.sqrt(tl.sum(U * U, axis=1))
    if B.scalar(tl.min(norms)) == 0:  # a component the latents do not move at all
        raise ValueError(
            "a principal component has no least-squares latent direction (the latents do not "
            "vary with it): use more samples than components, or fewer directions"
        )
    U = U / tl.reshape(norms, (-1, 1))
    return LatentDirections(U=U, scores=components.variances, method="ganspace")


def _as_float(x):
    """``x`` on the active backend, in float64 if it is float64 and float32 otherwise."""
    return B.to_backend(x, backend_context(x, solver_dtype_name(x)))


def _count(k, bound: int) -> int:
    """The number of directions ``k`` (all ``bound`` for None), checked to lie in 1..bound."""
    if k is None:
        return bound
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 < k <= bound:
        raise ValueError(f"the number of directions must be an integer in 1..{bound}, got {k!r}")
    return int(k)

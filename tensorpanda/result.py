"""The outcome of a fit: factors, the model they belong to, the objective history, and info."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorly as tl

from . import _backend as B
from . import _format
from .data import as_source, check_finite

MODELS = ("panda", "tucker")


def _all_finite(x) -> bool:
    """Whether a backend tensor holds only finite values.

    One reduction and one host read in the usual case; a sum that overflows although every
    entry is finite is checked again entry by entry.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        if np.isfinite(B.scalar(tl.sum(x))):
            return True
    return bool(np.isfinite(tl.to_numpy(x)).all())


def _first_nonfinite(x) -> int:
    """The index of the first sample (along the first axis) holding NaN or inf."""
    host = tl.to_numpy(x)
    bad = ~np.isfinite(host.reshape(host.shape[0], -1))
    return int(np.argwhere(bad.any(axis=1))[0, 0])


def _kinds(host: np.ndarray) -> str:
    """"NaN", "inf" or "NaN and inf": what non-finite values ``host`` holds."""
    kinds = [name for name, test in (("NaN", np.isnan), ("inf", np.isinf)) if test(host).any()]
    return " and ".join(kinds)


@dataclass
class Factorization:
    """Appearances ``A`` (C×R_C) and non-negative parts ``P`` (S×R_S) of a data set.

    For ``model="panda"`` (PandA's tied core) each sample is approximated by
    ``Z_i ≈ A (Aᵀ Z_i P) Pᵀ``; for ``model="tucker"`` (free least-squares cores) by
    ``Z_i ≈ A G_i Pᵀ`` with ``G_i = A⁺ Z_i (P⁺)ᵀ``.

    Usually made by [`tucker2`][tensorpanda.tucker2], [`Tucker2`][tensorpanda.Tucker2] or
    [`load`][tensorpanda.load] rather than by hand.

    Attributes
    ----------
    A, P : backend tensors
        The factors, on the backend, dtype and device of the fit: ``A`` of shape (C, R_C)
        (appearances, one per column), ``P`` of shape (S, R_S) with S = H·W (parts, one per
        column, P ≥ 0).
    model : {"panda", "tucker"}
        The model the factors were fitted for (default "panda"); it sets how
        [`transform`][tensorpanda.Factorization.transform] computes the cores.
    appearances : {"orthonormal", "free", "nonnegative"}
        The constraint the fit put on A (default "orthonormal").
    spatial_shape : tuple of int
        (H, W) of the feature maps (or (S,) for data given as (N, C, S)).
    history : list of float
        The objective Σ_i ‖Z_i − Ẑ_i‖²_F after each iteration.
    info : dict
        ``n_iter``, ``objective``, ``converged``, ``solver``, ``n_samples``, ``sq_norm``
        (Σ‖Z_i‖²), ``n_passes`` (reads of the data), ``time`` (seconds) and solver details.

    Examples
    --------
    >>> import numpy as np, tensorpanda as tp
    >>> Z = np.random.default_rng(0).random((50, 6, 4, 4))
    >>> fit = tp.tucker2(Z, rank=(6, 3), tol=1e-4, random_state=0)
    >>> fit.A.shape, fit.P.shape, fit.parts.shape
    ((6, 6), (16, 3), (3, 4, 4))
    >>> fit.rank, fit.model, bool(0 < fit.relative_error < 1)
    ((6, 3), 'panda', True)
    """

    A: object
    P: object
    model: str = "panda"
    appearances: str = "orthonormal"
    spatial_shape: tuple = ()
    history: list = field(default_factory=list)
    info: dict = field(default_factory=dict)

    # -- shapes ------------------------------------------------------------------------------
    @property
    def rank(self) -> tuple[int, int]:
        """(R_C, R_S)."""
        return tl.shape(self.A)[1], tl.shape(self.P)[1]

    @property
    def n_channels(self) -> int:
        """C, the number of channels of the feature maps (rows of A)."""
        return tl.shape(self.A)[0]

    @property
    def n_positions(self) -> int:
        """S, the number of spatial positions of the feature maps (rows of P)."""
        return tl.shape(self.P)[0]

    @property
    def parts(self):
        """The parts as maps, shape (R_S, *spatial_shape)."""
        return tl.reshape(tl.transpose(self.P), (self.rank[1], *self.spatial_shape))

    @property
    def objective(self) -> float:
        """The final objective Σ_i ‖Z_i − Ẑ_i‖²_F, plus λ tr(Pᵀ L P) with a smoothness
        prior (``info["objective"]``, the quantity the fit lowers; NaN if absent)."""
        return float(self.info.get("objective", np.nan))

    @property
    def data_objective(self) -> float:
        """Σ_i ‖Z_i − Ẑ_i‖²_F alone: the objective without a smoothness prior's penalty."""
        return float(self.info.get("data_objective", self.objective))

    @property
    def relative_error(self) -> float:
        """‖Z − Ẑ‖_F / ‖Z‖_F over the fitted data (without a smoothness prior's penalty)."""
        sq_norm = self.info.get("sq_norm", np.nan)
        return float(np.sqrt(max(self.data_objective, 0.0) / sq_norm)) if sq_norm else np.nan

    def __repr__(self) -> str:
        """One line: shapes, model, solver, objective and convergence, never the arrays.

        >>> import numpy as np, tensorpanda as tp
        >>> fit = tp.tucker2(np.random.default_rng(0).random((30, 5, 3, 3)), rank=(4, 2))
        >>> repr(fit).startswith("Factorization(A: 5×4, P: 9×2 (parts 2×3×3), model='panda'")
        True
        """
        (C, R_C), (S, R_S) = tl.shape(self.A), tl.shape(self.P)
        fields = [f"A: {C}×{R_C}",
                  f"P: {S}×{R_S} (parts {'×'.join(map(str, (R_S, *self.spatial_shape)))})",
                  f"model={self.model!r}", f"appearances={self.appearances!r}"]
        info = self.info
        if "solver" in info:
            fields.append(f"solver={info['solver']!r}")
        if "objective" in info:
            fields.append(f"objective={self.objective:.4g}")
            fields.append(f"relative_error={self.relative_error:.4g}")
        fields += [f"{k}={info[k]!r}" for k in ("n_iter", "converged") if k in info]
        return f"Factorization({', '.join(fields)})"

    # -- cores -------------------------------------------------------------------------------
    def _projections(self):
        """(left, right) with core G_i = left Z_i right."""
        if self.model == "panda":
            return tl.transpose(self.A), self.P
        P_pinv = B.psd_pinv(tl.dot(tl.transpose(self.P), self.P))
        right = tl.dot(self.P, P_pinv)
        if self.appearances == "orthonormal":
            return tl.transpose(self.A), right
        A_pinv = B.psd_pinv(tl.dot(tl.transpose(self.A), self.A))
        return tl.dot(A_pinv, tl.transpose(self.A)), right

    def transform(self, data, batch_size: int | None = None):
        """Cores G_i of each sample, shape (N, R_C, R_S): Aᵀ Z_i P for the tied model,
        A⁺ Z_i (P⁺)ᵀ for the free one.

        Parameters
        ----------
        data : array (N, C, S) or (N, C, H, W), or any source `tucker2` accepts
            The samples; C and S = H·W must match the fitted factors. Moved to the
            backend, dtype and device of ``A``.
        batch_size : int, optional
            Samples per batch when ``data`` is an array (default: about 128 MiB per
            batch). Ignored for other sources.

        Returns
        -------
        tensor of shape (N, R_C, R_S)
            One core per sample, in the order of ``data``.

        Raises
        ------
        ValueError
            If the data's channels or positions do not match the factors,
            ``batch_size`` is not a positive integer, or a sample holds NaN or inf (the
            message names the first such sample) or its cores overflow.
        TypeError
            If ``data`` is not an array, a callable or an iterable of batches.

        Examples
        --------
        >>> import numpy as np, tensorpanda as tp
        >>> Z = np.random.default_rng(0).random((30, 5, 3, 3))
        >>> fit = tp.tucker2(Z, rank=(4, 2), random_state=0)
        >>> fit.transform(Z).shape
        (30, 4, 2)
        """
        self._check_factors()
        left, right = self._projections()
        cores = []
        for batch in as_source(data, batch_size):
            self._check_layout(batch.Z)
            check_finite(batch, "computing the cores")  # names the first sample with NaN/inf
            # overflow is reported below, as an error rather than numpy's warnings
            with np.errstate(invalid="ignore", over="ignore"):
                Z = B.to_backend(batch.Z, B.context_of(self.A))
                G = tl.matmul(tl.matmul(left, Z), right)
                finite = _all_finite(G)
            if not finite:
                raise ValueError(
                    f"the cores of sample {batch.start + _first_nonfinite(G)} overflow "
                    f"{tl.to_numpy(G).dtype} (the data may not fit in the factors' dtype): "
                    "rescale the data"
                )
            cores.append(G)
        return tl.concatenate(cores, axis=0)

    def _check_factors(self) -> None:
        """Refuse factors holding NaN or inf (built by hand or edited): every map would be NaN."""
        for name, X in (("A", self.A), ("P", self.P)):
            if not _all_finite(X):
                raise ValueError(
                    f"the factors are not finite: {name} contains {_kinds(tl.to_numpy(X))}; "
                    "refit or reload them"
                )

    def inverse_transform(self, cores):
        """Feature maps A G_i Pᵀ from cores (N, R_C, R_S), shape (N, C, *spatial_shape).

        Parameters
        ----------
        cores : tensor of shape (N, R_C, R_S)
            Cores G_i, e.g. from [`transform`][tensorpanda.Factorization.transform] (possibly
            edited); moved to the backend of ``A``.

        Returns
        -------
        tensor of shape (N, C, *spatial_shape)
            The feature maps A G_i Pᵀ, on the backend of ``A``.

        Raises
        ------
        ValueError
            If ``cores`` is not 3-D with trailing shape ``rank``, or holds NaN or inf (the
            message names the first such sample), or the maps overflow.

        Examples
        --------
        >>> import numpy as np, tensorpanda as tp
        >>> Z = np.random.default_rng(0).random((30, 5, 3, 3))
        >>> fit = tp.tucker2(Z, rank=(4, 2), random_state=0)
        >>> fit.inverse_transform(fit.transform(Z)).shape
        (30, 5, 3, 3)
        """
        G = B.to_backend(cores, B.context_of(self.A))
        if tl.ndim(G) != 3 or tuple(tl.shape(G)[1:]) != self.rank:
            raise ValueError(
                f"cores must have shape (N, {self.rank[0]}, {self.rank[1]}), "
                f"got {tuple(tl.shape(G))}"
            )
        self._check_factors()
        if not _all_finite(G):
            i = _first_nonfinite(G)
            raise ValueError(
                f"the cores of sample {i} contain {_kinds(tl.to_numpy(G)[i])}: pass finite cores "
                "(an edit strength of NaN or inf gives such cores)"
            )
        with np.errstate(invalid="ignore", over="ignore"):
            Z = tl.matmul(tl.matmul(self.A, G), tl.transpose(self.P))
            finite = _all_finite(Z)
        if not finite:
            raise ValueError(
                f"the feature maps of sample {_first_nonfinite(Z)} overflow "
                f"{tl.to_numpy(Z).dtype}: the cores are too large (rescale them)"
            )
        return tl.reshape(Z, (tl.shape(G)[0], self.n_channels, *self.spatial_shape))

    def reconstruct(self, data, batch_size: int | None = None):
        """Ẑ_i for each sample: ``inverse_transform(transform(data))``.

        Parameters
        ----------
        data : array (N, C, S) or (N, C, H, W), or any source `tucker2` accepts
            The samples; C and S must match the fitted factors.
        batch_size : int, optional
            Samples per batch when ``data`` is an array (see
            [`transform`][tensorpanda.Factorization.transform]).

        Returns
        -------
        tensor of shape (N, C, *spatial_shape)
            The approximations Ẑ_i, on the backend of ``A``. For data given as (N, C, S)
            the spatial shape is (S,).

        Raises
        ------
        ValueError
            If the data's channels or positions do not match the factors, or a sample holds
            NaN or inf.

        Examples
        --------
        >>> import numpy as np, tensorpanda as tp
        >>> Z = np.random.default_rng(0).random((30, 5, 3, 3))
        >>> fit = tp.tucker2(Z, rank=(5, 9), model="tucker")  # full ranks, free cores: exact
        >>> bool(np.allclose(fit.reconstruct(Z), Z))
        True
        """
        return self.inverse_transform(self.transform(data, batch_size))

    def _check_layout(self, Z) -> None:
        """Refuse a batch (N, C, S) whose C or S differ from the factors'."""
        C, S = tl.shape(Z)[1], tl.shape(Z)[2]
        if (C, S) != (self.n_channels, self.n_positions):
            raise ValueError(
                f"data with {C} channels and {S} positions does not match factors fitted on "
                f"{self.n_channels} channels and {self.n_positions} positions"
            )

    # -- persistence -------------------------------------------------------------------------
    def save(self, path, overwrite: bool = False) -> Path:
        """Write the factors and their metadata to ``.safetensors`` or ``.npz`` (no pickle).
        An existing file is kept unless ``overwrite=True``.

        The file is written under a temporary name and moved into place, so an interrupted
        save leaves no half-written file (see [`tensorpanda.save`][tensorpanda.save]). The factors
        are checked as [`load`][tensorpanda.Factorization.load] checks a file before anything is
        written.

        Parameters
        ----------
        path : str or os.PathLike
            Destination; the suffix (``.safetensors`` or ``.npz``) picks the format. Its
            folder must exist.
        overwrite : bool, default False
            Replace an existing file at ``path``.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ValueError
            If the suffix is neither ``.safetensors`` nor ``.npz``, or
            [`load`][tensorpanda.Factorization.load] would refuse the factors (NaN or inf, negative
            parts, a spatial shape that does not match ``P``, an unknown model, ...).
        FileExistsError
            If ``path`` exists and ``overwrite`` is False.
        IsADirectoryError
            If ``path`` is a folder.
        FileNotFoundError
            If the folder of ``path`` does not exist (or a file stands in its place).

        Examples
        --------
        >>> import numpy as np, os, tempfile, tensorpanda as tp
        >>> fit = tp.tucker2(np.random.default_rng(0).random((30, 5, 3, 3)), rank=(4, 2))
        >>> path = os.path.join(tempfile.mkdtemp(), "factors.npz")
        >>> fit.save(path).name
        'factors.npz'
        >>> tp.Factorization.load(path).rank
        (4, 2)
        """
        arrays = {
            "A": B.to_host(self.A),
            "P": B.to_host(self.P),
            "history": np.asarray(self.history, dtype=np.float64),
        }
        metadata = {
            "model": self.model,
            "appearances": self.appearances,
            "spatial_shape": list(self.spatial_shape),
            "info": self.info,
        }
        return _format.write(path, arrays, metadata, overwrite=overwrite)

    @classmethod
    def load(cls, path) -> Factorization:
        """Read factors written by [`save`][tensorpanda.Factorization.save] (onto the active
        backend).

        The file is checked to be a complete tensorpanda factors file with consistent
        arrays before anything is returned.

        Parameters
        ----------
        path : str or os.PathLike
            A ``.safetensors`` or ``.npz`` file written by [`save`][tensorpanda.Factorization.save]
            or [`tensorpanda.save`][tensorpanda.save].

        Returns
        -------
        Factorization
            The factors, with the model, appearances, spatial shape, history and info they
            were saved with; ``A`` and ``P`` on the active TensorLy backend.

        Raises
        ------
        ValueError
            If the suffix is neither ``.safetensors`` nor ``.npz``, or the file is not a
            readable, complete and consistent tensorpanda factors file (the message names
            the file and what is wrong).
        FileNotFoundError
            If there is no file at ``path``.
        IsADirectoryError
            If ``path`` is a folder.

        Examples
        --------
        >>> import numpy as np, os, tempfile, tensorpanda as tp
        >>> fit = tp.tucker2(np.random.default_rng(0).random((30, 5, 3, 3)), rank=(4, 2))
        >>> path = os.path.join(tempfile.mkdtemp(), "factors.safetensors")
        >>> _ = fit.save(path)
        >>> back = tp.Factorization.load(path)
        >>> back.rank, back.spatial_shape, bool(np.allclose(back.P, fit.P))
        ((4, 2), (3, 3), True)
        """
        meta, arrays = _format.read(path)
        return cls(
            # an empty context keeps the saved dtype on every backend
            A=B.tensor(arrays["A"], {}),
            P=B.tensor(arrays["P"], {}),
            model=meta["model"],
            appearances=meta["appearances"],
            spatial_shape=tuple(meta["spatial_shape"]),
            history=[float(x) for x in arrays.get("history", [])],
            info=dict(meta.get("info", {})),
        )

    def to_numpy(self) -> Factorization:
        """A copy with numpy factors (for plotting or saving from any backend).

        Returns
        -------
        Factorization
            A new factorisation whose ``A`` and ``P`` are numpy arrays on the host; the
            metadata, history and info are copied.

        Examples
        --------
        >>> import numpy as np, tensorpanda as tp
        >>> fit = tp.tucker2(np.random.default_rng(0).random((30, 5, 3, 3)), rank=(4, 2))
        >>> type(fit.to_numpy().P).__name__
        'ndarray'
        """
        return Factorization(
            A=B.to_host(self.A),
            P=B.to_host(self.P),
            model=self.model,
            appearances=self.appearances,
            spatial_shape=tuple(self.spatial_shape),
            history=list(self.history),
            info=dict(self.info),
        )

"""The public ``tp.save`` and ``tp.load``: factors to and from ``.safetensors`` or ``.npz``.

The file format and its checks live in `tensorpanda._format`; these functions are the
same as [`Factorization.save`][tensorpanda.Factorization.save] and
[`Factorization.load`][tensorpanda.Factorization.load].
"""

from __future__ import annotations

from pathlib import Path

from .result import Factorization


def save(result: Factorization, path, overwrite: bool = False) -> Path:
    """Write ``result`` to ``path`` (``.safetensors`` or ``.npz``).

    The file is written next to its destination and moved into place, so an interrupted
    save never leaves a half-written file under the final name. An existing file is kept
    unless ``overwrite=True``. A new file gets the permissions the umask allows; a replaced
    file keeps its own. The factors go through the checks of [`load`][tensorpanda.load] before
    anything is written, so every file saved can be loaded back.

    The file holds ``A``, ``P`` (copied to the host) and the objective ``history``, and a
    JSON metadata record with the model, the appearances constraint, the spatial shape and
    ``info``; no pickle is involved, in either format.

    Parameters
    ----------
    result : Factorization
        The factors to write, on any backend and device.
    path : str or os.PathLike
        Destination, ending in ``.safetensors`` or ``.npz`` (the suffix picks the format).
        Its folder must exist.
    overwrite : bool, default False
        Replace an existing file at ``path`` instead of raising.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        If ``path`` ends in neither ``.safetensors`` nor ``.npz``, or [`load`][tensorpanda.load]
        would refuse the factors (NaN or inf, negative parts, a spatial shape that does not match
        ``P``, an unknown model, ...); nothing is written then.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    IsADirectoryError
        If ``path`` is a folder.
    FileNotFoundError
        If the folder of ``path`` does not exist (or a file stands in its place).

    Examples
    --------
    >>> import numpy as np, tempfile, os, tensorpanda as tp
    >>> fit = tp.tucker2(np.random.default_rng(0).random((30, 4, 3, 3)), rank=(4, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "factors.safetensors")
    >>> tp.save(fit, path)
    PosixPath('...factors.safetensors')
    >>> tp.load(path).rank
    (4, 2)
    >>> tp.save(fit, path)
    Traceback (most recent call last):
    ...
    FileExistsError: ...factors.safetensors exists; pass overwrite=True to replace it
    >>> tp.save(fit, path, overwrite=True).name
    'factors.safetensors'
    """
    return result.save(path, overwrite=overwrite)


def load(path) -> Factorization:
    """Read factors written by [`save`][tensorpanda.save]; the factors land on the active backend.

    The file is checked before anything is built from it: it must be a complete
    tensorpanda factors file of a format version this tensorpanda reads, with a metadata
    record naming a known model and appearances constraint and a spatial shape of positive
    integers, and floating-point matrices ``A`` and ``P`` of one dtype that are finite,
    ``P`` non-negative with one row per position of that shape, and ranks
    1 ≤ R_C ≤ C, 1 ≤ R_S ≤ S.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` or ``.npz`` file written by [`save`][tensorpanda.save].

    Returns
    -------
    Factorization
        The factors (in the dtype they were saved in), model, appearances constraint,
        spatial shape, objective history and info.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    IsADirectoryError
        If ``path`` is a folder.
    ValueError
        If the suffix is neither ``.safetensors`` nor ``.npz``, or the file is unreadable
        (truncated or of another format), not a tensorpanda factors file, written by a
        newer tensorpanda, incomplete or inconsistent (corrupt). The message names the file
        and the problem.

    Examples
    --------
    >>> import numpy as np, tempfile, os, tensorpanda as tp
    >>> Z = np.random.default_rng(0).random((30, 4, 3, 3))
    >>> fit = tp.tucker2(Z, rank=(4, 2), random_state=0)
    >>> folder = tempfile.mkdtemp()
    >>> back = tp.load(tp.save(fit, os.path.join(folder, "factors.npz")))
    >>> back.model, back.rank, back.spatial_shape, bool(np.array_equal(back.P, fit.P))
    ('panda', (4, 2), (3, 3), True)
    >>> np.savez(os.path.join(folder, "other.npz"), A=np.eye(2))
    >>> tp.load(os.path.join(folder, "other.npz"))
    Traceback (most recent call last):
    ...
    ValueError: ...other.npz is an .npz file but not a tensorpanda factors file
    """
    return Factorization.load(path)

"""Argument checks shared across modules: part and appearance indices, output paths, and the
one way every output file is written (atomically, with the modes the user expects)."""

from __future__ import annotations

import contextlib
import numbers
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def indices(name: str, value, bound: int) -> list[int]:
    """``value`` (one index or several) as ints in 0..bound-1, or an error naming ``name``."""
    if isinstance(value, numbers.Integral):
        values = [value]
    elif isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        values = list(value)
    else:
        raise TypeError(f"{name} must be integers (an index or a list of them), got {value!r}")
    if not values:
        raise ValueError(f"{name} is empty: give at least one index")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be integers, got {v!r}")
        if not 0 <= v < bound:
            raise ValueError(
                f"{name} index {v} is out of range: there are {bound} (0..{bound - 1})"
            )
    return [int(v) for v in values]


def exists_message(path) -> str:
    """What a refused overwrite says (one wording for factors, figures and summaries)."""
    return f"{path} exists; pass overwrite=True to replace it"


def file_in_the_way(folder) -> Path | None:
    """The nearest existing ancestor of ``folder`` (itself included) if it is a file, not a
    folder: nothing can be created below it."""
    for candidate in (Path(folder), *Path(folder).parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def writable_path(path, overwrite: bool) -> Path:
    """``path`` as a Path if a file may be written there (no clobbering, folder exists), or an
    error naming the path and the fix."""
    path = Path(path)
    if path.is_dir():
        # checked first: overwrite=True must not suggest that a folder can be replaced
        raise IsADirectoryError(
            f"{path} is a folder, not a file: name a file to write (e.g. one inside {path})"
        )
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} exists and is not a regular file: name another file")
    if path.exists() and not overwrite:
        raise FileExistsError(exists_message(path))
    blocker = file_in_the_way(path.parent)
    if blocker is not None:
        raise FileNotFoundError(
            f"the folder {path.parent} cannot exist: {blocker} is a file, not a folder; "
            "choose a path in a folder"
        )
    if not path.parent.exists():
        raise FileNotFoundError(f"the folder {path.parent} does not exist: create it first")
    return path


def _temporary_next_to(path: Path) -> Path:
    """A new empty hidden file in the folder of ``path``, ending in the same suffix.

    Created with mode 0666 so that the umask (or the folder's default ACL) applies, as for
    any new file; ``tempfile.mkstemp`` would make it 0600 whatever the umask.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        candidate = path.parent / f".tmp-{secrets.token_hex(6)}-{path.name}"
        try:
            os.close(os.open(candidate, flags, 0o666))
        except FileExistsError:
            continue
        except PermissionError:
            raise PermissionError(
                f"cannot write {path}: no permission to create files in {path.parent}"
            ) from None
        return candidate
    raise FileExistsError(f"could not create a temporary file next to {path}")


def _sync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk, where the platform allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path, write: Callable[[Path], None], overwrite: bool = False) -> Path:
    """Write a file by calling ``write(temporary)`` on a temporary file next to ``path``, then
    move it into place; return ``path``.

    An interrupted or failed write (an exception, Ctrl-C) removes the temporary file and leaves
    ``path`` as it was: never a partial file under the final name, never a lost previous file.
    A new file gets the mode the umask allows (0666 & ~umask); a replaced one keeps its mode
    (through a symbolic link, the file it names is replaced and the link kept).
    Without ``overwrite`` the file is linked into place, so a file that appeared meanwhile is
    not clobbered either.
    """
    path = writable_path(path, overwrite)
    # through a symbolic link, as open() would: the link stays, the file it names is replaced
    target = Path(os.path.realpath(path)) if path.is_symlink() and path.exists() else path
    tmp = _temporary_next_to(target)
    try:
        mode = stat.S_IMODE((target if target.exists() else tmp).stat().st_mode)
        write(tmp)
        os.chmod(tmp, mode)  # also if ``write`` made the file anew with other permissions
        _sync(tmp)
        if overwrite:
            os.replace(tmp, target)  # atomic within a folder
        else:
            try:
                os.link(tmp, target)  # atomic, and refuses an existing name
            except FileExistsError:
                raise FileExistsError(exists_message(path)) from None
            except OSError:  # a file system without hard links
                os.replace(tmp, target)
        _sync(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    return path

"""Saving and loading factors: exact round trips, and clear errors for bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tensorpanda as tp
from helpers import host, planted, to_backend


@pytest.fixture(scope="module")
def fit():
    Z, _, _ = planted(n=60, dtype="float32")
    return tp.tucker2(to_backend(Z), (6, 4), random_state=0)


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_save_then_load_round_trips_exactly(fit, tmp_path, suffix):
    path = tmp_path / f"factors{suffix}"
    tp.save(fit, path)
    back = tp.load(path)
    for x, y in ((fit.A, back.A), (fit.P, back.P)):
        assert host(y).dtype == host(x).dtype
        assert np.array_equal(host(x), host(y))
    assert back.history == fit.history
    assert back.info == json.loads(json.dumps(fit.info))
    assert (back.model, back.appearances, back.spatial_shape) == (
        fit.model, fit.appearances, fit.spatial_shape,
    )
    # the loaded factors are usable as they are
    Z, _, _ = planted(n=5, dtype="float32")
    np.testing.assert_allclose(
        host(back.transform(to_backend(Z))), host(fit.transform(to_backend(Z))), rtol=1e-6
    )


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_existing_files_are_not_overwritten_unless_asked(fit, tmp_path, suffix):
    path = tmp_path / f"factors{suffix}"
    path.write_bytes(b"the user's own file")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fit.save(path)
    assert path.read_bytes() == b"the user's own file"
    fit.save(path, overwrite=True)
    assert tp.load(path).rank == fit.rank
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_truncated_files_are_refused(fit, tmp_path, suffix):
    path = tmp_path / f"factors{suffix}"
    tp.save(fit, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        tp.load(path)


def test_foreign_files_are_refused(tmp_path):
    from safetensors.numpy import save_file

    other = tmp_path / "weights.safetensors"
    save_file({"weight": np.ones((2, 2), dtype=np.float32)}, str(other))
    with pytest.raises(ValueError, match="not a tensorpanda factors file"):
        tp.load(other)
    npz = tmp_path / "arrays.npz"
    np.savez(npz, A=np.ones((2, 2)))
    with pytest.raises(ValueError, match="not a tensorpanda factors file"):
        tp.load(npz)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="truncated or of another format"):
        tp.load(text)


def test_saved_factors_are_checked_as_loaded_ones(fit, tmp_path):
    bad = tp.Factorization(A=fit.A, P=-fit.P, spatial_shape=fit.spatial_shape)
    with pytest.raises(ValueError, match="negative entries .*nothing was written"):
        tp.save(bad, tmp_path / "factors.npz")
    assert list(tmp_path.iterdir()) == []


def test_inconsistent_contents_are_refused(fit, tmp_path):
    path = tmp_path / "factors.npz"
    tp.save(fit, path)
    with np.load(path) as data:
        arrays = dict(data)
    meta = json.loads(str(arrays["metadata"]))
    meta["spatial_shape"] = [5, 5]
    arrays["metadata"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="corrupt: P has 48 rows"):
        tp.load(path)


def test_paths_and_names(fit, tmp_path):
    with pytest.raises(FileNotFoundError, match="no factors file"):
        tp.load(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="use a name ending in .safetensors or .npz"):
        fit.save(tmp_path / "factors.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fit.save(tmp_path / "no" / "such" / "factors.npz")
    # a folder in place of the file, a file in place of the folder: named, with the fix
    (tmp_path / "out.npz").mkdir()
    with pytest.raises(IsADirectoryError, match="out.npz is a folder, not a file"):
        fit.save(tmp_path / "out.npz", overwrite=True)
    (tmp_path / "notes.txt").write_text("notes")
    with pytest.raises(FileNotFoundError, match="notes.txt is a file, not a folder"):
        fit.save(tmp_path / "notes.txt" / "factors.npz", overwrite=True)


def test_no_pickle_anywhere(fit, tmp_path):
    path = tmp_path / "factors.npz"
    tp.save(fit, path)
    with np.load(path, allow_pickle=False) as data:  # would raise on object arrays
        assert set(data.files) == {"A", "P", "history", "metadata"}

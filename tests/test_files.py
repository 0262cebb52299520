"""No lost or spoiled work: what is saved can be loaded, what is loaded is checked, files
are written atomically with the modes the user expects, paths give clear errors, and NaN
never flows silently through the factors."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

import tensorpanda as tp
from helpers import host, to_backend
from tensorpanda import _checks, _format
from tensorpanda.app import figures

SUFFIXES = [".safetensors", ".npz"]
posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def factors(A=None, P=None, **fields) -> tp.Factorization:
    """Small hand-made factors (C = 5, R_C = 3, S = 4 × 3, R_S = 2) on the active backend."""
    if A is None:
        A = np.linalg.qr(np.random.default_rng(0).standard_normal((5, 3)))[0]
    if P is None:
        P = np.abs(np.random.default_rng(1).standard_normal((12, 2)))
    fields.setdefault("spatial_shape", (4, 3))
    fields.setdefault("info", {"objective": 1.0, "sq_norm": 4.0})
    return tp.Factorization(A=to_backend(np.asarray(A)), P=to_backend(np.asarray(P)), **fields)


def folder_names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class umask:
    """The process umask set to ``value`` inside a ``with`` block (restored after)."""

    def __init__(self, value: int):
        self.value = value

    def __enter__(self):
        self.old = os.umask(self.value)

    def __exit__(self, *exc):
        os.umask(self.old)


# -- 1. save refuses what load would refuse, before writing anything ---------------------------
BAD_FACTORS = {
    "negative P": (dict(P=-np.ones((12, 2))), "parts P have negative entries"),
    "NaN in A": (dict(A=np.full((5, 3), np.nan)), "contain NaN or inf"),
    "inf in P": (dict(P=np.full((12, 2), np.inf)), "contain NaN or inf"),
    "empty spatial shape": (dict(spatial_shape=()), "spatial shape"),
    "wrong spatial shape": (dict(spatial_shape=(5, 5)), "P has 12 rows"),
    "unknown model": (dict(model="gan"), "model 'gan' is not one of panda, tucker"),
    "appearances of another model": (dict(appearances="nonnegative"), "appearances"),
    "R_C > C": (dict(A=np.eye(5, 7)), "need 1 ≤ R_C ≤ C"),
}


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("case", list(BAD_FACTORS))
def test_save_refuses_factors_that_load_would_refuse(tmp_path, suffix, case):
    fields, message = BAD_FACTORS[case]
    bad = factors(**fields)
    path = tmp_path / f"factors{suffix}"
    with pytest.raises(ValueError, match=message) as err:
        tp.save(bad, path)
    assert str(path) in str(err.value) and "nothing was written" in str(err.value)
    assert folder_names(tmp_path) == []
    # an existing file is left as it was, even with overwrite=True
    path.write_bytes(b"earlier work")
    with pytest.raises(ValueError, match=message):
        tp.save(bad, path, overwrite=True)
    assert path.read_bytes() == b"earlier work"
    assert folder_names(tmp_path) == [path.name]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_everything_saved_loads_back(tmp_path, suffix):
    fit = factors(model="tucker", appearances="nonnegative", A=np.abs(np.eye(5, 3)))
    back = tp.load(tp.save(fit, tmp_path / f"f{suffix}"))
    assert (back.model, back.appearances, back.spatial_shape) == ("tucker", "nonnegative", (4, 3))
    np.testing.assert_array_equal(host(back.P), host(fit.P))


# -- 2. load validates the metadata's types and values, naming the file ------------------------
def write_raw(path, meta, A=None, P=None, **extra):
    """A factors file with the given raw metadata (a string) and arrays, bypassing the checks."""
    arrays = {
        "A": np.linalg.qr(np.random.default_rng(0).standard_normal((5, 3)))[0]
        if A is None else A,
        "P": np.ones((12, 2)) if P is None else P,
        **extra,
    }
    if path.suffix == ".npz":
        np.savez(path, metadata=meta if isinstance(meta, np.ndarray) else np.array(meta),
                 **arrays)
    else:
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path),
                  metadata={"tensorpanda": meta})
    return path


def record(**changes) -> str:
    meta = {"format": _format.FORMAT, "format_version": 1, "model": "panda",
            "appearances": "orthonormal", "spatial_shape": [4, 3], "info": {}}
    meta.update(changes)
    return json.dumps({k: v for k, v in meta.items() if v is not ...})


BAD_RECORDS = {
    "a JSON list": ("[1, 2]", {}, "metadata is a JSON list, not a record"),
    "JSON null": ("null", {}, "metadata is a JSON null"),
    "not JSON": ("{oops", {}, "metadata is not valid JSON"),
    "unknown model": (record(model="gan"), {}, "model 'gan' is not one of"),
    "model not a string": (record(model=["panda"]), {}, "model"),
    "negative spatial shape": (record(spatial_shape=[-4, -3]), {}, "positive integers"),
    "float spatial shape": (record(spatial_shape=[4.0, 3.0]), {}, "positive integers"),
    "spatial shape a string": (record(spatial_shape="4x3"), {}, "positive integers"),
    "empty spatial shape": (record(spatial_shape=[]), {}, "positive integers"),
    "R_C > C": (record(), {"A": np.eye(5, 7)}, "need 1 ≤ R_C ≤ C"),
    "R_S > S": (record(spatial_shape=[1]), {"P": np.ones((1, 2))}, "need 1 ≤ R_S ≤ S"),
    "integer A": (record(), {"A": np.eye(5, 3, dtype=np.int64)}, "A holds int64 values"),
    "integer P": (record(), {"P": np.ones((12, 2), dtype=np.int32)}, "P holds int32"),
    "mixed dtypes": (record(), {"P": np.ones((12, 2), dtype=np.float32)}, "one dtype"),
    "info a list": (record(info=[1]), {}, "info is a JSON list"),
    "version a string": (record(format_version="1"), {}, "format version '1'"),
    "no version": (record(format_version=...), {}, "incomplete: it lacks format_version"),
    "history a matrix": (record(), {"history": np.ones((2, 2))}, "history"),
}


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_load_validates_metadata_and_names_the_file(tmp_path, suffix, case):
    meta, arrays, message = BAD_RECORDS[case]
    path = write_raw(tmp_path / f"factors{suffix}", meta, **arrays)
    with pytest.raises(ValueError, match=message) as err:
        tp.load(path)
    assert str(path) in str(err.value)


def test_npz_files_that_are_not_factor_records_are_refused(tmp_path):
    path = write_raw(tmp_path / "f.npz", np.array(5))  # metadata not a string
    with pytest.raises(ValueError, match="metadata is not a JSON string"):
        tp.load(path)
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as handle:  # a bare .npy under an .npz name
        np.save(handle, np.ones(3))
    with pytest.raises(ValueError, match="array.npz is not a readable .npz file"):
        tp.load(npy)


def test_big_endian_arrays_load_in_native_order(tmp_path):
    A = np.linalg.qr(np.random.default_rng(0).standard_normal((5, 3)))[0]
    path = write_raw(tmp_path / "f.npz", record(), A=A.astype(">f8"),
                     P=np.ones((12, 2), dtype=">f8"))
    back = tp.load(path)
    assert host(back.A).dtype == np.float64
    np.testing.assert_array_equal(host(back.A), A)
    assert back.transform(to_backend(np.ones((2, 5, 4, 3)))).shape == (2, 3, 2)


# -- 3. modes: the umask for new files, the old mode for replaced ones -------------------------
def write_each_kind(folder, overwrite=False) -> list:
    """One file of each kind the project writes: factors, a PNG, a GIF, a text file."""
    fit = factors()
    images = np.random.default_rng(0).random((2, 3, 8, 8))
    frames = np.stack([images * s for s in (0.5, 1.0)])
    return [
        tp.save(fit, folder / "f.safetensors", overwrite=overwrite),
        tp.save(fit, folder / "f.npz", overwrite=overwrite),
        figures.parts_figure(np.random.default_rng(0).random((2, 4, 4)), images,
                             folder / "parts.png", upscale=1, overwrite=overwrite),
        figures.edit_gif(frames, folder / "edit.gif", upscale=1, overwrite=overwrite),
        _checks.atomic_write(folder / "summary.md", lambda t: t.write_text("hi"), overwrite),
    ]


@posix_only
@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_respect_the_umask(tmp_path, mask, expected):
    with umask(mask):
        paths = write_each_kind(tmp_path)
    assert {p.name: mode(p) for p in paths} == {p.name: expected for p in paths}
    assert len(folder_names(tmp_path)) == len(paths)  # no temporary left behind


@posix_only
def test_replaced_files_keep_their_mode(tmp_path):
    with umask(0o022):
        paths = write_each_kind(tmp_path)
    for p in paths:
        os.chmod(p, 0o640)
    with umask(0o077):
        write_each_kind(tmp_path, overwrite=True)
    assert {p.name: mode(p) for p in paths} == {p.name: 0o640 for p in paths}


@posix_only
def test_overwriting_through_a_symbolic_link_replaces_the_file_it_names(tmp_path):
    target = tp.save(factors(), tmp_path / "target.npz")
    os.chmod(target, 0o640)
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    with pytest.raises(FileExistsError, match="link.npz exists"):
        tp.save(factors(model="tucker"), link)
    assert tp.save(factors(model="tucker"), link, overwrite=True) == link
    assert link.is_symlink() and tp.load(target).model == "tucker" and mode(target) == 0o640
    assert folder_names(tmp_path) == ["link.npz", "target.npz"]


# -- 4. atomic writes: an interruption leaves nothing partial and loses nothing ----------------
def interrupt_after_partial_write(path, *args, **kwargs):
    with open(path, "wb") as handle:
        handle.write(b"half a file")
    raise KeyboardInterrupt


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_interrupted_saves_leave_the_previous_file_intact(tmp_path, suffix, monkeypatch):
    fit, path = factors(), tmp_path / f"factors{suffix}"
    if suffix == ".safetensors":
        monkeypatch.setattr(_format, "save_file",
                            lambda arrays, tmp, **kw: interrupt_after_partial_write(tmp))
    else:
        monkeypatch.setattr(np, "savez",
                            lambda handle, **kw: interrupt_after_partial_write(handle.name))
    with pytest.raises(KeyboardInterrupt):
        tp.save(fit, path)
    assert folder_names(tmp_path) == []
    path.write_bytes(b"earlier work")
    with pytest.raises(KeyboardInterrupt):
        tp.save(fit, path, overwrite=True)
    assert path.read_bytes() == b"earlier work"
    assert folder_names(tmp_path) == [path.name]


@pytest.mark.parametrize("kind", ["png", "gif"])
def test_interrupted_figures_leave_no_partial_file(tmp_path, kind, monkeypatch):
    from PIL import Image

    images = np.random.default_rng(0).random((2, 3, 8, 8))
    frames = np.stack([images * s for s in (0.5, 1.0)])
    path = tmp_path / f"figure.{kind}"

    def draw(overwrite=False):
        if kind == "png":
            return figures.edit_strip(frames, path, upscale=1, overwrite=overwrite)
        return figures.edit_gif(frames, path, upscale=1, overwrite=overwrite)

    with monkeypatch.context() as patch:
        patch.setattr(Image.Image, "save",
                      lambda self, fp, *a, **k: interrupt_after_partial_write(fp))
        with pytest.raises(KeyboardInterrupt):
            draw()
        assert folder_names(tmp_path) == []  # no 0-byte or half figure under its name
    before = draw().read_bytes()
    with monkeypatch.context() as patch:
        patch.setattr(Image.Image, "save",
                      lambda self, fp, *a, **k: interrupt_after_partial_write(fp))
        with pytest.raises(KeyboardInterrupt):
            draw(overwrite=True)
    assert path.read_bytes() == before
    assert folder_names(tmp_path) == [path.name]


def test_interrupted_demo_summary_leaves_the_previous_one(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from tensorpanda.app import demo

    fit = factors(info={"n_samples": 10, "n_iter": 3, "objective": 1.0, "sq_norm": 4.0})
    config = demo.DemoConfig()
    rows = [("eyes", 0, 1, 1.0, 0.5, 0.1)]
    demo._summary(tmp_path, config, fit, rows, 2, overwrite=False)
    summary = tmp_path / "summary.md"
    before = summary.read_text(encoding="utf-8")
    assert "| eyes | 0 | a_1 | 0.50 ± 0.10 |" in before
    with pytest.raises(FileExistsError, match="overwrite=True"):
        demo._summary(tmp_path, config, fit, rows, 2, overwrite=False)
    with monkeypatch.context() as patch:
        patch.setattr(type(summary), "write_text",
                      lambda self, *a, **k: interrupt_after_partial_write(self))
        with pytest.raises(KeyboardInterrupt):
            demo._summary(tmp_path, config, fit, rows, 3, overwrite=True)
    assert summary.read_text(encoding="utf-8") == before
    assert folder_names(tmp_path) == ["summary.md"]


def test_a_file_appearing_meanwhile_is_not_clobbered(tmp_path):
    path = tmp_path / "out.txt"

    def write(tmp):  # another process creates the file while ours is being written
        path.write_text("theirs")
        tmp.write_text("ours")

    with pytest.raises(FileExistsError, match="out.txt exists"):
        _checks.atomic_write(path, write)
    assert path.read_text() == "theirs"
    assert folder_names(tmp_path) == ["out.txt"]


# -- 5. paths: a folder where a file should go, a file where a folder should be ----------------
def test_saving_onto_a_folder_or_under_a_file_says_so(tmp_path):
    fit = factors()
    folder = tmp_path / "out.npz"
    folder.mkdir()
    for overwrite in (False, True):
        with pytest.raises(IsADirectoryError, match="out.npz is a folder, not a file"):
            tp.save(fit, folder, overwrite=overwrite)
    plain = tmp_path / "file.txt"
    plain.write_text("notes")
    with pytest.raises(FileNotFoundError, match="file.txt is a file, not a folder"):
        tp.save(fit, plain / "factors.npz", overwrite=True)
    with pytest.raises(FileNotFoundError, match="file.txt is a file, not a folder"):
        tp.save(fit, plain / "deeper" / "factors.npz")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        figures.edit_strip(np.zeros((1, 1, 3, 4, 4)), tmp_path, overwrite=True)
    with pytest.raises(IsADirectoryError, match="out.npz is a folder"):
        tp.load(folder)
    assert plain.read_text() == "notes" and list(folder.iterdir()) == []


def test_demo_output_folder_is_checked_before_any_work(tmp_path):
    pytest.importorskip("torch")
    from tensorpanda.app import demo

    plain = tmp_path / "file.txt"
    plain.write_text("notes")
    with pytest.raises(ValueError, match="file.txt is a file, not a folder"):
        demo.run(plain)
    with pytest.raises(FileNotFoundError, match="file.txt is a file, not a folder"):
        demo.run(plain / "demo")


# -- 6. NaN or inf entering the factors' maps gives a clear error naming the sample ------------
def test_transform_and_reconstruct_name_the_sample_with_nan(tmp_path):
    fit = factors()
    Z = np.random.default_rng(0).random((10, 5, 4, 3))
    Z[7, 2, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"sample 7 \(batch 1\) contains NaN"):
        fit.transform(to_backend(Z), batch_size=4)
    Z[7, 2, 1, 1] = 0
    Z[3, 0, 0, 0] = -np.inf
    with pytest.raises(ValueError, match="sample 3 .* contains inf"):
        fit.reconstruct(to_backend(Z))
    with pytest.raises(ValueError, match="sample 3 .* contains inf"):
        tp.reconstruction_error(fit, to_backend(Z))
    Z[3, 0, 0, 0] = 0
    assert np.isfinite(host(fit.reconstruct(to_backend(Z)))).all()


def test_inverse_transform_names_the_sample_with_nan():
    fit = factors()
    cores = np.ones((4, 3, 2))
    cores[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="cores of sample 2 contain NaN"):
        fit.inverse_transform(to_backend(cores))
    cores[2, 1, 0] = np.inf
    with pytest.raises(ValueError, match="cores of sample 2 contain inf"):
        fit.inverse_transform(to_backend(cores))


def test_non_finite_factors_and_overflow_are_named():
    Z = to_backend(np.ones((3, 5, 4, 3)))
    for model in ("panda", "tucker"):
        broken = factors(A=np.full((5, 3), np.nan), model=model)
        with pytest.raises(ValueError, match="factors are not finite: A contains NaN"):
            broken.transform(Z)
        with pytest.raises(ValueError, match="factors are not finite: A contains NaN"):
            broken.inverse_transform(to_backend(np.ones((1, 3, 2))))
    # finite float64 data too large for float32 factors
    small = factors(A=np.eye(5, 3, dtype=np.float32), P=np.ones((12, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="sample 1 overflow float32"):
        small.transform(to_backend(np.stack([np.ones((5, 4, 3)), np.full((5, 4, 3), 1e300)])))
    with pytest.raises(ValueError, match="sample 0 overflow"):
        small.inverse_transform(to_backend(np.full((1, 3, 2), 3e38, dtype=np.float32)))

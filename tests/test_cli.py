"""The `tensorpanda` command: real runs, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image

from tensorpanda.app.cli import main

pytestmark = pytest.mark.backend_independent


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_command_with_examples():
    out = subprocess.run(
        [sys.executable, "-m", "tensorpanda.app.cli", "--help"],
        capture_output=True, text=True, check=True,
    ).stdout
    for command in ("fit", "edit", "localize", "layers", "info", "bench", "demo"):
        assert command in out
    assert "examples:" in out


def test_fit_on_an_array_file_then_info(capsys, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "z.npy", rng.random((40, 6, 4, 4)))
    out_file = tmp_path / "f.npz"
    code, out, _ = run(capsys, "fit", "--data", str(tmp_path / "z.npy"), "--rank", "all", "3",
                       "--out", str(out_file))
    assert code == 0 and "relative error" in out
    code, out, _ = run(capsys, "info", str(out_file))
    info = json.loads(out)
    assert code == 0 and info["rank"] == [6, 3] and info["spatial_shape"] == [4, 4]
    code, _, err = run(capsys, "fit", "--data", str(tmp_path / "z.npy"), "--rank", "all", "3",
                       "--out", str(out_file))
    assert code == 2 and "overwrite" in err and err.count("\n") == 1


@pytest.mark.generator
def test_fit_edit_localize_on_the_dcgan(capsys, tmp_path):
    pytest.importorskip("gan_face_generate")
    factors = tmp_path / "faces.safetensors"
    code, _, err = run(capsys, "fit", "--adapter", "dcgan-faces", "--layer", "8x8",
                       "--rank", "all", "4", "--samples", "200", "--out", str(factors))
    assert code == 0, err
    code, _, err = run(capsys, "edit", str(factors), "--part", "0", "1", "--appearance", "2",
                       "--alpha", "-5", "0", "5", "--samples", "3", "--out",
                       str(tmp_path / "e.png"))
    assert code == 0, err
    assert Image.open(tmp_path / "e.png").size == (3 * 130 + 2, 3 * 130 + 2)
    code, _, err = run(capsys, "edit", str(factors), "--part", "0", "--appearance", "2",
                       "--alpha", "1", "--out", str(tmp_path / "e.gif"))
    assert code == 0, err
    code, _, err = run(capsys, "localize", str(factors), "--appearance", "1", "--out",
                       str(tmp_path / "s.png"))
    assert code == 0, err
    code, out, _ = run(capsys, "layers", "dcgan-faces")
    assert "main.5" in out and "256×8×8" in out and "(default)" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["layers", "stylegan9"], "stylegan9"),
        (["info", "missing.safetensors"], "no factors file"),
        (["fit", "--rank", "2", "x", "--data", "z.npy", "--out", "o.npz"], "--rank takes"),
        (["fit", "--rank", "2", "2", "--out", "o.npz"], "either --adapter"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_edit_refuses_unknown_output_types(capsys, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "z.npy", rng.random((20, 6, 4, 4)))
    run(capsys, "fit", "--data", str(tmp_path / "z.npy"), "--rank", "all", "2", "--out",
        str(tmp_path / "f.npz"))
    code, _, err = run(capsys, "edit", str(tmp_path / "f.npz"), "--part", "0",
                       "--appearance", "0", "--alpha", "1", "--out", str(tmp_path / "x.jpg"))
    assert code == 2 and "do not name their generator" in err


def test_bench_runs_the_harness_of_the_benchmarks_package(capsys, monkeypatch):
    calls = []
    harness = types.ModuleType("tensorpanda.benchmarks.solvers")
    harness.main = lambda argv: calls.append(argv) or 7
    monkeypatch.setitem(sys.modules, "tensorpanda.benchmarks.solvers", harness)
    code, _, _ = run(capsys, "bench", "--smoke", "--markdown", "out.md")
    assert code == 7 and calls == [["--smoke", "--markdown", "out.md"]]


def test_demo_refuses_a_folder_in_use_before_any_work(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = run(capsys, "demo", "--out", str(tmp_path), "--samples", "10")
    assert code == 2 and "not empty" in err and err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]

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


# -- adapter options from the command line ---------------------------------------------------
@pytest.fixture
def tiny_style(monkeypatch, tmp_path):
    """A registered style adapter read from a checkpoint file (the tiny test network)."""
    import torch
    from test_style_adapter import TinyStyleNet

    from tensorpanda.adapters import registry
    from tensorpanda.adapters.style import StyleGANAdapter

    calls = []

    def factory(checkpoint=None, *, truncation=1.0, classes=None, device=None, dtype=None):
        calls.append(dict(checkpoint=checkpoint, truncation=truncation, classes=classes,
                          dtype=dtype))
        return StyleGANAdapter(TinyStyleNet.from_checkpoint(checkpoint), truncation=truncation,
                               classes=classes, name="tiny-style")

    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    torch.save({**TinyStyleNet(c_dim=3).state_dict(), "_c_dim": torch.tensor(3)}, path)
    monkeypatch.setattr(registry, "_registered", {"tiny-style": factory})
    return path, calls


def test_layers_of_a_checkpoint_with_adapter_options(capsys, tiny_style):
    path, calls = tiny_style
    code, out, err = run(capsys, "layers", "--adapter", "tiny-style", "--checkpoint", str(path),
                         "--adapter-arg", "truncation=0.5", "--adapter-arg", "class=2")
    assert code == 0, err
    assert "synthesis.b8.conv1" in out and "8×8×8" in out and "alias b8.conv1" in out
    assert calls == [dict(checkpoint=str(path.resolve()), truncation=0.5, classes=2,
                          dtype=None)]
    code, _, err = run(capsys, "layers", "tiny-style", "--checkpoint", str(path),
                       "--adapter-arg", "dtype=float64")
    assert code == 0, err
    import torch

    assert calls[-1]["dtype"] is torch.float64


def test_fit_then_edit_rebuild_the_generator_with_its_options(capsys, tiny_style, tmp_path):
    path, calls = tiny_style
    factors = tmp_path / "f.safetensors"
    code, _, err = run(capsys, "fit", "--adapter", "tiny-style", "--checkpoint", str(path),
                       "--adapter-arg", "truncation=0.7", "--adapter-arg", "classes=1",
                       "--layer", "b8.conv1", "--rank", "all", "2", "--samples", "20",
                       "--out", str(factors))
    assert code == 0, err
    code, out, _ = run(capsys, "info", str(factors))
    info = json.loads(out)
    assert info["adapter"] == "tiny-style" and info["layer"] == "synthesis.b8.conv1"
    assert info["adapter_args"] == {"checkpoint": str(path.resolve()), "truncation": 0.7,
                                    "classes": 1}
    code, _, err = run(capsys, "edit", str(factors), "--part", "0", "--appearance", "1",
                       "--alpha", "-2", "0", "2", "--samples", "2", "--out",
                       str(tmp_path / "e.png"))
    assert code == 0, err
    assert calls[-1] == dict(checkpoint=str(path.resolve()), truncation=0.7, classes=1,
                             dtype=None)
    code, _, err = run(capsys, "localize", str(factors), "--appearance", "0", "--samples", "2",
                       "--adapter-arg", "truncation=0.5", "--out", str(tmp_path / "s.png"))
    assert code == 0, err
    assert calls[-1]["truncation"] == 0.5 and calls[-1]["classes"] == 1


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--adapter-arg", "truncation"], "takes key=value"),
        (["--adapter-arg", "=3"], "takes key=value"),
        (["--adapter-arg", "colour=red"], "takes no option 'colour'"),
        (["--adapter-arg", "dtype=float99"], "not a torch dtype"),
        (["--adapter-arg", "classes=9"], "classes must be an int in 0..2"),
        (["--adapter-arg", "truncation=abc"], "tiny-style"),
    ],
)
def test_bad_adapter_options_exit_2_with_one_line(capsys, tiny_style, extra, message):
    path, _ = tiny_style
    code, _, err = run(capsys, "layers", "tiny-style", "--checkpoint", str(path), *extra)
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_option_values_are_typed():
    from tensorpanda.app.cli import _adapter_args

    assert _adapter_args(["a=1", "b=0.5", "c=true", "d=False", "e=none", "f=x/y", "g-h=2"]) == {
        "a": 1, "b": 0.5, "c": True, "d": False, "e": None, "f": "x/y", "g_h": 2}


@pytest.mark.parametrize(
    "argv,message",
    [
        (["layers", "stylegan2"], "pass checkpoint=PATH"),
        (["layers", "--adapter", "stylegan2", "--checkpoint", "missing.pkl"],
         "checkpoint not found"),
        (["layers"], "name the adapter"),
        (["layers", "dcgan-faces", "--adapter", "biggan"], "two adapters"),
        (["fit", "--data", "z.npy", "--checkpoint", "x.pkl", "--rank", "2", "2", "--out",
          "o.npz"], "use them with --adapter"),
    ],
)
def test_checkpoint_errors_exit_2_with_one_line(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1, err


@pytest.mark.generator
def test_biggan_from_the_command_line(capsys, tmp_path):
    pytest.importorskip("pytorch_pretrained_biggan")
    from tensorpanda.adapters import load

    cfg = dict(output_dim=32, z_dim=16, class_embed_dim=16, channel_width=4, num_classes=10,
               attention_layer_position=2,
               layers=[(False, 16, 16), (True, 16, 8), (True, 8, 4), (False, 4, 2),
                       (True, 2, 1)])
    gan = load("biggan", config=cfg, random_weights=True)
    folder = tmp_path / "biggan-small"
    folder.mkdir()
    import torch

    (folder / "config.json").write_text(gan.config.to_json_string())
    torch.save(gan.generator.state_dict(), folder / "pytorch_model.bin")
    code, out, err = run(capsys, "layers", "biggan", "--adapter-arg", f"weights={folder}")
    assert code == 0 and "generator.layers.0" in out, err
    factors = tmp_path / "b.npz"
    code, _, err = run(capsys, "fit", "--adapter", "biggan", "--checkpoint", str(folder),
                       "--adapter-arg", "class=3", "--adapter-arg", "truncation=0.4",
                       "--layer", "generator.layers.2", "--rank", "all", "2", "--samples",
                       "8", "--batch-size", "4", "--out", str(factors))
    assert code == 0, err
    code, out, _ = run(capsys, "info", str(factors))
    assert json.loads(out)["adapter_args"] == {"weights": str(folder.resolve()), "classes": 3,
                                               "truncation": 0.4}
    code, _, err = run(capsys, "edit", str(factors), "--part", "0", "--appearance", "0",
                       "--alpha", "1", "--samples", "2", "--out", str(tmp_path / "e.png"))
    assert code == 0, err


def test_layers_of_a_real_stylegan2_checkpoint(capsys):
    from pathlib import Path

    path = Path(__file__).parent / "data" / "stylegan2" / "sg2_resnet_cond.pkl"
    if not path.is_file():
        pytest.skip(f"{path} is not there yet")
    code, out, err = run(capsys, "layers", "--adapter", "stylegan2", "--checkpoint", str(path),
                         "--adapter-arg", "class=1", "--adapter-arg", "truncation=0.7")
    if code == 2 and ("not implemented" in err or "not part of" in err):
        pytest.skip(err)
    assert code == 0, err
    assert "synthesis.b32.conv1" in out and "×32×32" in out and "alias b32.conv1" in out
    code, _, err = run(capsys, "layers", "--adapter", "stylegan2", "--checkpoint", str(path),
                       "--adapter-arg", "class=7")
    assert code == 2 and "classes must be an int in 0..2" in err and err.count("\n") == 1


def test_sampling_options_an_adapter_lacks_are_refused_at_once(capsys):
    from pathlib import Path

    path = Path(__file__).parent / "data" / "genforce" / "pggan32.pth"
    if not path.is_file():
        pytest.skip(f"{path} is not there yet")
    code, _, err = run(capsys, "layers", "pggan", "--checkpoint", str(path),
                       "--adapter-arg", "truncation=0.5")
    assert code == 2 and "takes no truncation" in err and err.count("\n") == 1
    code, _, err = run(capsys, "layers", "pggan", "--checkpoint", str(path),
                       "--adapter-arg", "class=1")
    assert code == 2 and "not class-conditional" in err

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
    for command in ("fit", "parts", "edit", "localize", "layers", "info", "bench", "demo"):
        assert command in out
    assert "examples:" in out and "--version" in out
    # the example edits at strengths a face takes without saturating: |α| <= 1.5 σ
    strengths = [float(a) for line in out.splitlines() if "tensorpanda edit " in line
                 for a in line.split("--alpha")[1].split("--")[0].split()]
    assert strengths and max(map(abs, strengths)) <= 1.5


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
    # σ, the unit of `edit --alpha`: the root-mean-square norm of a channel fibre
    Z = np.load(tmp_path / "z.npy")
    assert info["feature_scale"] == pytest.approx(np.sqrt((Z**2).sum(axis=1).mean()))
    code, _, err = run(capsys, "fit", "--data", str(tmp_path / "z.npy"), "--rank", "all", "3",
                       "--out", str(out_file))
    assert code == 2 and "overwrite" in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """Factors of the DCGAN-faces generator at its 8×8 layer, fitted from the command line."""
    pytest.importorskip("gan_face_generate")
    folder = tmp_path_factory.mktemp("faces")
    factors = folder / "faces.safetensors"
    code = main(["fit", "--adapter", "dcgan-faces", "--layer", "8x8", "--rank", "all", "4",
                 "--samples", "200", "--out", str(factors)])
    assert code == 0
    return factors


@pytest.mark.generator
def test_fit_writes_a_labelled_parts_figure_beside_the_factors(faces):
    from tensorpanda.app import figures

    picture = faces.with_name("faces.parts.png")
    labels = figures.labels(picture)
    # part index, method and layer, over 4 samples
    assert labels["Columns"] == "part 0 | part 1 | part 2 | part 3"
    assert "PandA (pgd)" in labels["Title"] and "dcgan-faces main.5" in labels["Title"]
    assert labels["Rows"] == "parts | sample 0 | sample 1 | sample 2 | sample 3"
    assert Image.open(picture).size[1] > 5 * 130  # 5 rows of 64×64 tiles shown twice as big


@pytest.mark.generator
def test_edit_and_localize_on_the_dcgan(capsys, faces, tmp_path):
    from tensorpanda.app import figures

    code, out, err = run(capsys, "edit", str(faces), "--part", "0", "1", "--appearance", "2",
                         "--alpha", "-1", "0", "1", "--samples", "3", "--out",
                         str(tmp_path / "e.png"))
    assert code == 0, err
    labels = figures.labels(tmp_path / "e.png")
    assert labels["Columns"] == "α = -1 | α = 0 | α = 1"
    assert "appearance 2 into parts 0, 1" in labels["Title"] and "units of σ" in labels["Title"]
    assert labels["Rows"] == "sample 0 | sample 1 | sample 2"
    code, _, err = run(capsys, "edit", str(faces), "--part", "0", "--appearance", "2",
                       "--alpha", "1", "--out", str(tmp_path / "e.gif"))
    assert code == 0, err
    assert "α = 1" in figures.labels(tmp_path / "e.gif")["comment"]
    code, _, err = run(capsys, "localize", str(faces), "--appearance", "1", "--out",
                       str(tmp_path / "s.png"))
    assert code == 0, err
    assert "saliency of appearance 1" in figures.labels(tmp_path / "s.png")["Title"]
    code, out, _ = run(capsys, "layers", "dcgan-faces")
    assert "main.5" in out and "256×8×8" in out and "(default)" in out


def _edited(path):
    """The one image of a one-sample, one-strength strip, as floats (labels cut off)."""
    from tensorpanda.app import figures

    top = 2 * (figures.FONT_SIZE + 4) + 2  # title and column labels, then the padding
    left = figures._text_width("sample 0", figures._font()[0]) + 6 + 2  # row label, padding
    return np.asarray(Image.open(path), dtype=float)[top:top + 128, left:left + 128]


@pytest.mark.generator
def test_alpha_is_in_units_of_the_feature_norm_and_raw_on_request(capsys, faces, tmp_path):
    """``--alpha 1`` is the raw edit of strength σ; ``--raw-alpha`` takes α as it is."""
    import tensorpanda as tp

    sigma = tp.feature_scale(tp.load(faces))
    common = ["--part", "1", "--appearance", "0", "--samples", "1"]
    assert run(capsys, "edit", str(faces), *common, "--alpha", "1",
               "--out", str(tmp_path / "unit.png"))[0] == 0
    assert run(capsys, "edit", str(faces), *common, "--alpha", f"{sigma!r}", "--raw-alpha",
               "--out", str(tmp_path / "raw.png"))[0] == 0
    assert run(capsys, "edit", str(faces), *common, "--alpha", "1", "--raw-alpha",
               "--out", str(tmp_path / "one.png"))[0] == 0
    unit, raw, one = (_edited(tmp_path / f"{n}.png") for n in ("unit", "raw", "one"))
    assert unit.std() > 10 and (unit < 250).mean() > 0.9  # a face, not the white margin
    assert np.abs(unit - raw).max() <= 2  # the same edit, up to rounding
    assert np.abs(unit - one).mean() > 1  # a raw 1 is σ ≈ 3.7 times weaker: another image


@pytest.mark.generator
def test_edit_and_parts_work_whatever_the_backend(capsys, faces, tmp_path):
    """The factors are read on the host: a pytorch (or jax) TENSORLY_BACKEND is no obstacle."""
    tl = pytest.importorskip("tensorly")
    pytest.importorskip("torch")
    with tl.backend_context("pytorch"):
        code, _, err = run(capsys, "edit", str(faces), "--part", "0", "--appearance", "1",
                           "--alpha", "1", "--samples", "1", "--out", str(tmp_path / "e.png"))
        assert code == 0, err
        code, _, err = run(capsys, "parts", str(faces), "--part", "0", "--samples", "1",
                           "--score-samples", "10", "--top", "1", "--out",
                           str(tmp_path / "p.png"))
        assert code == 0, err
        assert tl.get_backend() == "pytorch"


@pytest.mark.generator
@pytest.mark.parametrize("where", [["--part", "2"], ["--region", "0.3:0.55,0.2:0.8"]])
def test_parts_ranks_the_appearances_acting_on_a_part_or_region(capsys, faces, tmp_path,
                                                                where):
    import torch

    import tensorpanda as tp
    from tensorpanda.adapters import load
    from tensorpanda.app import figures
    from tensorpanda.app.cli import region_mask

    code, out, err = run(capsys, "parts", str(faces), *where, "--samples", "2",
                         "--score-samples", "40", "--top", "4", "--out", str(tmp_path / "p.png"))
    assert code == 0, err
    rows = [line.split() for line in out.splitlines() if "tensorpanda edit" in line]
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4]
    ranked, scores = [int(r[1]) for r in rows], [float(r[2]) for r in rows]
    # the same ranking as region_scores on the same 40 samples, strongest first
    fit = tp.load(faces).to_numpy()
    gan = load("dcgan-faces")
    Z = torch.cat(list(gan.features(gan.sample_latents(40, seed=0), "main.5"))).numpy()
    region = (np.asarray(tp.part_map(fit, 2)) >= 0.5 if where[0] == "--part"
              else region_mask((0.3, 0.55, 0.2, 0.8), (8, 8)))
    expected = tp.region_scores(fit, Z, region)
    assert ranked == [int(j) for j in np.argsort(-np.abs(expected))[:4]]
    np.testing.assert_allclose(scores, expected[ranked], atol=2e-3)
    # each suggested edit adds what lives there: the sign of its score
    assert all(float(r[r.index("--alpha") + 2]) * s > 0 for r, s in zip(rows, scores, strict=True))
    parts = figures.labels(tmp_path / "p.png")
    assert parts["Columns"].endswith("part 3 | region")
    ranking = figures.labels(tmp_path / "p.ranking.png")
    assert ranking["Columns"].split(" | ")[0] == "original"
    assert [c.split()[0].lstrip("+−") for c in ranking["Columns"].split(" | ")[1:]] == [
        f"a_{j}" for j in ranked]


@pytest.mark.generator
@pytest.mark.parametrize("where,message", [
    (["--part", "9"], "part index 9 is out of range"),
    (["--region", "0:1,0:1"], "covers the whole feature map"),
])
def test_parts_refuses_a_part_or_region_it_cannot_rank(capsys, faces, tmp_path, where,
                                                       message):
    code, _, err = run(capsys, "parts", str(faces), *where, "--samples", "1",
                       "--score-samples", "5", "--out", str(tmp_path / "p.png"))
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_a_region_must_be_a_box_of_fractions(capsys):
    for region in ("0.3:0.5", "0.5:0.3,0:1", "0:2,0:1", "a:b,c:d"):
        code, err = _parse_error(capsys, "parts", "f.npz", "--region", region, "--out", "p.png")
        assert code == 2 and "--region: expected" in err
    code, err = _parse_error(capsys, "parts", "f.npz", "--region", "0:1,0:1", "--part", "1",
                             "--out", "p.png")
    assert code == 2 and "not allowed with argument" in err


def test_region_mask_takes_the_cells_whose_centres_lie_inside():
    from tensorpanda.app.cli import region_mask

    mask = region_mask((0.0, 0.5, 0.25, 1.0), (4, 4))
    assert mask[:2, 1:].all() and mask.sum() == 6
    tiny = region_mask((0.1, 0.12, 0.9, 0.91), (4, 4))  # smaller than a cell: the cell under it
    assert tiny.sum() == 1 and tiny[0, 3]


def test_parts_of_factors_fitted_on_a_file(capsys, tmp_path):
    from tensorpanda.app import figures

    np.save(tmp_path / "z.npy", np.random.default_rng(0).random((30, 6, 4, 4)))
    assert run(capsys, "fit", "--data", str(tmp_path / "z.npy"), "--rank", "all", "3",
               "--out", str(tmp_path / "f.npz"), "--no-figure")[0] == 0
    assert not (tmp_path / "f.parts.png").exists()
    code, _, err = run(capsys, "parts", str(tmp_path / "f.npz"), "--out", str(tmp_path / "p.png"))
    assert code == 0, err
    assert figures.labels(tmp_path / "p.png")["Rows"] == "parts"  # no generator: no samples
    code, _, err = run(capsys, "parts", str(tmp_path / "f.npz"), "--part", "0", "--out",
                       str(tmp_path / "q.png"))
    assert code == 2 and "pass --adapter" in err and err.count("\n") == 1


def test_fit_writes_the_parts_figure_and_checks_it_first(capsys, tmp_path, monkeypatch):
    from tensorpanda.app import figures

    np.save(tmp_path / "z.npy", np.random.default_rng(0).random((30, 6, 4, 4)))
    code, out, err = run(capsys, "fit", "--data", str(tmp_path / "z.npy"), "--rank", "all", "3",
                         "--out", str(tmp_path / "f.safetensors"))
    assert code == 0 and "f.parts.png" in out, err
    assert "PandA (pgd) parts, R_S = 3" in figures.labels(tmp_path / "f.parts.png")["Title"]
    (tmp_path / "g.parts.png").write_text("mine")
    _no_fit(monkeypatch)
    code, _, err = run(capsys, "fit", "--data", str(tmp_path / "z.npy"), "--rank", "all", "3",
                       "--out", str(tmp_path / "g.npz"))
    assert code == 2 and "g.parts.png" in err and "--overwrite" in err, err
    assert (tmp_path / "g.parts.png").read_text() == "mine" and not (tmp_path / "g.npz").exists()


def test_fit_on_positions_without_a_grid_writes_no_figure(capsys, tmp_path):
    np.save(tmp_path / "z.npy", np.random.default_rng(0).random((30, 6, 10)))  # (N, C, S)
    code, out, err = run(capsys, "fit", "--data", str(tmp_path / "z.npy"), "--rank", "all", "2",
                         "--out", str(tmp_path / "f.npz"))
    assert code == 0 and "no parts figure" in out, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npz", "z.npy"]


def test_edit_asks_for_raw_alpha_when_the_factors_lack_their_scale(capsys, tmp_path):
    import tensorpanda as tp

    fit = tp.tucker2(np.random.default_rng(0).random((30, 6, 4, 4)), (None, 2))
    del fit.info["sq_norm"]
    fit.info.update(adapter="dcgan-faces", layer="main.5")
    fit.save(tmp_path / "old.npz")
    code, _, err = run(capsys, "edit", str(tmp_path / "old.npz"), "--part", "0",
                       "--appearance", "0", "--alpha", "1", "--out", str(tmp_path / "e.png"))
    assert code == 2 and "--raw-alpha" in err and err.count("\n") == 1, err


def test_feature_scale_is_the_rms_norm_of_a_channel_fibre():
    """The one definition of α's unit, shared by the CLI, the API and the demo."""
    import tensorpanda as tp

    Z = np.random.default_rng(0).standard_normal((30, 6, 4, 5)) * 3.0
    rms = np.sqrt((np.linalg.norm(Z, axis=1) ** 2).mean())
    fit = tp.tucker2(Z, (None, 3), random_state=0)
    assert tp.feature_scale(Z) == pytest.approx(rms) == pytest.approx(tp.feature_scale(fit))
    # α = 1 changes the fibre at the region's peak by one σ, whatever the appearance's norm
    delta = np.asarray(tp.edit_direction(fit, 1, 2, alpha=1.0, units="feature_norm"))
    assert np.linalg.norm(delta, axis=0).max() == pytest.approx(rms)
    with pytest.raises(ValueError, match="units must be one of"):
        tp.edit_direction(fit, 1, 2, units="pixels")
    with pytest.raises(ValueError, match="all zero"):
        tp.feature_scale(np.zeros((2, 3, 4, 4)))


def test_version_and_verbose_anywhere(capsys, tmp_path):
    import tensorpanda

    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"tensorpanda {tensorpanda.__version__}"
    np.save(tmp_path / "z.npy", np.random.default_rng(0).random((20, 6, 4, 4)))
    argv = ["--data", str(tmp_path / "z.npy"), "--rank", "all", "2", "--no-figure"]
    # in a fresh interpreter: logging is configured once per process
    for position in ("before", "after"):
        out = tmp_path / f"{position}.npz"
        command = ["-v", "fit", *argv, "--out", str(out)] if position == "before" else [
            "fit", *argv, "--out", str(out), "-v"]
        done = subprocess.run([sys.executable, "-m", "tensorpanda.app.cli", *command],
                              capture_output=True, text=True)
        assert done.returncode == 0 and "INFO tensorpanda" in done.stderr, done.stderr
    quiet = subprocess.run([sys.executable, "-m", "tensorpanda.app.cli", "fit", *argv, "--out",
                            str(tmp_path / "q.npz")], capture_output=True, text=True)
    assert quiet.returncode == 0 and "INFO" not in quiet.stderr


def test_results_and_estimators_print_in_one_short_line():
    import tensorpanda as tp

    Z = np.random.default_rng(0).random((40, 6, 4, 4))
    fit = tp.tucker2(Z, (None, 3), solver="hals", random_state=0)
    text = repr(fit)
    assert "\n" not in text and len(text) < 250 and "array" not in text
    for piece in ("A: 6×6", "P: 16×3 (parts 3×4×4)", "model='panda'", "solver='hals'",
                  "objective=", "converged="):
        assert piece in text
    estimator = tp.Tucker2((None, 3), solver="mu").fit(Z)
    assert repr(estimator) == "Tucker2(rank=(None, 3), solver='mu')"
    assert "array" not in repr(estimator.factorization_)


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
    # the output is checked first, before the factors and the generator are read
    assert code == 2 and "--out must end in .png or .gif, not 'x.jpg'" in err


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
        (["layers", "stylegan2"], "pass --checkpoint PATH"),
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


# -- issue 12: bad inputs at the command line -----------------------------------------------
def _parse_error(capsys, *argv):
    """An argparse refusal: exit code 2 and its message."""
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    return caught.value.code, capsys.readouterr().err


@pytest.mark.parametrize("device,message", [
    ("bogus", "--device bogus is not a torch device"),
    ("cuda:x", "is not a torch device"),
    ("meta", "holds no weights"),
])
def test_a_bad_device_is_refused_before_anything_loads(capsys, device, message):
    # the checkpoint does not exist: the device is refused first, not the checkpoint blamed
    code, _, err = run(capsys, "layers", "stylegan2", "--checkpoint", "missing.pkl",
                       "--device", device)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert "Traceback" not in err and "checkpoint" not in err


def test_a_missing_gpu_is_named_not_the_checkpoint(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = run(capsys, "fit", "--adapter", "stylegan2", "--checkpoint", "missing.pkl",
                       "--rank", "all", "2", "--out", "o.npz", "--device", "cuda")
    assert code == 2 and "--device cuda: no CUDA GPU is available" in err, err
    assert "use --device cpu" in err and err.count("\n") == 1


@pytest.mark.parametrize("content,message", [
    ("truncated", "truncated .npy file"),
    ("text", "not a readable .npy file"),
])
def test_a_broken_npy_is_named_with_its_problem(capsys, tmp_path, content, message):
    path = tmp_path / "z.npy"
    np.save(path, np.ones((40, 6, 4, 4)))
    if content == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    else:
        path.write_text("hello")
    code, _, err = run(capsys, "fit", "--data", str(path), "--rank", "all", "2", "--out",
                       str(tmp_path / "f.npz"))
    assert code == 2 and message in err and str(path) in err and err.count("\n") == 1, err
    assert "mmap length" not in err


def _no_fit(monkeypatch):
    """Make any fit fail loudly: the outputs must be refused before it starts."""
    import tensorpanda as tp

    def boom(*args, **kwargs):
        raise AssertionError("the fit ran before the output was checked")

    monkeypatch.setattr(tp, "tucker2", boom)


@pytest.mark.parametrize("out,message", [
    ("exists.npz", "exists; pass --overwrite to replace it"),
    ("factors.txt", "--out must end in .safetensors or .npz"),
    ("no-folder/f.npz", "does not exist"),
    ("folder.npz", "is a folder"),
    ("plain/f.npz", "is a file, not a folder"),
])
def test_fit_checks_its_output_before_any_work(capsys, tmp_path, monkeypatch, out, message):
    np.save(tmp_path / "z.npy", np.ones((10, 6, 4, 4)))
    (tmp_path / "exists.npz").write_text("mine")
    (tmp_path / "folder.npz").mkdir()
    (tmp_path / "plain").write_text("a file")
    _no_fit(monkeypatch)
    code, _, err = run(capsys, "fit", "--data", str(tmp_path / "z.npy"), "--rank", "all", "2",
                       "--out", str(tmp_path / out))
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert (tmp_path / "exists.npz").read_text() == "mine"


def test_fit_with_an_adapter_checks_its_output_before_loading(capsys, tmp_path):
    (tmp_path / "f.npz").write_text("mine")
    # a missing checkpoint would be the first error if the generator were built first
    code, _, err = run(capsys, "fit", "--adapter", "stylegan2", "--checkpoint", "missing.pkl",
                       "--rank", "all", "2", "--out", str(tmp_path / "f.npz"))
    assert code == 2 and "pass --overwrite" in err and "overwrite=True" not in err, err


@pytest.mark.parametrize("command,out,message", [
    ("edit", "e.png", "pass --overwrite"),
    ("edit", "e.bmp", "--out must end in .png or .gif"),
    ("edit", "nowhere/e.gif", "does not exist"),
    ("localize", "s.png", "pass --overwrite"),
    ("localize", "s.txt", "--out must end in an image suffix"),
])
def test_edit_and_localize_check_their_output_first(capsys, tmp_path, command, out, message):
    (tmp_path / "e.png").write_text("mine")
    (tmp_path / "s.png").write_text("mine")
    extra = ["--part", "0", "--alpha", "1"] if command == "edit" else []
    # the factors file does not exist: the output is checked before it is read
    code, _, err = run(capsys, command, str(tmp_path / "missing.npz"), "--appearance", "0",
                       *extra, "--out", str(tmp_path / out))
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert (tmp_path / "e.png").read_text() == "mine"


def test_demo_refuses_a_file_as_its_folder(capsys, tmp_path):
    (tmp_path / "out").write_text("mine")
    code, _, err = run(capsys, "demo", "--out", str(tmp_path / "out"), "--samples", "10")
    assert code == 2 and "is a file" in err and err.count("\n") == 1, err
    assert "overwrite=True" not in err


def test_bench_markdown_is_not_overwritten_without_the_flag(capsys, tmp_path, monkeypatch):
    calls = []
    harness = types.ModuleType("tensorpanda.benchmarks.solvers")
    harness.main = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "tensorpanda.benchmarks.solvers", harness)
    table = tmp_path / "bench.md"
    table.write_text("my tables")
    code, _, err = run(capsys, "bench", "--smoke", "--markdown", str(table))
    assert code == 2 and "pass --overwrite" in err and calls == [], err
    assert table.read_text() == "my tables"
    code, _, err = run(capsys, "bench", "--smoke", "--markdown", str(tmp_path / "no" / "b.md"))
    assert code == 2 and "does not exist" in err and calls == []
    code, _, _ = run(capsys, "bench", "--smoke", "--markdown", str(table), "--overwrite")
    assert code == 0 and calls == [["--smoke", "--markdown", str(table), "--overwrite"]]


def test_the_benchmark_script_refuses_an_existing_markdown_before_running(capsys, tmp_path,
                                                                         monkeypatch):
    from tensorpanda.benchmarks import solvers

    def boom(*args):
        raise AssertionError("the benchmark ran before the output was checked")

    for key, (title, _) in list(solvers.SECTIONS.items()):
        monkeypatch.setitem(solvers.SECTIONS, key, (title, boom))
    table = tmp_path / "bench.md"
    table.write_text("my tables")
    with pytest.raises(SystemExit) as caught:
        solvers.main(["--smoke", "--markdown", str(table)])
    assert caught.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert table.read_text() == "my tables"


def test_messages_speak_the_command_lines_language():
    from tensorpanda.app.cli import cli_language

    assert cli_language("f.npz exists; pass overwrite=True to replace it") == (
        "f.npz exists; pass --overwrite to replace it")
    assert cli_language("stylegan2: pass checkpoint=PATH, a file") == (
        "stylegan2: pass --checkpoint PATH, a file")
    assert cli_language("device 'cuda': no GPU; use device 'cpu'") == (
        "--device cuda: no GPU; use --device cpu")
    assert cli_language("stopped at max_iter=5 before the objective settled to tol=1e-06; "
                        "raise max_iter or tol") == (
        "stopped at --max-iter 5 before the objective settled to --tol 1e-06; "
        "raise --max-iter or --tol")


def test_warnings_speak_the_command_lines_language(capsys, tmp_path):
    np.save(tmp_path / "z.npy", np.random.default_rng(0).random((20, 6, 4, 4)))
    code, _, err = run(capsys, "fit", "--data", str(tmp_path / "z.npy"), "--rank", "all", "2",
                       "--max-iter", "2", "--out", str(tmp_path / "f.npz"))
    assert code == 0 and "warning: " in err and "--max-iter" in err and "max_iter" not in err


def test_info_summarises_arrays_never_as_truncated_text():
    from tensorpanda.app.cli import _summary

    out = _summary({"ids": np.arange(2000), "few": np.arange(3), "long": list(range(100)),
                    "x": np.float32(0.5), "bad": float("nan"), "nested": [np.int64(2)],
                    "mixed": np.array([1.0, np.inf] + [0.0] * 20)})
    assert out["ids"] == {"shape": [2000], "dtype": "int64", "min": 0, "max": 1999}
    assert out["few"] == [0, 1, 2] and out["x"] == 0.5 and out["bad"] == "nan"
    assert out["long"] == {"shape": [100], "dtype": "int64", "min": 0, "max": 99}
    assert out["nested"] == [2]
    assert out["mixed"] == {"shape": [22], "dtype": "float64", "min": 0.0, "max": 1.0,
                            "non_finite": 1}
    json.dumps(out, allow_nan=False)  # valid JSON


def test_info_prints_valid_json_with_a_history_summary(capsys, tmp_path):
    np.save(tmp_path / "z.npy", np.random.default_rng(0).random((20, 6, 4, 4)))
    run(capsys, "fit", "--data", str(tmp_path / "z.npy"), "--rank", "all", "2", "--out",
        str(tmp_path / "f.npz"))
    code, out, _ = run(capsys, "info", str(tmp_path / "f.npz"))
    info = json.loads(out)
    assert code == 0 and info["history"]["iterations"] >= 1 and "..." not in out


@pytest.mark.parametrize("alpha", ["nan", "inf", "-inf"])
def test_edit_refuses_non_finite_strengths(capsys, alpha):
    code, err = _parse_error(capsys, "edit", "f.npz", "--part", "0", "--appearance", "0",
                             f"--alpha={alpha}", "--out", "e.png")
    assert code == 2 and "--alpha: expected a finite number" in err


@pytest.mark.parametrize("argv,message", [
    (["fit", "--data", "z.npy", "--rank", "all", "2", "--out", "o.npz", "--samples", "0"],
     "--samples: expected a positive integer"),
    (["fit", "--data", "z.npy", "--rank", "all", "2", "--out", "o.npz", "--batch-size", "-1"],
     "--batch-size: expected a positive integer"),
    (["fit", "--data", "z.npy", "--rank", "all", "2", "--out", "o.npz", "--tol", "nan"],
     "--tol: expected a finite number"),
    (["localize", "f.npz", "--appearance", "0", "--out", "s.png", "--threshold", "2"],
     "--threshold: expected a number in [0, 1]"),
])
def test_bad_numbers_are_refused_by_the_parser(capsys, argv, message):
    code, err = _parse_error(capsys, *argv)
    assert code == 2 and message in err

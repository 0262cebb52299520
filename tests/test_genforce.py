"""genforce checkpoints (PGGAN, StyleGAN, StyleGAN2) against the official genforce outputs.

The files in tests/data/genforce/ were written by tests/fixtures/make_genforce_fixtures.py
with genforce's own classes and random weights; the .npz files hold genforce's images
for fixed z (stored constant noise). Our networks must reproduce them within 1e-3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tensorpanda.adapters import Trace
from tensorpanda.adapters.pggan import PGGANGenerator
from tensorpanda.adapters.stylegan import StyleGANGenerator
from tensorpanda.adapters.stylegan2 import StyleGAN2Generator

pytestmark = [pytest.mark.backend_independent, pytest.mark.usefixtures("one_torch_thread")]

DATA = Path(__file__).parent / "data" / "genforce"
PGGAN = DATA / "pggan32.pth"
STYLEGAN = DATA / "stylegan128.pth"
STYLEGAN2 = DATA / "stylegan2_32.pth"
TOL = 1e-3




def _max_abs(a: torch.Tensor, b: np.ndarray) -> float:
    return float(np.abs(a.detach().numpy() - b).max())


@pytest.fixture(scope="module")
def pggan():
    return PGGANGenerator.from_checkpoint(PGGAN)


@pytest.fixture(scope="module")
def stylegan():
    return StyleGANGenerator.from_checkpoint(STYLEGAN)


@pytest.fixture(scope="module")
def stylegan2():
    return StyleGAN2Generator.from_checkpoint(STYLEGAN2)


# -- images match genforce ------------------------------------------------------------


def test_pggan_matches_genforce(pggan):
    ref = np.load(DATA / "pggan32.npz", allow_pickle=False)
    assert (pggan.z_dim, pggan.img_resolution, pggan.channels) == (32, 32, [32, 32, 16, 8])
    with torch.no_grad():
        image = pggan(torch.from_numpy(ref["z"]))
    assert image.shape == (3, 3, 32, 32)
    assert _max_abs(image, ref["image"]) < TOL


def test_stylegan_matches_genforce(stylegan):
    ref = np.load(DATA / "stylegan128.npz", allow_pickle=False)
    G = stylegan
    assert (G.z_dim, G.w_dim, G.num_ws, G.img_resolution) == (32, 32, 12, 128)
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        assert _max_abs(G.mapping(z), ref["ws"]) < TOL
        assert _max_abs(G(z), ref["image_psi1"]) < TOL
        assert _max_abs(G(z, truncation_psi=0.7), ref["image_psi07"]) < TOL
        cut = G(z, truncation_psi=0.7, truncation_cutoff=4)
        assert _max_abs(cut, ref["image_psi07_cut4"]) < TOL
    # The truncated images really differ from the plain ones.
    assert np.abs(ref["image_psi07"] - ref["image_psi1"]).max() > 0.1


def test_stylegan_fused_upsampling_from_128px(stylegan):
    ups = [stylegan.get_submodule(f"synthesis.layer{2 * b}") for b in range(1, 6)]
    assert [layer.fused for layer in ups] == [False, False, False, False, True]


def test_stylegan2_matches_genforce(stylegan2):
    ref = np.load(DATA / "stylegan2_32.npz", allow_pickle=False)
    G = stylegan2
    assert (G.z_dim, G.w_dim, G.num_ws, G.img_resolution) == (32, 32, 8, 32)
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        assert _max_abs(G.mapping(z), ref["ws"]) < TOL
        assert _max_abs(G(z), ref["image_psi1"]) < TOL
        assert _max_abs(G(z, truncation_psi=0.7), ref["image_psi07"]) < TOL
        cut = G(z, truncation_psi=0.7, truncation_cutoff=4)
        assert _max_abs(cut, ref["image_psi07_cut4"]) < TOL


def test_pggan_fused_upsampling_matches_genforce():
    ref = np.load(DATA / "pggan_fused16.npz", allow_pickle=False)
    G = PGGANGenerator.from_checkpoint(DATA / "pggan_fused16.pth")
    assert G.channels == [32, 16, 8] and G.layer2.fused
    with torch.no_grad():
        assert _max_abs(G(torch.from_numpy(ref["z"])), ref["image"]) < TOL


@pytest.mark.parametrize(
    "name, cls", [("stylegan_cond16", StyleGANGenerator),
                  ("stylegan2ada_cond16", StyleGAN2Generator)],
)
def test_conditional_matches_genforce(name, cls):
    ref = np.load(DATA / f"{name}.npz", allow_pickle=False)
    G = cls.from_checkpoint(DATA / f"{name}.pth")
    assert (G.z_dim, G.c_dim, G.img_resolution) == (16, 4, 16)
    z, c = torch.from_numpy(ref["z"]), torch.from_numpy(ref["label"])
    with torch.no_grad():
        assert _max_abs(G(z, c), ref["image_psi1"]) < TOL
        assert _max_abs(G(z, c, truncation_psi=0.7), ref["image_psi07"]) < TOL
        with pytest.raises(ValueError, match="conditional"):
            G(z)


def test_stylegan_per_layer_w_and_dense_input_match_genforce():
    ref = np.load(DATA / "stylegan_perlayer16.npz", allow_pickle=False)
    G = StyleGANGenerator.from_checkpoint(DATA / "stylegan_perlayer16.pth")
    assert not G.mapping.repeat_w and G.synthesis.layer0.kind == "dense"
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        assert _max_abs(G.mapping(z), ref["ws"]) < TOL
        assert _max_abs(G(z), ref["image_psi1"]) < TOL
        assert _max_abs(G(z, truncation_psi=0.7), ref["image_psi07"]) < TOL
        cut = G(z, truncation_psi=0.7, truncation_cutoff=4)
        assert _max_abs(cut, ref["image_psi07_cut4"]) < TOL


def test_generator_smooth_is_preferred_and_generator_is_the_fallback(tmp_path, pggan):
    ckpt = torch.load(PGGAN, weights_only=True)
    z = torch.from_numpy(np.load(DATA / "pggan32.npz")["z"])
    # The fixture's "generator" holds other weights than "generator_smooth".
    path = tmp_path / "raw.pth"
    torch.save({"generator": ckpt["generator"]}, path)
    with torch.no_grad():
        raw = PGGANGenerator.from_checkpoint(path)(z)
        assert not torch.allclose(raw, pggan(z))
    # A training checkpoint nests the models; DataParallel prefixes "module.".
    path = tmp_path / "train.pth"
    smooth = {f"module.{k}": v for k, v in ckpt["generator_smooth"].items()}
    torch.save({"models": {"generator": ckpt["generator"], "generator_smooth": smooth},
                "running_metadata": {"iter": 10}}, path)
    with torch.no_grad():
        assert torch.equal(PGGANGenerator.from_checkpoint(path)(z), pggan(z))
    # A bare state dict.
    path = tmp_path / "bare.pth"
    torch.save(ckpt["generator_smooth"], path)
    with torch.no_grad():
        assert torch.equal(PGGANGenerator.from_checkpoint(path)(z), pggan(z))


# -- hooks: a zero edit is exact, an edit propagates ----------------------------------


def _check_hooks(G, run):
    with torch.no_grad():
        plain = run()
        for name, path in G.feature_layers.items():
            with Trace(G, path, edit_output=lambda out: out + torch.zeros_like(out)) as t:
                same = run()
            assert t.calls == 1, name
            assert torch.equal(same, plain), f"zero edit at {name} changed the image"
            with Trace(G, path, edit_output=lambda out: out + 0.5):
                moved = run()
            assert not torch.allclose(moved, plain), f"edit at {name} did not propagate"


def test_pggan_zero_edit_is_exact(pggan):
    assert list(pggan.feature_layers) == [
        f"b{r}.conv{j}" for r in (4, 8, 16, 32) for j in (0, 1)]
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(3))
    _check_hooks(pggan, lambda: pggan(z))


def test_stylegan_zero_edit_is_exact(stylegan):
    assert stylegan.feature_layers["b4.conv0"] == "synthesis.layer0"
    assert len(stylegan.feature_layers) == stylegan.num_ws
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(3))
    _check_hooks(stylegan, lambda: stylegan(z, truncation_psi=0.7))


def test_stylegan2_zero_edit_is_exact(stylegan2):
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(3))
    _check_hooks(stylegan2, lambda: stylegan2(z))


def test_stylegan_style_affines(stylegan):
    affines = stylegan.style_affines()
    assert [(name, i) for name, i, _ in affines] == [
        (name, i) for i, name in enumerate(stylegan.feature_layers)]
    name, index, weight = affines[-1]
    assert weight.shape == (2 * stylegan.channels[-1], stylegan.w_dim)
    layer = stylegan.get_submodule(stylegan.feature_layers[name])
    assert torch.allclose(weight, layer.style.weight / stylegan.w_dim**0.5)


def test_stylegan_noise_is_stored_constant(stylegan):
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.equal(stylegan(z), stylegan(z))
        ws = stylegan.mapping(z)
        assert torch.equal(stylegan.synthesis(ws), stylegan(z))
        assert not torch.equal(stylegan.synthesis(ws, noise_mode="none"), stylegan(z))
        stylegan.synthesis(ws, noise_mode="const")


@pytest.mark.parametrize("arch, path, layer", [("pggan", PGGAN, "b16.conv0"),
                                               ("stylegan", STYLEGAN, "b32.conv1")])
def test_adapters_load_genforce_files(arch, path, layer):
    from tensorpanda.adapters import load

    gan = load(arch, checkpoint=path)
    latents = gan.sample_latents(2, seed=0)
    plain = gan.generate(latents)
    side = 32 if arch == "pggan" else 128
    assert plain.shape == (2, 3, side, side)
    assert 0 <= float(plain.min()) and float(plain.max()) <= 1
    shape = gan.layers[gan.aliases[layer]] if layer in gan.aliases else gan.layers[layer]
    assert torch.equal(gan.generate(latents, layer, edit=torch.zeros(shape)), plain)


# -- clear errors ------------------------------------------------------------------------


def _state(path: Path) -> dict[str, torch.Tensor]:
    return dict(torch.load(path, weights_only=True)["generator_smooth"])


def _save(tmp_path: Path, state: dict[str, torch.Tensor], name: str = "bad.pth") -> Path:
    path = tmp_path / name
    torch.save({"generator_smooth": state}, path)
    return path


def test_truncated_file(tmp_path):
    path = tmp_path / "truncated.pth"
    data = PGGAN.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    for cls in (PGGANGenerator, StyleGANGenerator, StyleGAN2Generator):
        with pytest.raises(ValueError, match="truncated") as info:
            cls.from_checkpoint(path)
        assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        PGGANGenerator.from_checkpoint(tmp_path / "nothing.pth")


@pytest.mark.parametrize(
    "cls, path, found",
    [
        (PGGANGenerator, STYLEGAN, "StyleGAN checkpoint, not PGGAN"),
        (StyleGANGenerator, PGGAN, "PGGAN checkpoint, not StyleGAN"),
        (StyleGANGenerator, STYLEGAN2, "StyleGAN2 checkpoint, not StyleGAN"),
        (StyleGAN2Generator, PGGAN, "PGGAN checkpoint, not StyleGAN2"),
        (PGGANGenerator, Path(__file__).parent / "data" / "rosinality" / "stylegan2_32.pt",
         "rosinality"),
    ],
)
def test_other_architecture(cls, path, found):
    with pytest.raises(ValueError, match=found) as info:
        cls.from_checkpoint(path)
    assert str(path) in str(info.value)


def test_nvlabs_pickle_is_named():
    path = Path(__file__).parent / "data" / "stylegan2" / "sg2_orig_uncond.pkl"
    if not path.is_file():
        pytest.skip("the NVlabs StyleGAN2 fixture is not there")
    for cls in (PGGANGenerator, StyleGANGenerator):
        with pytest.raises(ValueError, match="NVlabs network pickle") as info:
            cls.from_checkpoint(path)
        assert str(path) in str(info.value)


def test_stylegan2_reader_refuses_stylegan(tmp_path):
    from tensorpanda.adapters.genforce import read_stylegan2

    with pytest.raises(ValueError, match="StyleGAN checkpoint, not StyleGAN2"):
        read_stylegan2(STYLEGAN)


def test_not_a_generator(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"generator_smooth": {"fc.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(ValueError, match="not a genforce PGGAN, StyleGAN or StyleGAN2"):
        PGGANGenerator.from_checkpoint(path)


@pytest.mark.parametrize(
    "cls, source, key",
    [
        (PGGANGenerator, PGGAN, "layer3.bias"),
        (StyleGANGenerator, STYLEGAN, "synthesis.layer5.style.bias"),
        (StyleGAN2Generator, STYLEGAN2, "synthesis.layer3.noise_strength"),
    ],
)
def test_missing_key(tmp_path, cls, source, key):
    state = _state(source)
    del state[key]
    path = _save(tmp_path, state)
    with pytest.raises(ValueError, match="missing") as info:
        cls.from_checkpoint(path)
    assert str(path) in str(info.value)
    assert key.split(".")[-1] in str(info.value)


@pytest.mark.parametrize(
    "cls, source", [(PGGANGenerator, PGGAN), (StyleGANGenerator, STYLEGAN),
                    (StyleGAN2Generator, STYLEGAN2)],
)
def test_extra_key(tmp_path, cls, source):
    state = _state(source)
    state["synthesis.layer1.extra_weight"] = torch.zeros(3)
    path = _save(tmp_path, state)
    with pytest.raises(ValueError, match="unexpected keys") as info:
        cls.from_checkpoint(path)
    assert str(path) in str(info.value) and "extra_weight" in str(info.value)


def test_misshaped_key(tmp_path):
    state = _state(STYLEGAN)
    state["synthesis.layer3.weight"] = torch.zeros(32, 32, 1, 1)
    path = _save(tmp_path, state)
    with pytest.raises(ValueError, match="synthesis.layer3.weight has shape"):
        StyleGANGenerator.from_checkpoint(path)


def test_gap_in_pggan_blocks(tmp_path):
    state = {k: v for k, v in _state(PGGAN).items() if not k.startswith("output1.")}
    with pytest.raises(ValueError, match=r"indices are \[0, 2, 3\]"):
        PGGANGenerator.from_checkpoint(_save(tmp_path, state))


@pytest.mark.parametrize(
    "cls, source, key",
    [
        (StyleGANGenerator, STYLEGAN, "synthesis.layer11.apply_noise.noise"),
        (StyleGAN2Generator, STYLEGAN2, "synthesis.layer6.noise"),
    ],
)
def test_non_power_of_two_resolution(tmp_path, cls, source, key):
    state = _state(source)
    state[key] = torch.zeros(1, 1, 48, 48)
    path = _save(tmp_path, state)
    with pytest.raises(ValueError, match="power of two") as info:
        cls.from_checkpoint(path)
    assert str(path) in str(info.value) and "48" in str(info.value)


def test_non_power_of_two_constructor():
    with pytest.raises(ValueError, match="power of two"):
        PGGANGenerator(z_dim=8, img_resolution=48)
    with pytest.raises(ValueError, match="power of two"):
        StyleGANGenerator(z_dim=8, w_dim=8, img_resolution=24)


def test_growing_snapshot_is_refused(tmp_path):
    state = _state(PGGAN)
    state["lod"] = torch.tensor(0.5)
    with pytest.raises(ValueError, match="lod=0.5"):
        PGGANGenerator.from_checkpoint(_save(tmp_path, state))

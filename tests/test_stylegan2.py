"""StyleGAN2Generator against the official stylegan2-ada-pytorch outputs, hooks, bad files.

tests/data/stylegan2/<name>.pkl are real network pickles written by the official code on
random weights, <name>.npz its G_ema outputs for fixed latents (constant noise, psi = 1
and 0.7); see tests/fixtures/make_stylegan2_fixtures.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_nvlabs_pickle import replace_record, write_network_pickle  # noqa: E402

from tensorpanda.adapters import Trace  # noqa: E402
from tensorpanda.adapters.nvlabs_pickle import load_network_pickle  # noqa: E402
from tensorpanda.adapters.stylegan2 import StyleGAN2Generator  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DATA = Path(__file__).parent / "data" / "stylegan2"
NAMES = ["sg2_skip_uncond", "sg2_resnet_cond", "sg2_orig_uncond", "sg3repo_stylegan2"]
TOLERANCE = 1e-3

_CACHE: dict[str, StyleGAN2Generator] = {}


def _generator(name: str) -> StyleGAN2Generator:
    if name not in _CACHE:
        _CACHE[name] = StyleGAN2Generator.from_checkpoint(DATA / f"{name}.pkl")
    return _CACHE[name]


def _reference(name: str):
    ref = np.load(DATA / f"{name}.npz", allow_pickle=False)
    z = torch.from_numpy(ref["z"])
    c = torch.from_numpy(ref["c"]) if "c" in ref.files else None
    return ref, z, c


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_matches_official_outputs(name, psi):
    G = _generator(name)
    ref, z, c = _reference(name)
    tag = f"psi{round(psi * 100):03d}"
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=psi)
        img = G.synthesis(ws)
        img_forward = G(z, c, truncation_psi=psi)
    np.testing.assert_allclose(ws.numpy(), ref[f"ws_{tag}"], rtol=0, atol=1e-5)
    assert img.shape == ref[f"img_{tag}"].shape
    assert np.abs(img.numpy() - ref[f"img_{tag}"]).max() < TOLERANCE
    assert torch.equal(img, img_forward)


def test_attributes_and_loading_state():
    G = _generator("sg2_skip_uncond")
    assert (G.z_dim, G.c_dim, G.w_dim, G.num_ws) == (32, 0, 32, 8)
    assert (G.img_resolution, G.img_channels) == (32, 3)
    assert not G.training
    assert not any(p.requires_grad for p in G.parameters())
    cond = _generator("sg2_resnet_cond")
    assert cond.c_dim == 3
    with pytest.raises(ValueError, match="class-conditional"):
        cond.mapping(torch.zeros(1, 32))


def test_truncation():
    G = _generator("sg2_skip_uncond")
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        w_avg = G.mapping.w_avg
        ws = G.mapping(z)
        assert torch.equal(ws, ws[:, :1].expand_as(ws))  # broadcast: one w per sample
        assert torch.allclose(G.mapping(z, truncation_psi=0.0), w_avg.expand_as(ws))
        half = G.mapping(z, truncation_psi=0.5)
        assert torch.allclose(half, w_avg + 0.5 * (ws - w_avg), atol=1e-6)
        cut = G.mapping(z, truncation_psi=0.5, truncation_cutoff=3)
        assert torch.allclose(cut[:, :3], half[:, :3]) and torch.equal(cut[:, 3:], ws[:, 3:])


def test_deterministic_constant_noise():
    G = _generator("sg2_skip_uncond")
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        assert torch.equal(G.synthesis(ws), G.synthesis(ws))
        assert not torch.equal(G.synthesis(ws), G.synthesis(ws, noise_mode="none"))


def _expected_layers(G):
    layers = {"b4.conv1": (G.synthesis.b4.conv1.weight.shape[0], 4)}
    for res in G.synthesis.block_resolutions[1:]:
        channels = getattr(G.synthesis, f"b{res}").conv1.weight.shape[0]
        layers[f"b{res}.conv0"] = layers[f"b{res}.conv1"] = (channels, res)
    return layers


@pytest.mark.parametrize("name", NAMES)
def test_feature_capture_and_zero_edit_is_bit_identical(name):
    G = _generator(name)
    _, z, c = _reference(name)
    expected = _expected_layers(G)
    assert set(G.feature_layers) == set(expected)
    with torch.no_grad():
        plain = G(z, c)
        for friendly, path in G.feature_layers.items():
            with Trace(G, path, retain_output=True) as trace:
                G(z, c)
            channels, res = expected[friendly]
            assert trace.calls == 1
            assert trace.output.shape == (z.shape[0], channels, res, res)
            with Trace(G, path, edit_output=lambda out: out + torch.zeros_like(out)):
                edited = G(z, c)
            assert torch.equal(edited, plain), friendly
            with Trace(G, path, edit_output=lambda out: out * 0.5):
                changed = G(z, c)
            assert not torch.equal(changed, plain), friendly


def test_edit_reaches_the_same_blocks_torgb():
    """A hooked conv1 output must feed its block's toRGB (the skip path PandA once lost)."""
    G = _generator("sg2_skip_uncond")
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        with Trace(G, "synthesis.b8.torgb", retain_output=True) as rgb:
            G(z)
        plain_rgb = rgb.output
        with Trace(G, "synthesis.b8.torgb", retain_output=True) as rgb, \
                Trace(G, G.feature_layers["b8.conv1"], edit_output=lambda out: out * 0):
            G(z)
    assert not torch.equal(rgb.output, plain_rgb)
    # Zero features: the toRGB output is its bias only.
    bias = G.synthesis.b8.torgb.bias.reshape(1, -1, 1, 1).expand_as(plain_rgb)
    assert torch.allclose(rgb.output, bias)


def test_style_affines():
    G = _generator("sg2_skip_uncond")
    affines = G.style_affines()
    assert [name for name, _, _ in affines] == list(G.feature_layers)
    assert [index for _, index, _ in affines] == [0, 1, 2, 3, 4, 5, 6]
    for name, _, weight in affines:
        layer = G.get_submodule(G.feature_layers[name])
        assert weight.shape == (layer.weight.shape[1], G.w_dim)
        assert torch.allclose(weight, layer.affine.weight / math.sqrt(G.w_dim))
    # The index is the w each layer reads: changing ws there changes that layer only.
    ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(3)))
    bumped = ws.clone()
    bumped[:, 3] += 1.0
    with torch.no_grad():
        with Trace(G, G.feature_layers["b16.conv0"], retain_output=True) as a:
            G.synthesis(ws)
        with Trace(G, G.feature_layers["b16.conv0"], retain_output=True) as b:
            G.synthesis(bumped)
        with Trace(G, G.feature_layers["b8.conv1"], retain_output=True) as c0:
            G.synthesis(ws)
        with Trace(G, G.feature_layers["b8.conv1"], retain_output=True) as c1:
            G.synthesis(bumped)
    assert not torch.equal(a.output, b.output)
    assert torch.equal(c0.output, c1.output)


def test_random_init_generator_and_errors():
    G = StyleGAN2Generator(16, 0, 16, 16, 3, mapping_kwargs={"num_layers": 2},
                           synthesis_kwargs={"channel_base": 128, "channel_max": 32})
    assert tuple(G(torch.randn(2, 16)).shape) == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Generator(16, 0, 16, 24, 3)
    with pytest.raises(ValueError, match=r"z must have shape \(N, 16\)"):
        G.mapping(torch.zeros(2, 8))
    with pytest.raises(ValueError, match=r"ws must have shape"):
        G.synthesis(torch.zeros(2, 3, 16))
    with pytest.raises(NotImplementedError, match="architecture"):
        StyleGAN2Generator(16, 0, 16, 16, 3, synthesis_kwargs={"architecture": "other"})


# -- bad checkpoint files ----------------------------------------------------------------


def _modified(tmp_path, change) -> Path:
    """Re-write the skip fixture's G_ema with ``change(record) -> record`` applied."""
    data = load_network_pickle(DATA / "sg2_skip_uncond.pkl")
    return write_network_pickle(tmp_path / "modified.pkl", {"G_ema": change(data["G_ema"])})


def _child(record, dotted):
    for part in dotted.split("."):
        record = record.state["_modules"][part]
    return record


def test_unchanged_rewrite_loads(tmp_path):
    path = _modified(tmp_path, lambda g: g)
    G = StyleGAN2Generator.from_checkpoint(path)
    reference = _generator("sg2_skip_uncond")
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in G.state_dict().items())


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.pkl"
    source = DATA / "sg2_skip_uncond.pkl"
    path.write_bytes(source.read_bytes()[: source.stat().st_size * 2 // 3])
    with pytest.raises(ValueError, match="truncated or corrupt") as info:
        StyleGAN2Generator.from_checkpoint(path)
    assert str(path) in str(info.value)


def test_missing_key(tmp_path):
    def drop(g):
        del _child(g, "synthesis.b8.conv0").state["_parameters"]["bias"]
        return g

    path = _modified(tmp_path, drop)
    with pytest.raises(ValueError, match=r"missing keys synthesis\.b8\.conv0\.bias") as info:
        StyleGAN2Generator.from_checkpoint(path)
    assert str(path) in str(info.value)


def test_extra_key(tmp_path):
    def add(g):
        _child(g, "mapping").state["_buffers"]["surprise"] = torch.zeros(3)
        return g

    path = _modified(tmp_path, add)
    with pytest.raises(ValueError, match=r"unexpected keys mapping\.surprise") as info:
        StyleGAN2Generator.from_checkpoint(path)
    assert str(path) in str(info.value)


def test_wrong_shape(tmp_path):
    def reshape(g):
        _child(g, "synthesis.b4").state["_parameters"]["const"] = torch.zeros(64, 5, 5)
        return g

    path = _modified(tmp_path, reshape)
    with pytest.raises(ValueError, match=r"synthesis\.b4\.const has shape \(64, 5, 5\)"):
        StyleGAN2Generator.from_checkpoint(path)


def test_non_power_of_two_resolution(tmp_path):
    path = _modified(tmp_path, lambda g: replace_record(
        g, init_kwargs={**g.init_kwargs, "img_resolution": 24}))
    with pytest.raises(ValueError, match="power of two >= 4, got 24") as info:
        StyleGAN2Generator.from_checkpoint(path)
    assert str(path) in str(info.value)


def test_other_architecture(tmp_path):
    path = _modified(
        tmp_path, lambda g: replace_record(g, module_name="training.networks_stylegan3")
    )
    with pytest.raises(ValueError, match="not a StyleGAN2 generator.*stylegan3") as info:
        StyleGAN2Generator.from_checkpoint(path)
    assert str(path) in str(info.value)


def test_torch_formats_dispatch(tmp_path):
    """genforce / rosinality files go to their readers (helper modules)."""
    for key, fmt in (("generator_smooth", "genforce"), ("g_ema", "rosinality")):
        path = tmp_path / f"{fmt}.pt"
        torch.save({key: {"w": torch.zeros(1)}}, path)
        try:
            StyleGAN2Generator.from_checkpoint(path)
        except NotImplementedError as error:
            assert fmt in str(error) and str(path) in str(error)
        except (ValueError, KeyError) as error:  # a reader exists and rejects the toy dict
            assert str(path) in str(error) or fmt in str(error)
        else:  # pragma: no cover
            pytest.fail(f"a {fmt} file without a generator loaded")


@pytest.mark.parametrize("device", ["cpu"])
def test_device_argument(device):
    G = StyleGAN2Generator.from_checkpoint(DATA / "sg2_orig_uncond.pkl", device=device)
    assert next(G.parameters()).device.type == device


def test_real_stylegan3_pickle_is_refused_as_another_architecture():
    path = Path(__file__).parent / "data" / "stylegan3" / "stylegan3-t.pkl"
    if not path.exists():
        pytest.skip("no StyleGAN3 fixture")
    with pytest.raises(ValueError, match="not a StyleGAN2 generator") as info:
        StyleGAN2Generator.from_checkpoint(path)
    assert str(path) in str(info.value)


def test_unsupported_kwargs_name_the_file(tmp_path):
    def orig_to_other(g):
        kwargs = {**g.init_kwargs}
        kwargs["synthesis_kwargs"] = {**kwargs["synthesis_kwargs"], "architecture": "other"}
        return replace_record(g, init_kwargs=kwargs)

    path = _modified(tmp_path, orig_to_other)
    with pytest.raises(NotImplementedError, match="architecture 'other'") as info:
        StyleGAN2Generator.from_checkpoint(path)
    assert str(path) in str(info.value)
    path = _modified(tmp_path, lambda g: replace_record(
        g, init_kwargs={**g.init_kwargs, "unknown_option": 1}))
    with pytest.raises(ValueError, match="cannot build a StyleGAN2 generator") as info:
        StyleGAN2Generator.from_checkpoint(path)
    assert str(path) in str(info.value)

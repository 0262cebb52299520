"""StyleGAN3 generator: official outputs from real NVlabs pickles, hooks, bad-file errors.

The fixtures in tests/data/stylegan3/ come from tests/fixtures/make_stylegan3_fixtures.py,
which runs the official NVlabs/stylegan3 code on small random-weight generators.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tensorpanda.adapters import Trace  # noqa: E402
from tensorpanda.adapters.stylegan3 import StyleGAN3Generator  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DATA = Path(__file__).parent / "data" / "stylegan3"
STYLEGAN2_DATA = Path(__file__).parent / "data" / "stylegan2"
CONFIGS = ["stylegan3-t", "stylegan3-r"]
HAVE_LOADER = importlib.util.find_spec("tensorpanda.adapters.nvlabs_pickle") is not None
needs_loader = pytest.mark.skipif(
    not HAVE_LOADER, reason="adapters/nvlabs_pickle.py (the restricted unpickler) is not there yet"
)

SMALL = dict(
    z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
    channel_base=128, channel_max=8, num_layers=4,
)


def _load(cfg: str) -> StyleGAN3Generator:
    return StyleGAN3Generator.from_checkpoint(DATA / f"{cfg}.pkl")


@needs_loader
@pytest.mark.parametrize("cfg", CONFIGS)
def test_images_match_official(cfg):
    G = _load(cfg)
    ref = np.load(DATA / f"{cfg}.npz", allow_pickle=False)
    z, c = torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"])
    assert (G.z_dim, G.c_dim, G.num_ws, G.img_resolution) == (32, c.shape[1], 16, 32)
    labels = c if G.c_dim else None
    for tag, psi, cutoff in (("psi1", 1.0, None), ("psi07", 0.7, None), ("psi07_cutoff8", 0.7, 8)):
        with torch.no_grad():
            ws = G.mapping(z, labels, truncation_psi=psi, truncation_cutoff=cutoff)
            img = G.synthesis(ws)
            full = G(z, labels, truncation_psi=psi, truncation_cutoff=cutoff)
        assert ws.shape == (len(z), G.num_ws, G.w_dim)
        np.testing.assert_allclose(ws.numpy(), ref[f"ws_{tag}"], rtol=0, atol=1e-5)
        assert img.shape == (len(z), 3, 32, 32)
        assert np.abs(img.numpy() - ref[f"img_{tag}"]).max() < 1e-3
        assert torch.equal(img, full)


@needs_loader
def test_zero_edit_is_exact_on_every_feature_layer():
    G = _load("stylegan3-t")
    z = torch.from_numpy(np.load(DATA / "stylegan3-t.npz")["z"][:2])
    assert list(G.feature_layers)[:2] == ["input", "L0_36_64"]
    assert len(G.feature_layers) == 15  # input + 14 layers, toRGB left out
    with torch.no_grad():
        plain = G(z)
        for name, path in G.feature_layers.items():
            with Trace(G, path, edit_output=lambda out: out + 0, retain_output=True) as t:
                same = G(z)
            assert t.calls == 1 and t.output.ndim == 4, name
            assert torch.equal(same, plain), name
            with Trace(G, path, edit_output=lambda out: out * 1.5):
                edited = G(z)
            assert not torch.equal(edited, plain), name


def test_zero_edit_is_exact_on_a_random_generator():
    torch.manual_seed(0)
    G = StyleGAN3Generator(**SMALL).eval()
    z = torch.randn(3, 8)
    with torch.no_grad():
        plain = G(z, truncation_psi=0.7)
        for name, path in G.feature_layers.items():
            with Trace(G, path, edit_output=lambda out: out.clone(), retain_output=True) as t:
                same = G(z, truncation_psi=0.7)
            assert torch.equal(same, plain), name
            assert t.output.shape[:2] == (3, int(name.split("_")[-1]) if name != "input" else 8)


def test_style_affines_and_shapes():
    G = StyleGAN3Generator(**SMALL)
    affines = G.style_affines()
    assert [name for name, _, _ in affines] == list(G.feature_layers)[1:]
    assert [index for _, index, _ in affines] == list(range(1, G.num_ws - 1))
    name, index, weight = affines[0]
    layer = getattr(G.synthesis, name)
    w = torch.randn(2, G.w_dim)
    expected = layer.affine(w) - layer.affine.bias * layer.affine.bias_gain
    torch.testing.assert_close(w @ weight.t(), expected)


def test_conditional_needs_labels():
    G = StyleGAN3Generator(**{**SMALL, "c_dim": 3})
    with pytest.raises(ValueError, match="class-conditional"):
        G(torch.randn(2, 8))
    assert G(torch.randn(2, 8), torch.eye(3)[:2]).shape == (2, 3, 16, 16)


def test_bad_resolution_and_arguments():
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN3Generator(**{**SMALL, "img_resolution": 24})
    with pytest.raises(ValueError, match="model.pkl: cannot build.*unknown"):
        StyleGAN3Generator.from_state_dict({**SMALL, "fused_modconv": 1}, {}, source="model.pkl")


def test_missing_and_extra_keys():
    G = StyleGAN3Generator(**SMALL)
    state = dict(G.state_dict())
    state.pop("mapping.w_avg")
    state["synthesis.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"g\.pkl: .*missing keys: mapping\.w_avg.*unexpected"):
        StyleGAN3Generator.from_state_dict(SMALL, state, source="g.pkl")
    state = dict(G.state_dict())
    state["mapping.w_avg"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"g\.pkl: 'mapping\.w_avg' has shape \(3,\)"):
        StyleGAN3Generator.from_state_dict(SMALL, state, source="g.pkl")


def test_not_a_pickle(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pkl"):
        StyleGAN3Generator.from_checkpoint(tmp_path / "nothing.pkl")
    zipped = tmp_path / "model.pt"
    torch.save({"g_ema": {}}, zipped)
    with pytest.raises(ValueError, match="model.pt: a torch.save archive"):
        StyleGAN3Generator.from_checkpoint(zipped)
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.pkl: not a network pickle"):
        StyleGAN3Generator.from_checkpoint(empty)


@needs_loader
def test_truncated_pickle(tmp_path):
    data = (DATA / "stylegan3-t.pkl").read_bytes()
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.pkl"):
        StyleGAN3Generator.from_checkpoint(cut)


@needs_loader
def test_stylegan2_pickle_is_refused():
    pickles = sorted(STYLEGAN2_DATA.glob("*.pkl"))
    if not pickles:
        pytest.skip("no StyleGAN2 network pickle in tests/data/stylegan2/ yet")
    with pytest.raises(ValueError, match=rf"{pickles[0].name}: .*StyleGAN2.*not StyleGAN3"):
        StyleGAN3Generator.from_checkpoint(pickles[0])

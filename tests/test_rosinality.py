"""rosinality/stylegan2-pytorch checkpoints against the official rosinality outputs.

tests/data/rosinality/ was written by tests/fixtures/make_rosinality_fixtures.py with
rosinality's own ``Generator`` and random weights; the .npz holds its images for fixed z
(stored constant noise), which our StyleGAN2 must reproduce within 1e-3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tensorpanda.adapters import Trace
from tensorpanda.adapters.rosinality import W_AVG_SAMPLES, read_stylegan2
from tensorpanda.adapters.stylegan2 import StyleGAN2Generator

pytestmark = [pytest.mark.backend_independent, pytest.mark.usefixtures("one_torch_thread")]

DATA = Path(__file__).parent / "data" / "rosinality"
CKPT = DATA / "stylegan2_32.pt"
TOL = 1e-3




@pytest.fixture(scope="module")
def G():
    return StyleGAN2Generator.from_checkpoint(CKPT)


@pytest.fixture(scope="module")
def ref():
    return np.load(DATA / "stylegan2_32.npz", allow_pickle=False)


def _max_abs(a: torch.Tensor, b: np.ndarray) -> float:
    return float(np.abs(a.detach().numpy() - b).max())


def test_images_match_rosinality(G, ref):
    assert (G.z_dim, G.w_dim, G.num_ws, G.img_resolution) == (32, 32, 8, 32)
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        assert _max_abs(G(z), ref["image_psi1"]) < TOL
        assert _max_abs(G(z, truncation_psi=0.7), ref["image_psi07"]) < TOL
    assert np.abs(ref["image_psi07"] - ref["image_psi1"]).max() > 0.1


def test_init_kwargs():
    kwargs, state = read_stylegan2(CKPT)
    assert kwargs == dict(
        z_dim=32, c_dim=0, w_dim=32, img_resolution=32, img_channels=3,
        mapping_kwargs=dict(num_layers=4, layer_features=32, lr_multiplier=0.01),
        synthesis_kwargs=dict(channel_base=512, channel_max=32, architecture="skip"),
    )
    assert state["synthesis.b32.conv1.noise_const"].shape == (32, 32)
    assert state["synthesis.b4.const"].shape == (32, 4, 4)


def test_zero_edit_is_exact_on_every_layer(G):
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(3))
    assert list(G.feature_layers) == [
        "b4.conv1", "b8.conv0", "b8.conv1", "b16.conv0", "b16.conv1", "b32.conv0", "b32.conv1"]
    with torch.no_grad():
        plain = G(z)
        for name, path in G.feature_layers.items():
            with Trace(G, path, edit_output=lambda out: out + torch.zeros_like(out)) as t:
                same = G(z)
            assert t.calls == 1
            assert torch.equal(same, plain), name
            with Trace(G, path, edit_output=lambda out: out + 0.5):
                assert not torch.allclose(G(z), plain), name


def test_missing_latent_avg_is_estimated(tmp_path, G, ref):
    ckpt = torch.load(CKPT, weights_only=True)
    path = tmp_path / "train.pt"
    torch.save({"g": ckpt["g_ema"], "g_ema": ckpt["g_ema"], "args": {"size": 32}}, path)
    _, state = read_stylegan2(path)
    # The mean of W_AVG_SAMPLES w's: close to the 4096-sample mean the fixture stored.
    error = (state["mapping.w_avg"] - torch.from_numpy(ref["latent_avg"])).abs().max()
    assert W_AVG_SAMPLES >= 4096 and error < 0.2
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        assert _max_abs(StyleGAN2Generator.from_checkpoint(path)(z), ref["image_psi1"]) < TOL


def test_adapter_loads_rosinality_file():
    from tensorpanda.adapters import load

    gan = load("stylegan2", checkpoint=CKPT)
    latents = gan.sample_latents(2, seed=0)
    plain = gan.generate(latents)
    assert plain.shape == (2, 3, 32, 32)
    edit = torch.zeros(16, 32, 32)
    assert torch.equal(gan.generate(latents, "b32.conv0", edit=edit), plain)


# -- clear errors ------------------------------------------------------------------------


def _save(tmp_path: Path, state: dict, name: str = "bad.pt") -> Path:
    path = tmp_path / name
    torch.save({"g_ema": state}, path)
    return path


def _state() -> dict[str, torch.Tensor]:
    return dict(torch.load(CKPT, weights_only=True)["g_ema"])


def test_truncated_file(tmp_path):
    path = tmp_path / "truncated.pt"
    data = CKPT.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="truncated") as info:
        StyleGAN2Generator.from_checkpoint(path)
    assert str(path) in str(info.value)


def test_other_architecture(tmp_path):
    # A discriminator's (or SWAGAN's) state dict under g_ema.
    path = _save(tmp_path, {"convs.0.0.weight": torch.zeros(4, 3, 1, 1)})
    with pytest.raises(ValueError, match="not a rosinality StyleGAN2 generator") as info:
        read_stylegan2(path)
    assert str(path) in str(info.value)
    # A genforce file given to the rosinality reader.
    genforce = Path(__file__).parent / "data" / "genforce" / "stylegan2_32.pth"
    with pytest.raises(ValueError, match="genforce"):
        read_stylegan2(genforce)


def test_missing_key(tmp_path):
    state = _state()
    del state["convs.3.noise.weight"]
    path = _save(tmp_path, state)
    with pytest.raises(ValueError, match="missing the key 'convs.3.noise.weight'") as info:
        StyleGAN2Generator.from_checkpoint(path)
    assert str(path) in str(info.value)


def test_extra_key(tmp_path):
    state = _state()
    state["convs.1.extra"] = torch.zeros(2)
    path = _save(tmp_path, state)
    with pytest.raises(ValueError, match="unexpected keys convs.1.extra") as info:
        StyleGAN2Generator.from_checkpoint(path)
    assert str(path) in str(info.value)


def test_other_blur_kernel(tmp_path):
    state = _state()
    state["convs.0.conv.blur.kernel"] = torch.ones(4, 4) / 4
    with pytest.raises(ValueError, match=r"\[1, 3, 3, 1\]"):
        read_stylegan2(_save(tmp_path, state))


def test_non_power_of_two_resolution(tmp_path):
    state = _state()
    state["noises.noise_6"] = torch.zeros(1, 1, 24, 24)
    path = _save(tmp_path, state)
    with pytest.raises(ValueError, match="power of two") as info:
        StyleGAN2Generator.from_checkpoint(path)
    assert str(path) in str(info.value) and "24" in str(info.value)

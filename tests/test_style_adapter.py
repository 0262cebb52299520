"""The style-based adapter: z / W / W+ latents, truncation, classes, SeFa and GANSpace in W,
loading by name; then end to end on a random-weight StyleGAN2 checkpoint."""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tensorpanda as tp
from tensorpanda.adapters import Latents, load
from tensorpanda.adapters.hooks import assert_no_hooks
from tensorpanda.adapters.style import StyleGANAdapter

pytestmark = pytest.mark.backend_independent
DATA = Path(__file__).parent / "data" / "stylegan2"


# -- a tiny network with the style interface: a test double for the adapter logic only -----
class TinyMapping(nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, num_ws):
        super().__init__()
        self.num_ws, self.c_dim = num_ws, c_dim
        self.embed = nn.Linear(c_dim, w_dim) if c_dim else None
        self.fc = nn.Sequential(nn.Linear(z_dim + (w_dim if c_dim else 0), w_dim),
                                nn.LeakyReLU(0.2), nn.Linear(w_dim, w_dim))
        self.register_buffer("w_avg", torch.randn(w_dim) * 0.1)

    def forward(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None):
        x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        if self.c_dim:
            x = torch.cat([x, self.embed(c)], dim=1)
        ws = self.fc(x)[:, None].repeat(1, self.num_ws, 1)
        cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
        ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws


class ModConv(nn.Module):
    def __init__(self, w_dim, c_in, c_out, kernel=3, up=False, act=True):
        super().__init__()
        self.affine = nn.Linear(w_dim, c_in)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel) / math.sqrt(c_in))
        self.up, self.act = up, act

    def forward(self, x, w):
        if self.up:
            x = F.interpolate(x, scale_factor=2)
        x = F.conv2d(x * (self.affine(w) + 1)[:, :, None, None], self.weight,
                     padding=self.weight.shape[-1] // 2)
        return F.leaky_relu(x, 0.2) if self.act else x


class TinySynthesis(nn.Module):
    """4 -> 8 -> 16 px with a skip (toRGB) path, ws indices as in StyleGAN2."""

    def __init__(self, w_dim, channels=8):
        super().__init__()
        self.const = nn.Parameter(torch.randn(channels, 4, 4))
        self.b4 = nn.ModuleDict({"conv1": ModConv(w_dim, channels, channels),
                                 "torgb": ModConv(w_dim, channels, 3, 1, act=False)})
        for res in (8, 16):
            self.add_module(f"b{res}", nn.ModuleDict({
                "conv0": ModConv(w_dim, channels, channels, up=True),
                "conv1": ModConv(w_dim, channels, channels),
                "torgb": ModConv(w_dim, channels, 3, 1, act=False)}))
        self.index = {"b4.conv1": 0, "b4.torgb": 1, "b8.conv0": 1, "b8.conv1": 2,
                      "b8.torgb": 3, "b16.conv0": 3, "b16.conv1": 4, "b16.torgb": 5}

    def forward(self, ws):
        x = self.const[None].repeat(len(ws), 1, 1, 1)
        img = None
        for res in (4, 8, 16):
            block = getattr(self, f"b{res}")
            for name in ("conv0", "conv1"):
                if name in block:
                    x = block[name](x, ws[:, self.index[f"b{res}.{name}"]])
            y = block["torgb"](x, ws[:, self.index[f"b{res}.torgb"]])
            img = y if img is None else F.interpolate(img, scale_factor=2) + y
        return img


class TinyStyleNet(nn.Module):
    num_ws = 6
    img_channels = 3
    img_resolution = 16

    def __init__(self, z_dim=8, c_dim=0, w_dim=6):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.mapping = TinyMapping(z_dim, c_dim, w_dim, self.num_ws)
        self.synthesis = TinySynthesis(w_dim)
        self.feature_layers = {f"b{r}.{n}": f"synthesis.b{r}.{n}"
                               for r, n in [(4, "conv1"), (8, "conv0"), (8, "conv1"),
                                            (16, "conv0"), (16, "conv1")]}

    def forward(self, z, c=None, truncation_psi=1.0):
        return self.synthesis(self.mapping(z, c, truncation_psi))

    def style_affines(self):
        return [(name, self.synthesis.index[name],
                 self.get_submodule(path).affine.weight.detach())
                for name, path in self.feature_layers.items()]

    @classmethod
    def from_checkpoint(cls, path, device="cpu"):
        state = torch.load(path, weights_only=True)
        net = cls(c_dim=int(state.pop("_c_dim").item()))
        net.load_state_dict(state)
        return net.to(device).eval()


def tiny(c_dim=0, seed=0, **kwargs):
    torch.manual_seed(seed)
    return StyleGANAdapter(TinyStyleNet(c_dim=c_dim), **kwargs)


@pytest.fixture(scope="module")
def gan():
    return tiny()


def styles(adapter, latents):
    """The affine outputs (the styles) of every style layer, captured by forward hooks."""
    out, handles = {}, []
    for name, path in adapter.generator.feature_layers.items():
        module = adapter.generator.get_submodule(path).affine
        handles.append(module.register_forward_hook(
            lambda m, i, o, name=name: out.__setitem__(name, o.detach().clone())))
    try:
        adapter.generate(latents)
    finally:
        for h in handles:
            h.remove()
    return out


# -- the adapter on the test double -------------------------------------------------------
def test_layers_come_from_the_feature_layer_table(gan):
    assert gan.layers == {"synthesis.b4.conv1": (8, 4, 4), "synthesis.b8.conv0": (8, 8, 8),
                          "synthesis.b8.conv1": (8, 8, 8), "synthesis.b16.conv0": (8, 16, 16),
                          "synthesis.b16.conv1": (8, 16, 16)}
    assert gan.resolve_layer("b8.conv1") == "synthesis.b8.conv1"
    assert gan.default_layer == "synthesis.b4.conv1"  # a quarter of a 16 px image's side
    assert tiny(default_layer="b16.conv0").default_layer == "synthesis.b16.conv0"


def test_generate_takes_z_tensors_and_latents_alike(gan):
    latents = gan.sample_latents(3, seed=1)
    images = gan.generate(latents)
    assert images.shape == (3, 3, 16, 16) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert torch.equal(gan.generate(latents.z), images)
    with torch.no_grad():
        raw = gan.generator(latents.z)
    assert torch.equal(images, ((raw + 1) / 2).clamp(0, 1))


def test_truncation_and_its_cutoff(gan):
    latents = gan.sample_latents(4, seed=2)
    plain = gan.generate(latents)
    collapsed = gan.generate(gan.sample_latents(4, seed=2, truncation=0.0))
    assert torch.allclose(collapsed, collapsed[:1].expand_as(collapsed))  # all at w_avg
    half = gan.sample_latents(4, seed=2, truncation=0.5)
    assert half.truncation == 0.5 and not torch.equal(gan.generate(half), plain)
    # the adapter's default applies to bare z and to latents drawn without one
    assert torch.equal(tiny(truncation=0.5).generate(latents.z), gan.generate(half))
    ws = tiny(truncation=0.0, truncation_cutoff=2).to_ws(latents.z).ws
    free = gan.to_ws(latents).ws
    w_avg = gan.generator.mapping.w_avg
    assert torch.allclose(ws[:, :2], w_avg.expand(4, 2, -1)) and torch.equal(ws[:, 2:], free[:, 2:])
    with pytest.raises(ValueError, match="truncation_cutoff"):
        tiny(truncation_cutoff=7)
    with pytest.raises(ValueError, match="finite"):
        gan.sample_latents(2, truncation=float("nan"))


def test_class_labels_of_a_conditional_checkpoint():
    gan = tiny(c_dim=3)
    assert gan.num_classes == 3
    latents = gan.sample_latents(4, classes=[0, 1, 2, 1])
    assert latents.condition.argmax(1).tolist() == [0, 1, 2, 1]
    images = gan.generate(latents)
    assert not torch.equal(images[1], gan.generate(gan.sample_latents(4, classes=0))[1])
    with pytest.raises(ValueError, match="class vectors"):
        gan.generate(latents.z)
    fixed = tiny(c_dim=3, classes=2)
    assert fixed.sample_latents(3).condition.argmax(1).tolist() == [2, 2, 2]
    assert torch.equal(fixed.generate(latents.z), gan.generate(gan.sample_latents(4, classes=2)))
    with pytest.raises(ValueError, match="c_dim 0"):
        tiny(classes=1)
    with pytest.raises(ValueError, match="0..2"):
        tiny(c_dim=3, classes=3)


def test_w_and_w_plus_latents(gan):
    latents = gan.sample_latents(5, seed=3)
    plain = gan.generate(latents, batch_size=2)
    ws = gan.to_ws(latents, batch_size=2)
    assert ws.ws.shape == (5, 6, 6) and torch.equal(ws.z, latents.z)
    assert torch.equal(gan.generate(ws, batch_size=2), plain)  # bit for bit
    assert torch.equal(gan.generate(gan.latents_from_ws(ws.ws), batch_size=2), plain)
    w = ws.ws[:, 0]
    assert torch.equal(gan.generate(gan.latents_from_ws(w), batch_size=2), plain)  # W
    assert len(ws[1:3]) == 2 and ws[1:3].ws.shape == (2, 6, 6)
    with pytest.raises(ValueError, match="ws of shape"):
        gan.generate(Latents(latents.z, ws=torch.zeros(5, 3, 6)))
    with pytest.raises(ValueError, match="one row per sample"):
        Latents(latents.z, ws=torch.zeros(4, 6))
    # conditional: ws bypass the class, so no condition is needed
    cond = tiny(c_dim=3)
    assert cond.generate(cond.latents_from_ws(ws.ws)).shape == (5, 3, 16, 16)


@pytest.mark.parametrize("layer", ["b4.conv1", "b8.conv1", "b16.conv0"])
def test_zero_edit_and_reinjection_are_exact(gan, layer):
    latents = gan.sample_latents(5, seed=4)
    plain = gan.generate(latents, batch_size=2)
    c, h, w = gan.layers[gan.resolve_layer(layer)]
    assert torch.equal(gan.generate(latents, layer, edit=torch.zeros(c, h, w), batch_size=2),
                       plain)
    features = torch.cat(list(gan.features(latents, layer, batch_size=2)))
    same = gan.generate(latents, layer, edit=lambda f, i: features[i], batch_size=2)
    assert torch.equal(same, plain)
    edited = gan.generate(latents, layer, edit=torch.ones(c, h, w), batch_size=2)
    assert not torch.equal(edited, plain)
    assert_no_hooks(gan.generator)


def test_sefa_directions_are_those_of_the_stacked_affines(gan):
    every = gan.sefa_directions()
    assert every.U.shape == (6, 6) and every.method == "sefa"
    assert np.allclose(every.U @ every.U.T, np.eye(6), atol=1e-5)
    coarse = gan.sefa_directions(layers=slice(0, 2), n_directions=3)
    W = torch.cat([gan.generator.synthesis.b4.conv1.affine.weight,
                   gan.generator.synthesis.b8.conv0.affine.weight]).detach().numpy()
    expected = tp.sefa(W, 3)
    assert coarse.U.shape == (3, 6)
    assert np.allclose(np.abs(coarse.U @ np.asarray(expected.U).T), np.eye(3), atol=1e-5)
    assert gan.style_indices(slice(0, 2)) == [0, 1] == gan.style_indices(["b4.conv1", 1])
    assert gan.style_indices(None) == [0, 1, 2, 3, 4]
    assert gan.latent_projection(["b16.conv1"]).shape == (8, 6)
    with pytest.raises(ValueError, match="no style layer 'b32.conv0'"):
        gan.style_indices("b32.conv0")
    with pytest.raises(ValueError, match="out of range"):
        gan.style_indices([9])


def test_editing_w_plus_at_chosen_layers_changes_only_their_styles(gan):
    latents = gan.sample_latents(3, seed=5)
    u = gan.sefa_directions(layers=[2], n_directions=1).U[0]
    moved = gan.shift_ws(latents, u, alpha=3.0, layers=[2])
    before, after = gan.to_ws(latents).ws, moved.ws
    assert torch.allclose(after[:, 2] - before[:, 2], 3.0 * torch.as_tensor(u).expand(3, -1))
    assert torch.equal(after[:, [0, 1, 3, 4, 5]], before[:, [0, 1, 3, 4, 5]])
    old, new = styles(gan, latents), styles(gan, moved)
    changed = {name for name in old if not torch.equal(old[name], new[name])}
    assert changed == {"b8.conv1"}
    assert torch.equal(gan.generate(gan.shift_ws(latents, u, alpha=0.0)), gan.generate(latents))


def test_ganspace_directions_are_principal_axes_in_w(gan):
    d = gan.ganspace_directions(n_directions=3, n_samples=500, seed=0)
    assert d.U.shape == (3, 6) and d.method == "ganspace"
    assert np.allclose(np.linalg.norm(d.U, axis=1), 1, atol=1e-5)
    assert np.all(np.diff(d.scores) <= 0)
    w = gan.to_ws(gan.sample_latents(500, seed=0, truncation=1.0)).ws[:, 0].double().numpy()
    top = np.linalg.eigh(np.cov(w.T))[1][:, -1]
    assert abs(float(top @ d.U[0])) > 0.99


def test_not_a_style_network():
    with pytest.raises(TypeError, match="lacks the style interface: no .*mapping"):
        StyleGANAdapter(nn.Conv2d(3, 3, 1))


# -- loading by name ------------------------------------------------------------------------
@pytest.fixture
def tiny_module(monkeypatch):
    """Stand in the tiny network for the stylegan3 module (the adapter's loading path)."""
    module = types.ModuleType("tensorpanda.adapters.stylegan3")
    module.StyleGAN3Generator = TinyStyleNet
    monkeypatch.setitem(sys.modules, "tensorpanda.adapters.stylegan3", module)


def test_load_by_name_reads_the_checkpoint(tiny_module, tmp_path):
    torch.manual_seed(0)
    net = TinyStyleNet(c_dim=2)
    torch.save({**net.state_dict(), "_c_dim": torch.tensor(2)}, tmp_path / "g.pt")
    gan = load("stylegan3", checkpoint=tmp_path / "g.pt", truncation=0.7, classes=1,
               dtype=torch.float64)
    assert gan.name == "stylegan3" and gan.dtype == torch.float64
    assert gan.default_truncation == 0.7 and gan.checkpoint == tmp_path / "g.pt"
    latents = gan.sample_latents(2)
    assert latents.truncation == 0.7 and latents.condition.argmax(1).tolist() == [1, 1]
    assert gan.generate(latents).dtype == torch.float32


def test_load_errors_are_clear(tmp_path):
    for name in ("stylegan2", "stylegan3", "stylegan", "pggan"):
        with pytest.raises(ValueError, match="pass checkpoint=PATH"):
            load(name)
        with pytest.raises(FileNotFoundError, match="checkpoint not found"):
            load(name, checkpoint=tmp_path / "missing.pkl")


def test_a_missing_network_module_is_an_import_error(monkeypatch, tmp_path):
    (tmp_path / "g.pt").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "tensorpanda.adapters.stylegan", None)
    with pytest.raises(ImportError):
        load("stylegan", checkpoint=tmp_path / "g.pt")


# -- end to end on a random-weight StyleGAN2 checkpoint --------------------------------------
def stylegan2_checkpoint() -> Path:
    """The unconditional NVlabs StyleGAN2 fixture, or a skip saying what is missing."""
    path = DATA / "sg2_skip_uncond.pkl"
    if not path.is_file():
        pytest.skip(f"{path} is not there yet (tests/fixtures/make_stylegan2_fixtures.py)")
    try:
        gan = load("stylegan2", checkpoint=path)
    except (ImportError, NotImplementedError) as error:
        pytest.skip(f"the StyleGAN2 network cannot read {path.name} yet: {error}")
    return gan


@pytest.fixture(scope="module")
def stylegan2():
    torch.set_num_threads(1)
    return stylegan2_checkpoint()


def test_stylegan2_stream_fit_edit_end_to_end(stylegan2):
    gan = stylegan2
    assert type(gan.generator).__name__ == "StyleGAN2Generator"
    layer = gan.default_layer
    latents = gan.sample_latents(24, seed=0)
    stream = gan.features(latents, layer, batch_size=8)
    c, h, w = gan.layers[layer]
    assert stream.shape == (24, c, h, w) and len(stream) == 3
    fit = tp.tucker2(stream, (None, 3), solver="hals", random_state=0)
    assert fit.n_channels == c and tuple(fit.spatial_shape) == (h, w)
    delta = torch.as_tensor(np.asarray(tp.edit_direction(fit, 0, 1)), dtype=torch.float32)
    shown = latents[:4]
    plain = gan.generate(shown, batch_size=2)
    assert plain.shape == (4, 3, gan.generator.img_resolution, gan.generator.img_resolution)
    assert plain.min() >= 0 and plain.max() <= 1
    assert torch.equal(gan.generate(shown, layer, edit=0 * delta, batch_size=2), plain)
    edited = gan.generate(shown, layer, edit=20 * delta, batch_size=2)
    assert not torch.equal(edited, plain)
    # with a zero edit every layer, the last one before the output included, is exact
    for name, shape in gan.layers.items():
        assert torch.equal(gan.generate(shown, name, edit=torch.zeros(shape), batch_size=2),
                           plain), name
    assert_no_hooks(gan.generator)


def test_stylegan2_sefa_in_w_plus(stylegan2):
    gan = stylegan2
    d = gan.sefa_directions(layers=slice(0, 4), n_directions=5)
    assert d.U.shape == (5, gan.w_dim)
    assert np.allclose(d.U @ d.U.T, np.eye(5), atol=1e-4)
    latents = gan.sample_latents(2, seed=1)
    moved = gan.shift_ws(latents, d.U[0], alpha=5.0, layers=slice(0, 4))
    before = gan.to_ws(latents).ws
    assert torch.equal(moved.ws[:, 4:], before[:, 4:])
    assert not torch.equal(moved.ws[:, :4], before[:, :4])
    # the styles of the layers reading ws 0..3 change, the others do not
    for name, index, weight in gan.generator.style_affines():
        old = before[:, index] @ weight.T.float()
        new = moved.ws[:, index] @ weight.T.float()
        assert torch.equal(old, new) == (index >= 4), name
    assert not torch.equal(gan.generate(moved), gan.generate(latents))
    assert torch.equal(gan.generate(gan.shift_ws(latents, d.U[0], 0.0)), gan.generate(latents))


# -- every architecture's fixture through the adapter ----------------------------------------
FIXTURES = [
    ("stylegan2", "stylegan2/sg2_orig_uncond.pkl"),
    ("stylegan2", "stylegan2/sg2_resnet_cond.pkl"),
    ("stylegan2", "genforce/stylegan2_32.pth"),
    ("stylegan3", "stylegan3/stylegan3-t.pkl"),
    ("stylegan3", "stylegan3/stylegan3-r.pkl"),
    ("stylegan", "genforce/stylegan128.pth"),
    ("pggan", "genforce/pggan32.pth"),
]


@pytest.mark.parametrize("name,file", FIXTURES, ids=[f for _, f in FIXTURES])
def test_every_architecture_loads_generates_and_reinjects_exactly(name, file):
    torch.set_num_threads(1)
    path = DATA.parent / file
    if not path.is_file():
        pytest.skip(f"{path} is not there yet")
    try:
        gan = load(name, checkpoint=path)
    except (ImportError, NotImplementedError) as error:
        pytest.skip(f"the {name} network cannot read {path.name} yet: {error}")
    latents = gan.sample_latents(2, seed=0)
    plain = gan.generate(latents)
    side = gan.generator.img_resolution
    assert plain.shape == (2, 3, side, side) and plain.min() >= 0 and plain.max() <= 1
    assert torch.equal(gan.generate(latents.z if gan.num_classes is None else latents), plain)
    for layer, shape in gan.layers.items():
        assert torch.equal(gan.generate(latents, layer, edit=torch.zeros(shape)), plain), layer
    assert_no_hooks(gan.generator)
    if name == "pggan":  # SeFa reads the first convolution, as its code does on PGGAN
        W = gan.latent_projection()
        assert W.shape[1] == gan.latent_dim and tp.sefa(W.numpy(), 2).U.shape == (2, W.shape[1])
        return
    assert torch.equal(gan.generate(gan.to_ws(latents)), plain)
    d = gan.sefa_directions(n_directions=2)
    assert d.U.shape == (2, gan.w_dim)
    moved = gan.shift_ws(latents, d.U[0], 3.0, layers=[0])
    assert not torch.equal(gan.generate(moved), plain)


def test_the_generators_page_example_runs_on_the_stylegan2_fixture(stylegan2, tmp_path,
                                                                   monkeypatch):
    import re

    page = (Path(__file__).parents[1] / "docs" / "generators.md").read_text()
    code = re.findall(r"```python\n(.*?)```", page, flags=re.S)[-1]
    code = (code.replace("stylegan2-ffhq-256x256.pkl", str(DATA / "sg2_skip_uncond.pkl"))
            .replace("2000", "24"))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "docs/generators.md", "exec"), namespace)  # noqa: S102
    assert namespace["after"].shape == namespace["before"].shape
    assert namespace["sefa"].U.shape == (5, stylegan2.w_dim)
    assert (tmp_path / "ffhq-b32.safetensors").is_file()

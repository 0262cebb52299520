"""Tests of the adapter base class, the registry, GenericAdapter and dcgan-faces.

These run the real DCGAN-faces generator from ``gan-face-generate`` (its packaged
weights), on a handful of samples so that the whole file takes seconds.
"""

import importlib.util
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from tensorpanda.adapters import (
    Adapter,
    DCGANFaces,
    FeatureStream,
    GenericAdapter,
    Latents,
    Trace,
    available,
    forward_hooks,
    load,
    register,
)
from tensorpanda.adapters import registry as registry_module

# Torch-only code: it runs in the numpy pass of `make test` only.
pytestmark = [pytest.mark.generator, pytest.mark.backend_independent]

DCGAN_LAYERS = {
    "main.2": (512, 4, 4),
    "main.5": (256, 8, 8),
    "main.8": (128, 16, 16),
    "main.11": (64, 32, 32),
}
N = 6  # samples per check; batches of 4 below so that the last batch is partial


@pytest.fixture(scope="module")
def dcgan():
    if importlib.util.find_spec("gan_face_generate") is None:
        pytest.skip("needs `pip install --no-deps gan-face-generate`")
    return load("dcgan-faces")


@pytest.fixture(scope="module")
def latents(dcgan):
    return dcgan.sample_latents(N, seed=3)


@pytest.fixture(scope="module")
def plain(dcgan, latents):
    return dcgan.generate(latents, batch_size=4)


@pytest.fixture(scope="module")
def generic(dcgan):
    # The same network, wrapped without an adapter class: layers found by a dry run.
    return GenericAdapter(
        dcgan.generator,
        lambda n, g: torch.randn(n, 100, 1, 1, generator=g),
        name="generic-dcgan",
    )


# -- helpers shared by the per-adapter checks (also in test_biggan.py) ------------------


def assert_zero_edit_identity(adapter, latents, layer, plain):
    c, h, w = adapter.layers[layer]
    broadcast = adapter.generate(latents, layer, edit=torch.zeros(c, h, w), batch_size=4)
    per_sample = adapter.generate(
        latents, layer, edit=np.zeros((len(latents), c, h, w), np.float32), batch_size=4
    )
    assert torch.equal(broadcast, plain)
    assert torch.equal(per_sample, plain)
    assert forward_hooks(adapter.generator) == {}


def assert_reinjection_identity(adapter, latents, layer, plain):
    # Same batches for capture and re-injection: matrix kernels may round differently for
    # another batch size (seen on BigGAN), which test_features_do_not_depend_on_batch_size
    # covers with a tolerance.
    captured = torch.cat(list(adapter.features(latents, layer, batch_size=4)))
    seen = []

    def reinject(features, index):
        seen.append(index)
        return captured[index]

    images = adapter.generate(latents, layer, edit=reinject, batch_size=4)
    assert torch.equal(images, plain)
    assert seen == [slice(0, 4), slice(4, len(latents))]
    assert forward_hooks(adapter.generator) == {}


def assert_no_hook_after_failure(adapter, latents, layer):
    def fail(features, index):
        raise RuntimeError("edit failed")

    with pytest.raises(RuntimeError, match="edit failed"):
        adapter.generate(latents, layer, edit=fail)
    assert forward_hooks(adapter.generator) == {}


# -- dcgan-faces: layers, identity of capture and re-injection --------------------------


def test_dcgan_layer_table(dcgan):
    assert dcgan.layers == DCGAN_LAYERS
    assert list(dcgan.layers) == list(DCGAN_LAYERS)  # forward order
    assert dcgan.aliases == {"4x4": "main.2", "8x8": "main.5", "16x16": "main.8",
                             "32x32": "main.11"}
    assert dcgan.default_layer == "main.5"
    assert dcgan.resolve_layer("16x16") == "main.8"
    assert (dcgan.name, dcgan.latent_dim, dcgan.latent_shape) == ("dcgan-faces", 100, (100,))
    assert dcgan.device == torch.device("cpu") and dcgan.dtype == torch.float32
    assert dcgan.num_classes is None and not dcgan.has_truncation


def test_dcgan_images(dcgan, plain):
    assert plain.shape == (N, 3, 64, 64) and plain.dtype == torch.float32
    assert plain.min() >= 0 and plain.max() <= 1
    # Faces are not flat: a degenerate generator (e.g. wrong BatchNorm mode) would be.
    assert plain.std() > 0.15


@pytest.mark.parametrize("layer", list(DCGAN_LAYERS))
def test_dcgan_zero_edit_identity(dcgan, latents, plain, layer):
    assert_zero_edit_identity(dcgan, latents, layer, plain)


@pytest.mark.parametrize("layer", list(DCGAN_LAYERS))
def test_dcgan_reinjection_identity(dcgan, latents, plain, layer):
    assert_reinjection_identity(dcgan, latents, layer, plain)


@pytest.mark.parametrize("layer", list(DCGAN_LAYERS))
def test_dcgan_no_hook_after_failed_edit(dcgan, latents, layer):
    assert_no_hook_after_failure(dcgan, latents, layer)


def test_dcgan_eval_mode_makes_samples_independent_of_their_batch(dcgan, latents, plain):
    assert not dcgan.generator.training
    alone = dcgan.generate(latents[1:3], batch_size=1)
    torch.testing.assert_close(alone, plain[1:3], rtol=1e-5, atol=1e-6)


def test_train_mode_is_switched_back_to_eval(dcgan, latents, plain, caplog):
    dcgan.generator.train()
    try:
        with caplog.at_level("WARNING", logger="tensorpanda.adapters.base"):
            images = dcgan.generate(latents, batch_size=4)
    finally:
        dcgan.generator.eval()
    assert "train mode" in caplog.text
    assert torch.equal(images, plain)


# -- features() ---------------------------------------------------------------------------


@pytest.mark.parametrize("layer", list(DCGAN_LAYERS))
def test_features_shapes(dcgan, latents, layer):
    stream = dcgan.features(latents, layer, batch_size=4)
    assert isinstance(stream, FeatureStream)
    assert stream.shape == (N, *DCGAN_LAYERS[layer]) and stream.n_samples == N
    assert len(stream) == 2
    batches = list(stream)
    assert [tuple(b.shape) for b in batches] == [(4, *DCGAN_LAYERS[layer]),
                                                  (2, *DCGAN_LAYERS[layer])]
    assert all(b.dtype == torch.float32 and b.device == dcgan.device for b in batches)
    # After a ReLU block every feature is non-negative, and not all zero.
    assert all((b >= 0).all() and (b > 0).any() for b in batches)


def test_features_match_the_layer_output_of_a_full_pass(dcgan, latents):
    with torch.no_grad(), Trace(dcgan.generator, "main.8", retain_output=True) as trace:
        dcgan.generator(latents.z[:, :, None, None])
    streamed = torch.cat(list(dcgan.features(latents, "16x16", batch_size=N)))
    assert torch.equal(streamed, trace.output)


def test_features_reiterate_identically(dcgan, latents):
    stream = dcgan.features(latents, "8x8", batch_size=4)
    first, second = list(stream), list(stream)
    assert len(first) == len(second) == 2
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_features_do_not_depend_on_batch_size(dcgan, latents):
    one = torch.cat(list(dcgan.features(latents, "main.8", batch_size=1)))
    all_at_once = torch.cat(list(dcgan.features(latents, "main.8", batch_size=N)))
    torch.testing.assert_close(one, all_at_once, rtol=1e-5, atol=1e-6)


def test_features_stop_after_the_layer(dcgan, latents):
    fired = []
    handle = dcgan.generator.main[12].register_forward_hook(lambda *a: fired.append(1))
    try:
        list(dcgan.features(latents, "main.2", batch_size=4))
    finally:
        handle.remove()
    assert fired == []


def test_float16_generator_gives_float32_features(dcgan, latents):
    half = load("dcgan-faces", dtype=torch.float16)
    assert half.dtype == torch.float16
    features = torch.cat(list(half.features(latents, "32x32", batch_size=N)))
    assert features.dtype == torch.float32
    reference = torch.cat(list(dcgan.features(latents, "32x32", batch_size=N)))
    torch.testing.assert_close(features, reference, rtol=0.02, atol=0.05)
    # Re-injection stays exact in half precision: float16 -> float32 -> float16 is lossless.
    images = half.generate(latents, "32x32", edit=lambda f, i: f, batch_size=N)
    assert torch.equal(images, half.generate(latents, batch_size=N))
    assert images.dtype == torch.float32


def test_a_feature_stream_needs_only_a_capture_callable():
    # No adapter: the stream calls capture(batch of latents) once per batch, on every pass.
    seen = []

    def capture(batch):
        seen.append(len(batch))
        return batch.z[:, :, None, None].expand(-1, -1, 2, 3).clone()

    latents = Latents(torch.arange(10.0).reshape(5, 2))
    stream = FeatureStream(capture, latents, "toy", (2, 2, 3), batch_size=2)
    assert stream.shape == (5, 2, 2, 3) and len(stream) == 3 and stream.device.type == "cpu"
    assert torch.equal(torch.cat(list(stream))[:, :, 0, 0], latents.z)
    list(stream)
    assert seen == [2, 2, 1, 2, 2, 1]
    assert repr(stream) == (
        "FeatureStream('generator', layer='toy', shape=(5, 2, 2, 3), batch_size=2)"
    )
    with pytest.raises(TypeError, match="capture must be a callable"):
        FeatureStream(None, latents, "toy", (2, 2, 3))


def test_progress_bar_can_be_forced_on(dcgan, latents, capsys):
    list(dcgan.features(latents[:2], "4x4", progress=True))
    dcgan.generate(latents[:2], progress=True)
    assert "dcgan-faces" in capsys.readouterr().err


# -- edits --------------------------------------------------------------------------------


def test_nonzero_edit_changes_the_image(dcgan, latents, plain):
    edited = dcgan.generate(latents, "8x8", edit=torch.full((256, 8, 8), 2.0))
    assert (edited - plain).abs().mean() > 0.01


def test_per_sample_edit_changes_only_its_sample(dcgan, latents, plain):
    delta = torch.zeros(N, 256, 8, 8)
    delta[4] = 2.0
    edited = dcgan.generate(latents, "8x8", edit=delta, batch_size=4)
    changed = [not torch.equal(edited[i], plain[i]) for i in range(N)]
    assert changed == [i == 4 for i in range(N)]


@pytest.mark.parametrize("layer", ["main.5", "main.8", "main.11"])
def test_spatial_edit_stays_near_its_region(dcgan, latents, plain, layer):
    c, h, w = DCGAN_LAYERS[layer]
    delta = torch.zeros(c, h, w)
    delta[:, : h // 4, : w // 4] = 3.0  # top-left 16x16 pixels of the 64x64 image
    edited = dcgan.generate(latents, layer, edit=delta)
    change = (edited - plain).abs().sum(dim=(0, 1))
    near = change[:24, :24].sum() / change.sum()  # the region plus an 8-pixel margin
    assert change.sum() > 0
    assert near > 0.9


def test_callable_edit_gets_float32_batches_and_slices(dcgan, latents):
    calls = []

    def spy(features, index):
        calls.append((tuple(features.shape), features.dtype, index))
        return features

    dcgan.generate(latents, "4x4", edit=spy, batch_size=4)
    assert calls == [((4, 512, 4, 4), torch.float32, slice(0, 4)),
                     ((2, 512, 4, 4), torch.float32, slice(4, 6))]


def test_edit_errors(dcgan, latents):
    with pytest.raises(ValueError, match=r"\(C, H, W\) = \(256, 8, 8\).*got \(256, 4, 4\)"):
        dcgan.generate(latents, "8x8", edit=torch.zeros(256, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) = \(6, 256, 8, 8\).*got \(5, 256"):
        dcgan.generate(latents, "8x8", edit=torch.zeros(5, 256, 8, 8))
    with pytest.raises(ValueError, match="needs layer="):
        dcgan.generate(latents, edit=torch.zeros(256, 8, 8))
    with pytest.raises(TypeError, match="callable"):
        dcgan.generate(latents, "8x8", edit=[0.0])
    with pytest.raises(TypeError, match="returned None"):
        dcgan.generate(latents, "8x8", edit=lambda f, i: None)
    with pytest.raises(ValueError, match=r"must return shape \(4, 256, 8, 8\), got \(4, 256\)"):
        dcgan.generate(latents, "8x8", edit=lambda f, i: f[:, :, 0, 0], batch_size=4)
    assert forward_hooks(dcgan.generator) == {}


def test_unknown_layer_lists_valid_layers(dcgan, latents):
    with pytest.raises(ValueError, match=r"no feature layer 'main\.3'.*'main\.2'.*'8x8 \(= main"):
        dcgan.features(latents, "main.3")
    with pytest.raises(ValueError, match="no feature layer"):
        dcgan.generate(latents, "64x64", edit=torch.zeros(3, 64, 64))


# -- latents ------------------------------------------------------------------------------


def test_latents_are_seeded(dcgan):
    a, b = dcgan.sample_latents(4, seed=7), dcgan.sample_latents(4, seed=7)
    assert torch.equal(a.z, b.z)
    assert not torch.equal(a.z, dcgan.sample_latents(4, seed=8).z)
    assert a.z.shape == (4, 100) and a.condition is None and a.truncation is None
    assert abs(float(dcgan.sample_latents(2000).z.std()) - 1.0) < 0.02


def test_latents_dataclass():
    lat = Latents(torch.arange(10.0)[:, None], torch.arange(10)[:, None])
    assert len(lat) == 10
    assert torch.equal(lat[3].z, torch.tensor([[3.0]]))
    assert torch.equal(lat[-1].condition, torch.tensor([[9]]))
    assert torch.equal(lat[np.int64(3)].z, lat[3].z)  # numpy integers index too
    with pytest.raises(TypeError, match="got bool"):
        lat[True]
    assert [len(b) for b in lat.batches(4)] == [4, 4, 2]
    assert torch.equal(torch.cat([b.z for b in lat.batches(3)]), lat.z)
    with pytest.raises(ValueError, match="one row per sample"):
        Latents(torch.zeros(3, 2), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="batch_size"):
        list(lat.batches(0))
    with pytest.raises(IndexError):
        lat[10]


def test_sampling_options_the_dcgan_lacks(dcgan):
    with pytest.raises(ValueError, match="no truncation"):
        dcgan.sample_latents(2, truncation=0.5)
    with pytest.raises(ValueError, match="not class-conditional"):
        dcgan.sample_latents(2, classes=3)
    with pytest.raises(ValueError, match="positive integer"):
        dcgan.sample_latents(0)


def test_wrong_latents_are_rejected(dcgan):
    with pytest.raises(ValueError, match=r"shape \(N, 100\), got \(3, 128\)"):
        dcgan.generate(torch.zeros(3, 128))
    with pytest.raises(ValueError, match=r"shape \(N, 100\), got \(3, 100, 1, 1\)"):
        dcgan.features(torch.zeros(3, 100, 1, 1), "8x8")
    with pytest.raises(ValueError, match="not conditional"):
        dcgan.generate(Latents(torch.zeros(2, 100), torch.zeros(2, 10)))
    with pytest.raises(ValueError, match="no truncation"):
        dcgan.generate(Latents(torch.zeros(2, 100), truncation=0.7))
    with pytest.raises(ValueError, match="empty"):
        dcgan.generate(torch.zeros(0, 100))
    with pytest.raises(TypeError, match="Latents"):
        dcgan.generate([[0.0] * 100])


def test_bare_tensor_latents(dcgan, latents, plain):
    assert torch.equal(dcgan.generate(latents.z, batch_size=4), plain)


# -- latent projection (SeFa) ---------------------------------------------------------------


def test_latent_projection_is_the_first_convtranspose(dcgan, latents):
    W = dcgan.latent_projection()
    assert W.shape == (512 * 4 * 4, 100) and W.dtype == torch.float32
    with torch.no_grad(), Trace(dcgan.generator, "main.0", retain_output=True, stop=True) as t:
        dcgan.generator(latents.z[:, :, None, None])
    torch.testing.assert_close(latents.z @ W.T, t.output.flatten(1), rtol=1e-4, atol=1e-4)


# -- weights and package errors -----------------------------------------------------------


@pytest.fixture(scope="module")
def dcgan_state(dcgan):
    return {k: v.clone() for k, v in dcgan.generator.state_dict().items()}


def test_weights_override_with_a_bare_state_dict(dcgan_state, latents, plain, tmp_path):
    path = tmp_path / "netG.pt"
    torch.save(dcgan_state, path)
    gan = DCGANFaces(weights=path)
    assert gan.weights_path == path
    assert torch.equal(gan.generate(latents, batch_size=4), plain)


def test_weights_missing(dcgan, tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such.tar"):
        load("dcgan-faces", weights=tmp_path / "no-such.tar")


def test_weights_not_a_checkpoint(dcgan, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="cannot read .* as a torch checkpoint"):
        DCGANFaces(weights=path)


def test_weights_not_a_state_dict(dcgan, tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(3)], path)
    with pytest.raises(ValueError, match="holds a list, not a state dict"):
        DCGANFaces(weights=path)


def test_weights_of_another_architecture(dcgan_state, tmp_path):
    missing = {k: v for k, v in dcgan_state.items() if not k.startswith("main.12")}
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="main.12.weight"):
        DCGANFaces(weights=tmp_path / "missing.pt")
    extra = dict(dcgan_state, **{"main.13.weight": torch.zeros(3)})
    torch.save({"netG_state_dict": extra}, tmp_path / "extra.tar")
    with pytest.raises(ValueError, match=r"(?s)not a state dict of the DCGAN.*main\.13\.weight"):
        DCGANFaces(weights=tmp_path / "extra.tar")
    reshaped = dict(dcgan_state, **{"main.4.weight": torch.ones(7)})
    torch.save(reshaped, tmp_path / "reshaped.pt")
    with pytest.raises(ValueError, match=r"main\.4\.weight"):
        DCGANFaces(weights=tmp_path / "reshaped.pt")


def test_missing_package_says_how_to_install():
    with pytest.raises(ImportError, match="pip install --no-deps gan-face-generate"):
        DCGANFaces(package="tensorpanda_test_no_such_package")


def test_import_loads_no_generator_package():
    code = textwrap.dedent(
        """
        import sys
        import tensorpanda.adapters as adapters
        assert "dcgan-faces" in adapters.available()
        heavy = [m for m in sys.modules
                 if m.startswith(("pytorch_pretrained_biggan", "gan_face_generate", "boto3"))]
        assert not heavy, heavy
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- registry -----------------------------------------------------------------------------


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry_module, "_registered", {})


def tiny_generic(scale=1.0, name="tiny"):
    torch.manual_seed(0)
    net = nn.Sequential(nn.ConvTranspose2d(8, 4, 4), nn.ReLU(), nn.ConvTranspose2d(4, 3, 4, 2, 1),
                        nn.Tanh())
    return GenericAdapter(net, lambda n, g: scale * torch.randn(n, 8, 1, 1, generator=g),
                          name=name)


def test_unknown_adapter_lists_available():
    with pytest.raises(ValueError, match=r"no adapter named 'stylegan9'.*biggan, dcgan-faces"):
        load("stylegan9")


def test_register_and_load(clean_registry):
    register("tiny", tiny_generic)
    assert "tiny" in available()
    adapter = load("tiny", scale=2.0, name="tiny-2")
    assert isinstance(adapter, Adapter) and adapter.name == "tiny-2"
    assert adapter.sample_latents(1000).z.std() > 1.9
    with pytest.raises(ValueError, match="already registered"):
        register("tiny", tiny_generic)
    with pytest.raises(ValueError, match="already registered"):
        register("dcgan-faces", tiny_generic)
    register("tiny", lambda **kw: tiny_generic(name="again"), overwrite=True)
    assert load("tiny").name == "again"
    register("by-path", "tensorpanda.adapters.generic:GenericAdapter")
    net = nn.Sequential(nn.ConvTranspose2d(8, 4, 4), nn.ReLU())
    by_path = load("by-path", generator=net, latent_sampler=lambda n, g: torch.zeros(n, 8, 1, 1))
    assert isinstance(by_path, GenericAdapter) and by_path.layers == {"0": (4, 4, 4),
                                                                      "1": (4, 4, 4)}
    register("not-an-adapter", lambda: object())
    with pytest.raises(TypeError, match="not a tensorpanda.adapters.Adapter"):
        load("not-an-adapter")
    with pytest.raises(TypeError, match="callable"):
        register("bad", 42)


def test_entry_point_plugin_is_discovered_lazily(tmp_path, monkeypatch, clean_registry):
    module = "tensorpanda_test_plugin"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn
            from tensorpanda.adapters import GenericAdapter

            def make(width=4):
                torch.manual_seed(0)
                net = nn.Sequential(nn.ConvTranspose2d(8, width, 4), nn.ReLU(),
                                    nn.ConvTranspose2d(width, 3, 4, 2, 1), nn.Tanh())
                sampler = lambda n, g: torch.randn(n, 8, 1, 1, generator=g)
                return GenericAdapter(net, sampler, layers=["1"], name="plugin-gan")
            """
        )
    )
    dist = tmp_path / "tensorpanda_test_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tensorpanda-test-plugin\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        f"[tensorpanda.adapters]\nplugin-gan = {module}:make\n"
    )
    assert "plugin-gan" not in available()
    monkeypatch.syspath_prepend(str(tmp_path))  # also invalidates the import caches
    monkeypatch.delitem(sys.modules, module, raising=False)
    try:
        assert "plugin-gan" in available()
        assert module not in sys.modules  # listed, not imported
        adapter = load("plugin-gan", width=5)
        assert module in sys.modules
        assert adapter.name == "plugin-gan" and adapter.layers == {"1": (5, 4, 4)}
        plain = adapter.generate(adapter.sample_latents(3))
        assert torch.equal(adapter.generate(adapter.sample_latents(3), "1",
                                            edit=torch.zeros(5, 4, 4)), plain)
    finally:
        sys.modules.pop(module, None)


# -- GenericAdapter -----------------------------------------------------------------------


def test_generic_discovers_layers(generic):
    layers = generic.layers
    for name, shape in DCGAN_LAYERS.items():
        assert layers[name] == shape
    assert layers["main.0"] == (512, 4, 4) and layers["main"] == (3, 64, 64)
    names = list(layers)
    assert names.index("main.2") < names.index("main.5") < names.index("main.11")
    assert generic.latent_shape == (100, 1, 1) and generic.latent_dim == 100


def toy_generator():
    """Small, cheap, and varied: a view of z, BatchNorm, in-place ReLUs, nesting, upsampling."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Unflatten(1, (16, 1, 1)),
        nn.ConvTranspose2d(16, 32, 4),
        nn.BatchNorm2d(32),
        nn.ReLU(inplace=True),
        nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(32, 16, 3, padding=1),
                      nn.ReLU(inplace=True)),
        nn.ConvTranspose2d(16, 3, 4, 2, 1),
        nn.Tanh(),
    )


def test_generic_every_discovered_layer_round_trips():
    toy = GenericAdapter(toy_generator(), lambda n, g: torch.randn(n, 16, generator=g))
    assert toy.layers == {
        "0": (16, 1, 1), "1": (32, 4, 4), "2": (32, 4, 4), "3": (32, 4, 4),
        "4.0": (32, 8, 8), "4.1": (16, 8, 8), "4.2": (16, 8, 8), "4": (16, 8, 8),
        "5": (3, 16, 16), "6": (3, 16, 16),
    }
    latents = toy.sample_latents(N, seed=1)
    z = latents.z.clone()
    plain = toy.generate(latents, batch_size=4)
    for layer in toy.layers:
        assert_zero_edit_identity(toy, latents, layer, plain)
        assert_reinjection_identity(toy, latents, layer, plain)
    assert_no_hook_after_failure(toy, latents, "3")
    # Layer "0" is a view of z: editing it must not write into the caller's latents.
    toy.generate(latents, "0", edit=lambda f, i: f.mul_(0.0))
    assert torch.equal(latents.z, z)


def test_generic_matches_the_dedicated_adapter(generic, dcgan, latents, plain):
    assert torch.equal(generic.generate(latents.z[:, :, None, None], batch_size=4), plain)
    torch.testing.assert_close(generic.latent_projection(), dcgan.latent_projection())
    assert generic._find_latent_module() == "main.0"


def test_generic_float16_features_are_float32():
    adapter = tiny_generic().to(dtype=torch.float16)
    batches = list(adapter.features(adapter.sample_latents(3), "1"))
    assert adapter.dtype == torch.float16
    assert [b.dtype for b in batches] == [torch.float32]
    reference = tiny_generic()
    expected = next(iter(reference.features(reference.sample_latents(3), "1")))
    torch.testing.assert_close(batches[0], expected, rtol=0.01, atol=0.01)


def test_generic_bad_layers_and_samplers():
    shared = nn.ConvTranspose2d(3, 3, 1)
    net = nn.Sequential(nn.ConvTranspose2d(8, 3, 4), shared, shared, nn.Flatten())
    sampler = lambda n, g: torch.randn(n, 8, 1, 1, generator=g)  # noqa: E731
    adapter = GenericAdapter(net, sampler)
    assert list(adapter.layers) == ["0"]  # '1' runs twice, '3' is flat: not feature layers
    with pytest.raises(ValueError, match="runs 2 times"):
        _ = GenericAdapter(net, sampler, layers=["1"]).layers
    with pytest.raises(ValueError, match=r"output is \(1, 48\)"):
        _ = GenericAdapter(net, sampler, layers=["3"]).layers
    with pytest.raises(ValueError, match="no submodule named 'main.0'"):
        GenericAdapter(net, sampler, layers=["main.0"])
    with pytest.raises(ValueError, match=r"shape \(n, ...\) with n = 1, got \(3, 8, 1, 1\)"):
        GenericAdapter(net, lambda n, g: torch.zeros(3, 8, 1, 1)).sample_latents(5)


def test_generic_custom_forward_and_to_image():
    torch.manual_seed(0)
    net = nn.Sequential(nn.ConvTranspose2d(8, 4, 4), nn.Sigmoid())
    adapter = GenericAdapter(
        net,
        lambda n, g: torch.randn(n, 8, generator=g),
        to_image=lambda out: out[:, :3],
        forward=lambda gen, lat: gen(lat.z[:, :, None, None]),
    )
    images = adapter.generate(adapter.sample_latents(2))
    assert images.shape == (2, 3, 4, 4)
    assert 0 < float(images.min()) and float(images.max()) < 1
    assert adapter.latent_projection().shape == (4 * 4 * 4, 8)
    first_weight = float(net[0].weight[0, 0, 0, 0].detach())
    assert math.isclose(float(adapter.latent_projection()[0, 0]), first_weight)


def test_a_generator_without_a_w_space_refuses_w_codes(dcgan, latents):
    with_ws = Latents(latents.z, ws=torch.zeros(len(latents), 8))
    with pytest.raises(ValueError, match="no W space"):
        dcgan.generate(with_ws)

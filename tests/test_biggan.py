"""Tests of the biggan adapter on a small, randomly initialised BigGAN-deep.

The configuration below keeps the real architecture (conditional batch norm, residual
blocks with upsampling, self-attention) with a few channels, 10 classes and a 32x32
output, so that every check runs in well under a second.
"""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("pytorch_pretrained_biggan")

from tensorpanda.adapters import BigGANAdapter, Latents, Trace, forward_hooks, load  # noqa: E402

# Torch-only code: it does not change with the TensorLy backend, so it runs in the
# numpy pass of `make test` only.
pytestmark = pytest.mark.backend_independent

SMALL = dict(
    output_dim=32,
    z_dim=16,
    class_embed_dim=16,
    channel_width=4,
    num_classes=10,
    attention_layer_position=2,
    layers=[(False, 16, 16), (True, 16, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1)],
)
SMALL_LAYERS = {
    "generator.layers.0": (64, 4, 4),
    "generator.layers.1": (32, 8, 8),
    "generator.layers.2": (32, 8, 8),  # self-attention
    "generator.layers.3": (16, 16, 16),
    "generator.layers.4": (8, 16, 16),
    "generator.layers.5": (4, 32, 32),
}
N = 6


@pytest.fixture(scope="module")
def gan():
    return load("biggan", config=SMALL, random_weights=True)


@pytest.fixture(scope="module")
def latents(gan):
    return gan.sample_latents(N, seed=1, truncation=0.6, classes=[0, 1, 2, 3, 9, 9])


@pytest.fixture(scope="module")
def plain(gan, latents):
    return gan.generate(latents, batch_size=4)


# -- same per-adapter checks as in test_adapters.py --------------------------------------


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
    captured = torch.cat(list(adapter.features(latents, layer, batch_size=4)))
    images = adapter.generate(latents, layer, edit=lambda f, index: captured[index], batch_size=4)
    assert torch.equal(images, plain)
    assert forward_hooks(adapter.generator) == {}


# -- layers and identities ------------------------------------------------------------------


def test_layer_table(gan):
    assert gan.layers == SMALL_LAYERS
    assert list(gan.layers) == list(SMALL_LAYERS)
    assert gan.default_layer == "generator.layers.3"
    assert (gan.latent_dim, gan.num_classes, gan.has_truncation) == (16, 10, True)


def test_images(gan, plain):
    assert plain.shape == (N, 3, 32, 32) and plain.dtype == torch.float32
    assert plain.min() >= 0 and plain.max() <= 1
    # Calibrated spectral norms keep a random model's output away from a flat grey.
    assert plain.std() > 0.02


@pytest.mark.parametrize("layer", list(SMALL_LAYERS))
def test_zero_edit_identity(gan, latents, plain, layer):
    assert_zero_edit_identity(gan, latents, layer, plain)


@pytest.mark.parametrize("layer", list(SMALL_LAYERS))
def test_reinjection_identity(gan, latents, plain, layer):
    assert_reinjection_identity(gan, latents, layer, plain)


def test_no_hook_after_failed_edit(gan, latents):
    def fail(features, index):
        raise RuntimeError("edit failed")

    with pytest.raises(RuntimeError, match="edit failed"):
        gan.generate(latents, "generator.layers.2", edit=fail)
    assert forward_hooks(gan.generator) == {}


@pytest.mark.parametrize("layer", list(SMALL_LAYERS))
def test_feature_shapes(gan, latents, layer):
    stream = gan.features(latents, layer, batch_size=4)
    assert stream.shape == (N, *SMALL_LAYERS[layer]) and len(stream) == 2
    batches = list(stream)
    assert [tuple(b.shape[1:]) for b in batches] == [SMALL_LAYERS[layer]] * 2
    assert all(b.dtype == torch.float32 for b in batches)
    assert all(torch.equal(a, b) for a, b in zip(batches, list(stream), strict=True))


def test_nonzero_edit_changes_the_image(gan, latents, plain):
    delta = torch.zeros(16, 16, 16)
    delta[:, :4, :4] = 5.0
    edited = gan.generate(latents, "generator.layers.3", edit=delta)
    change = (edited - plain).abs().sum(dim=(0, 1))
    assert change.sum() > 0
    assert change[:16, :16].sum() / change.sum() > 0.9  # the region (8x8 pixels) + margin


# -- conditioning ---------------------------------------------------------------------------


def test_features_depend_on_the_class(gan):
    a = gan.sample_latents(2, seed=5, classes=3)
    b = Latents(a.z, gan.sample_latents(2, classes=7).condition, a.truncation)
    for layer in SMALL_LAYERS:
        fa = next(iter(gan.features(a, layer)))
        fb = next(iter(gan.features(b, layer)))
        assert not torch.allclose(fa, fb), layer


def test_conditioning_is_kept_after_the_edited_layer(gan):
    """Layers after the split see the sample's own class vector, not a frozen one."""
    z = gan.sample_latents(1, seed=2, truncation=0.8)
    cat = Latents(z.z, gan.sample_latents(1, classes=1).condition, z.truncation)
    dog = Latents(z.z, gan.sample_latents(1, classes=8).condition, z.truncation)
    layer = "generator.layers.1"
    cat_features = next(iter(gan.features(cat, layer)))
    # Class-1 features re-injected into a class-8 pass: the blocks after the layer use
    # class 8, so the image is neither the class-1 image nor the plain class-8 one.
    mixed = gan.generate(dog, layer, edit=lambda f, index: cat_features)
    assert not torch.equal(mixed, gan.generate(cat))
    assert not torch.equal(mixed, gan.generate(dog))
    # ... and with the class-8 features it is exactly the class-8 image.
    dog_features = next(iter(gan.features(dog, layer)))
    assert torch.equal(gan.generate(dog, layer, edit=lambda f, i: dog_features),
                       gan.generate(dog))


def test_zero_edit_with_a_mix_of_classes(gan):
    mix = gan.sample_latents(8, seed=4, truncation=0.5)
    assert len(set(mix.condition.argmax(1).tolist())) > 2
    plain = gan.generate(mix, batch_size=3)
    for layer in ("generator.layers.0", "generator.layers.4"):
        edited = gan.generate(mix, layer, edit=torch.zeros(len(mix), *SMALL_LAYERS[layer]),
                              batch_size=3)
        assert torch.equal(edited, plain)


# -- latents --------------------------------------------------------------------------------


def test_truncated_latents(gan, latents):
    assert latents.truncation == 0.6
    assert latents.z.shape == (N, 16) and latents.z.abs().max() <= 2 * 0.6
    big = gan.sample_latents(4000, seed=0, truncation=0.5)
    assert big.z.abs().max() <= 1.0 and big.z.abs().max() > 0.95
    assert gan.sample_latents(2).truncation == 1.0
    assert torch.equal(gan.sample_latents(5, seed=9).z, gan.sample_latents(5, seed=9).z)


def test_truncation_reaches_the_generator(gan, latents):
    # A random model's batch-norm statistics are the same for every truncation, so watch
    # the argument itself rather than the image.
    seen = []
    handle = gan.generator.register_forward_pre_hook(lambda module, args: seen.append(args[2]))
    try:
        gan.generate(latents, batch_size=4)
        list(gan.features(Latents(latents.z, latents.condition, None), "generator.layers.0"))
    finally:
        handle.remove()
    assert seen == [0.6, 0.6, 1.0]


def test_class_vectors(gan, latents):
    assert torch.equal(latents.condition, torch.eye(10)[[0, 1, 2, 3, 9, 9]])
    assert torch.equal(gan.sample_latents(3, classes=4).condition, torch.eye(10)[[4, 4, 4]])
    assert torch.equal(gan.sample_latents(2, classes=np.array([5, 6])).condition.argmax(1),
                       torch.tensor([5, 6]))
    drawn = gan.sample_latents(50, seed=0).condition
    assert drawn.sum(1).eq(1).all() and len(set(drawn.argmax(1).tolist())) > 5


def test_bad_sampling_arguments(gan):
    with pytest.raises(ValueError, match=r"classes 0\.\.9"):
        gan.sample_latents(2, classes=10)
    with pytest.raises(ValueError, match="3 ints"):
        gan.sample_latents(3, classes=[1, 2])
    with pytest.raises(ValueError, match="3 ints"):
        gan.sample_latents(3, classes=[0.5, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"truncation must be in \(0, 1\]"):
        gan.sample_latents(3, truncation=1.5)


def test_bad_latents(gan, latents):
    with pytest.raises(ValueError, match=r"needs class vectors.*\(6, 10\), got None"):
        gan.generate(latents.z)
    with pytest.raises(ValueError, match=r"\(6, 10\), got \(6, 1000\)"):
        gan.generate(Latents(latents.z, torch.zeros(6, 1000), 0.5))
    with pytest.raises(ValueError, match=r"shape \(N, 16\), got \(6, 128\)"):
        gan.features(Latents(torch.zeros(6, 128), latents.condition), "generator.layers.0")
    with pytest.raises(ValueError, match=r"truncation must be in \(0, 1\]"):
        gan.generate(Latents(latents.z, latents.condition, 0.0))
    with pytest.raises(ValueError, match=r"\(C, H, W\) = \(32, 8, 8\)"):
        gan.generate(latents, "generator.layers.1", edit=torch.zeros(64, 4, 4))
    with pytest.raises(ValueError, match=r"no feature layer 'generator\.gen_z'.*layers\.0"):
        gan.features(latents, "generator.gen_z")


# -- latent projection ----------------------------------------------------------------------


def test_latent_projection_is_the_z_part_of_gen_z(gan):
    W = gan.latent_projection()
    assert W.shape == (4 * 4 * 16 * 4, 16)
    a = gan.sample_latents(3, seed=1, classes=2)
    b = gan.sample_latents(3, seed=2, classes=2)
    outputs = []
    for lat in (a, b):
        with torch.no_grad(), Trace(gan.generator, "generator.gen_z", retain_output=True,
                                    stop=True) as t:
            gan.generator(lat.z, lat.condition, lat.truncation)
        outputs.append(t.output)
    # The class embedding and the bias cancel; what is left is W (z_a - z_b).
    torch.testing.assert_close(outputs[0] - outputs[1], (a.z - b.z) @ W.T,
                               rtol=1e-4, atol=1e-5)


# -- construction ---------------------------------------------------------------------------


def test_random_weights_are_seeded_and_leave_the_global_rng_alone(gan, latents, plain):
    state = torch.get_rng_state()
    again = BigGANAdapter(config=SMALL, random_weights=True, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(again.generate(latents, batch_size=4), plain)
    other = BigGANAdapter(config=SMALL, random_weights=True, seed=1)
    assert not torch.equal(other.generate(latents, batch_size=4), plain)


def test_no_silent_random_weights():
    with pytest.raises(ValueError, match="random_weights=True"):
        load("biggan")
    with pytest.raises(ValueError, match="not both"):
        load("biggan", weights="somewhere", random_weights=True)


@pytest.fixture
def weights_folder(gan, tmp_path):
    folder = tmp_path / "biggan-small"
    folder.mkdir()
    torch.save(gan.generator.state_dict(), folder / "pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps(gan.config.to_dict()))
    return folder


def test_weights_folder_round_trip(weights_folder, latents, plain):
    loaded = load("biggan", weights=weights_folder)
    assert torch.equal(loaded.generate(latents, batch_size=4), plain)
    with pytest.raises(ValueError, match="config.json"):
        load("biggan", weights=weights_folder, config=SMALL)


def test_weights_folder_missing(tmp_path, weights_folder):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load("biggan", weights=tmp_path / "nowhere")
    (weights_folder / "pytorch_model.bin").unlink()
    with pytest.raises(FileNotFoundError, match="pytorch_model.bin"):
        load("biggan", weights=weights_folder)


def test_weights_file_not_a_state_dict(weights_folder):
    torch.save([1, 2, 3], weights_folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match="holds a list, not a state dict"):
        load("biggan", weights=weights_folder)
    (weights_folder / "pytorch_model.bin").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="cannot read .* as a torch checkpoint"):
        load("biggan", weights=weights_folder)


def test_weights_of_another_configuration(weights_folder):
    config = json.loads((weights_folder / "config.json").read_text())
    config["num_classes"] = 12
    (weights_folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="(?s)does not fit.*embeddings.weight"):
        load("biggan", weights=weights_folder)
    (weights_folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load("biggan", weights=weights_folder)


def test_missing_package_says_how_to_install():
    with pytest.raises(ImportError, match="pip install pytorch-pretrained-biggan"):
        BigGANAdapter(random_weights=True, package="tensorpanda_test_no_such_package")

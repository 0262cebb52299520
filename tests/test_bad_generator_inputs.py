"""Bad and edge inputs to the generators and their loaders (issue 12): each class of failure
gives a clear error naming the problem, never a raw torch error from deep inside or a silently
wrong (NaN, black) result."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tensorpanda.adapters import Latents, load

pytestmark = pytest.mark.backend_independent

DATA = Path(__file__).parent / "data"
SG2 = DATA / "stylegan2" / "sg2_orig_uncond.pkl"
SG2_COND = DATA / "stylegan2" / "sg2_resnet_cond.pkl"
PGGAN = DATA / "genforce" / "pggan32.pth"
ROSINALITY = DATA / "rosinality" / "stylegan2_32.pt"


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} is not there (tests/fixtures/make_*_fixtures.py)")
    return path


@pytest.fixture(scope="module")
def gan():
    torch.set_num_threads(1)
    return load("stylegan2", checkpoint=_need(SG2))


@pytest.fixture(scope="module")
def latents(gan):
    return gan.sample_latents(2)


# -- non-finite numbers: refused where they enter, never NaN (black) images -----------------
def test_non_finite_edits_are_refused(gan, latents):
    layer = gan.default_layer
    shape = gan.layers[layer]
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="NaN or infinite"):
            gan.generate(latents, layer, edit=torch.full(shape, bad))
        with pytest.raises(ValueError, match="NaN or infinite"):
            gan.generate(latents, layer, edit=np.full(shape, bad))
    with pytest.raises(ValueError, match="returned NaN or infinite"):
        gan.generate(latents, layer, edit=lambda features, index: features * float("nan"))
    # a finite edit of integers is fine
    assert gan.generate(latents, layer, edit=np.zeros(shape, dtype=int)).isfinite().all()


def test_non_finite_codes_are_refused(gan):
    z = torch.zeros(2, gan.latent_dim)
    z[1, 3] = float("nan")
    with pytest.raises(ValueError, match=r"Latents.z holds NaN"):
        gan.generate(z)
    with pytest.raises(ValueError, match=r"Latents.ws holds NaN"):
        gan.generate(gan.latents_from_ws(torch.full((1, gan.w_dim), float("inf"))))
    with pytest.raises(ValueError, match="finite"):
        gan.sample_latents(2, truncation=float("nan"))
    with pytest.raises(ValueError, match="finite"):
        load("stylegan2", checkpoint=SG2, truncation=float("inf"))


def test_non_finite_shifts_in_w_are_refused(gan, latents):
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        gan.shift_ws(latents, np.ones(gan.w_dim), alpha=float("nan"))
    with pytest.raises(ValueError, match="direction holds NaN"):
        gan.shift_ws(latents, np.full(gan.w_dim, np.inf))


@pytest.mark.generator
def test_a_non_finite_edit_of_the_dcgan_is_refused():
    pytest.importorskip("gan_face_generate")
    dcgan = load("dcgan-faces")
    with pytest.raises(ValueError, match="NaN or infinite"):
        dcgan.generate(dcgan.sample_latents(1), "8x8", edit=torch.full((256, 8, 8), np.nan))


# -- wrong types: named, not a raw error from math, difflib or pathlib ----------------------
def test_wrong_types_are_named(gan, latents):
    with pytest.raises(TypeError, match="truncation must be a number"):
        gan.sample_latents(2, truncation="0.7")
    with pytest.raises(TypeError, match="Latents.truncation must be a number"):
        gan.generate(Latents(torch.zeros(1, gan.latent_dim), truncation="a"))
    with pytest.raises(TypeError, match="a layer is named by a string"):
        gan.resolve_layer(3)
    with pytest.raises(TypeError, match="layers must be None, a ws index"):
        gan.sefa_directions(layers=1.5)
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        gan.shift_ws(latents, np.ones(gan.w_dim), alpha="x")
    with pytest.raises(TypeError, match="real numbers"):
        gan.generate(latents, gan.default_layer,
                     edit=torch.zeros(gan.layers[gan.default_layer], dtype=torch.complex64))
    with pytest.raises(TypeError, match="checkpoint must be a path"):
        load("stylegan2", checkpoint=3)
    # numpy numbers are numbers; a bytes path is a path
    assert load("stylegan2", checkpoint=str(SG2).encode(),
                truncation=np.float32(0.5)).default_truncation == 0.5


def test_edge_selections_are_explained(gan):
    with pytest.raises(ValueError, match="the layer selection is empty"):
        gan.sefa_directions(layers=slice(3, 3))
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        gan.sefa_directions(layers=slice(0, 3, 0))
    with pytest.raises(ValueError, match="n_samples must be an integer >= 2"):
        gan.ganspace_directions(n_directions=2, n_samples=1)
    with pytest.raises(ValueError, match="needs at least as many samples"):
        gan.ganspace_directions(n_directions=10, n_samples=5)


# -- devices and dtypes: checked before the checkpoint is read ------------------------------
@pytest.mark.parametrize("device,error,message", [
    ("bogus", ValueError, "device 'bogus' is not a torch device"),
    ("meta", ValueError, "holds no weights"),
    (-1, ValueError, "device index must be >= 0"),
    (1.5, TypeError, "device must be a string"),
])
def test_bad_devices_are_refused_before_reading(tmp_path, device, error, message):
    missing = tmp_path / "missing.pkl"
    missing.write_bytes(b"")  # an empty file: reading it would fail with another message
    with pytest.raises(error, match=message):
        load("stylegan2", checkpoint=missing, device=device)


def test_a_missing_gpu_is_named():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        load("pggan", checkpoint=_need(PGGAN), device="cuda")
    from tensorpanda.adapters.devices import torch_device

    with pytest.raises(ValueError, match="no CUDA GPU"):
        torch_device(0)


def test_moving_an_adapter_checks_the_device(gan):
    with pytest.raises(ValueError, match="not a torch device"):
        gan.to("bogus")
    assert gan.device.type == "cpu"


@pytest.mark.parametrize("dtype,error,message", [
    (torch.int64, ValueError, "must be a floating dtype"),
    ("float99", ValueError, "not a torch dtype"),
    (np.float32, TypeError, "must be a torch dtype"),
])
def test_bad_dtypes_are_refused(dtype, error, message):
    with pytest.raises(error, match=message):
        load("stylegan2", checkpoint=_need(SG2), dtype=dtype)


def test_a_dtype_may_be_named():
    assert load("stylegan2", checkpoint=_need(SG2), dtype="float16").dtype == torch.float16


# -- checkpoint files that are not what they claim ------------------------------------------
def test_a_folder_is_not_a_checkpoint(tmp_path):
    folder = tmp_path / "ffhq.pkl"
    folder.mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        load("stylegan2", checkpoint=folder)
    from tensorpanda.adapters.checkpoints import detect_format

    with pytest.raises(ValueError, match="a folder, not a checkpoint file"):
        detect_format(folder)


def test_a_zip_that_is_not_a_torch_file(tmp_path):
    path = tmp_path / "g.pkl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="a zip archive that is not a torch.save checkpoint"):
        load("stylegan2", checkpoint=path)


@pytest.mark.parametrize("generator,message", [({}, "holds an empty dict"),
                                               ([1, 2], "holds a list")])
def test_a_genforce_file_without_a_usable_generator(tmp_path, generator, message):
    path = tmp_path / "g.pth"
    torch.save({"generator": generator, "discriminator": {"w": torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match=message):
        load("pggan", checkpoint=path)


def test_a_checkpoint_with_nan_weights_is_refused(tmp_path):
    state = torch.load(_need(ROSINALITY), weights_only=True)
    state["g_ema"]["convs.0.conv.weight"][..., 0] = float("nan")
    path = tmp_path / "g.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match="NaN or infinite values in synthesis.b8.conv0"):
        load("stylegan2", checkpoint=path)


def test_an_unknown_option_lists_the_options():
    with pytest.raises(TypeError, match="takes no option 'truncaton'; its options: checkpoint"):
        load("stylegan2", checkpoint=SG2, truncaton=0.7)
    with pytest.raises(TypeError, match="adapter 'pggan' takes no option 'truncation'"):
        load("pggan", checkpoint=PGGAN, truncation=0.7)

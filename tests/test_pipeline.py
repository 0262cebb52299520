"""End to end on the real DCGAN-faces generator (fit on streamed features, edit, measure), and
how the demo picks its edits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tensorpanda as tp
from tensorpanda.adapters import load
from tensorpanda.app.demo import DemoConfig, appearance_for, border_region, part_near, run

pytestmark = pytest.mark.backend_independent
LAYER = "main.5"


@pytest.fixture(scope="module")
def gan():
    pytest.importorskip("gan_face_generate")
    return load("dcgan-faces")


@pytest.fixture(scope="module")
def fitted(gan):
    stream = gan.features(gan.sample_latents(1000, seed=0), LAYER, batch_size=250)
    fit = tp.tucker2(stream, (None, 8), solver="hals", random_state=0)
    held_out = gan.sample_latents(100, seed=1)
    Z = torch.cat(list(gan.features(held_out, LAYER, batch_size=100))).numpy()
    return fit, held_out, Z, gan.generate(held_out, batch_size=100)


@pytest.mark.generator
def test_the_solver_reads_the_generator_stream_once(fitted):
    fit, _, _, _ = fitted
    assert fit.info["n_passes"] == 1 and fit.info["n_samples"] == 1000
    assert tuple(fit.spatial_shape) == (8, 8) and fit.rank == (256, 8)


@pytest.mark.generator
def test_a_zero_edit_from_the_factors_changes_no_pixel(gan, fitted):
    fit, held_out, _, images = fitted
    zero = torch.as_tensor(np.asarray(tp.edit_direction(fit, 3, [1, 2], alpha=0.0)))
    assert torch.equal(gan.generate(held_out, LAYER, edit=zero.float(), batch_size=100), images)


@pytest.mark.generator
@pytest.mark.parametrize("part", range(8))
def test_an_edit_at_a_part_stays_mostly_inside_it(gan, fitted, part):
    """ROIR < 1 on the part's own mask, averaged over 100 held-out samples."""
    fit, held_out, Z, images = fitted
    j, sign = appearance_for(fit, Z, np.asarray(tp.part_map(fit, part)) >= 0.5)
    scale = float(np.sqrt((Z**2).sum(axis=1)).mean())
    delta = torch.as_tensor(np.asarray(tp.edit_direction(fit, j, part, sign * scale)))
    edited = gan.generate(held_out, LAYER, edit=delta.float(), batch_size=100)
    assert not torch.equal(edited, images)
    mask = np.asarray(tp.part_mask(fit, part, size=(64, 64)))
    mean, _ = tp.summarize(tp.roir(images, edited, mask))
    assert mean < 1.0


@pytest.mark.generator
def test_the_demo_writes_its_figures_and_keeps_existing_folders(tmp_path):
    pytest.importorskip("gan_face_generate")
    out = tmp_path / "demo"
    run(out, DemoConfig(n_samples=300, n_measured=20))
    names = {p.name for p in out.iterdir()}
    assert {"parts.png", "edit-near-eyes.png", "edit-near-eyes.gif", "edit-near-mouth.png",
            "edit-near-mouth.gif", "border-appearance-in-eyes-part.png",
            "saliency-border-appearance.png", "summary.md", "factors.safetensors"} <= names
    summary = (out / "summary.md").read_text()
    assert "relative error" in summary and "ROIR" in summary
    assert tp.load(out / "factors.safetensors").info["layer"] == LAYER
    with pytest.raises(FileExistsError, match="not empty"):
        run(out, DemoConfig(n_samples=300, n_measured=20))


# -- how the demo picks its edits (no generator) ------------------------------------------------


def test_part_near_picks_the_part_by_its_mass_centre():
    # one-pixel parts in the top-left and bottom-right corners of a 4x4 grid
    P = np.zeros((16, 2))
    P[0, 0] = P[15, 1] = 1.0
    fit = tp.Factorization(A=np.eye(3), P=P, spatial_shape=(4, 4))
    assert part_near(fit, (0.9, 0.8)) == 1 and part_near(fit, (0.1, 0.2)) == 0


def test_border_region_is_the_outer_frame():
    np.testing.assert_array_equal(
        border_region((4, 5)).astype(int),
        [[1, 1, 1, 1, 1], [1, 0, 0, 0, 1], [1, 0, 0, 0, 1], [1, 1, 1, 1, 1]],
    )
    assert border_region((6, 6), width=2).sum() == 36 - 4


def test_appearance_for_finds_the_appearance_and_its_sign():
    fit = tp.Factorization(A=np.eye(3), P=np.eye(16)[:, :2], spatial_shape=(4, 4))
    Z = np.random.default_rng(0).random((5, 3, 4, 4))
    border = border_region((4, 4))
    Z[:, 1, border] += 1.0  # channel 1 raised on the border
    assert appearance_for(fit, Z, border) == (1, 1.0)
    Z[:, 2, border] -= 3.0  # channel 2 lowered even more
    assert appearance_for(fit, Z, border) == (2, -1.0)

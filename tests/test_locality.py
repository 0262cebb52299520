"""The locality harness: editors, calibration, and zero-strength identity for every method."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tensorpanda as tp
from tensorpanda.adapters import Latents, load
from tensorpanda.app.locality import (
    Candidate,
    Method,
    Setting,
    best_edit,
    calibrate,
    ganspace_method,
    inside_change,
    overlapping_parts,
    panda_method,
    sefa_method,
    shifted,
)

pytestmark = pytest.mark.backend_independent
SETTING = Setting(n_directions=2, n_appearances=1, fit_samples=300, ganspace_samples=300)


@pytest.fixture(scope="module")
def setup():
    pytest.importorskip("gan_face_generate")
    gan = load("dcgan-faces")
    panda, fit = panda_method(gan, "main.5", SETTING, seed=0)
    methods = [panda, sefa_method(gan, SETTING), ganspace_method(gan, SETTING, seed=0)]
    latents = gan.sample_latents(8, seed=3)
    return gan, fit, methods, latents, gan.generate(latents)


@pytest.mark.generator
def test_an_edit_of_strength_zero_is_the_identity_for_every_method(setup):
    _, _, methods, latents, images = setup
    region = np.zeros((64, 64), bool)
    region[40:56, 20:44] = True
    for method in methods:
        for candidate in method.candidates_for(region):
            assert torch.equal(candidate.edit(latents, 0.0), images), candidate.label


@pytest.mark.generator
def test_calibration_matches_the_requested_change_inside(setup):
    _, _, methods, latents, images = setup
    region = np.zeros((64, 64), bool)
    region[20:34, 12:52] = True
    for method in methods:
        candidate = method.candidates_for(region)[0]
        alpha = calibrate(candidate.edit, latents, images, region, target=0.05)
        change = inside_change(images, candidate.edit(latents, alpha), region)
        assert change == pytest.approx(0.05, rel=0.05), method.name


@pytest.mark.generator
def test_overlapping_parts_prefers_the_parts_inside_the_region(setup):
    _, fit, _, _, _ = setup
    region = np.asarray(tp.part_mask(fit, 3, size=(64, 64)))
    first, second, both = overlapping_parts(fit, region)
    assert first == [3] and both == sorted(first + second)


# -- the pieces, on known answers (no generator) ----------------------------------------------


def box(size=8, rows=slice(2, 6), cols=slice(2, 6)) -> np.ndarray:
    region = np.zeros((size, size), bool)
    region[rows, cols] = True
    return region


def test_shifted_moves_only_z():
    latents = Latents(torch.zeros(2, 3), torch.eye(2), truncation=0.5)
    moved = shifted(latents, torch.tensor([1.0, 0.0, 0.0]), 2.0)
    assert torch.equal(moved.z, torch.tensor([[2.0, 0, 0], [2.0, 0, 0]]))
    assert moved.condition is latents.condition and moved.truncation == 0.5
    assert torch.equal(latents.z, torch.zeros(2, 3))


def test_inside_change_is_the_rms_change_in_the_region():
    original = torch.zeros(2, 3, 4, 4)
    edited = original.clone()
    edited[:, :, :2] = 0.5
    region = np.zeros((4, 4), bool)
    region[:2] = True
    assert inside_change(original, edited, region) == 0.5
    assert inside_change(original, edited, ~region) == 0.0


def test_calibrate_finds_the_strength_of_a_linear_edit():
    images = torch.zeros(2, 3, 8, 8)

    def brighten(latents, alpha):
        return images + 0.01 * alpha

    alpha = calibrate(brighten, Latents(torch.zeros(2, 1)), images, box(), target=0.05)
    assert alpha == pytest.approx(5.0, rel=1e-3)
    # an edit that never reaches the region gives up above 1e4 rather than looping
    assert calibrate(lambda latents, alpha: images, Latents(torch.zeros(2, 1)), images,
                     box(), target=0.05) > 1e4


def test_best_edit_prefers_the_local_candidate_at_matched_strength():
    images = torch.zeros(2, 3, 8, 8)
    region = box()
    inside = torch.as_tensor(region, dtype=torch.float32)
    method = Method("toy", lambda region: [
        Candidate("everywhere", lambda latents, alpha: images + 0.01 * alpha),
        Candidate("inside", lambda latents, alpha: images + 0.01 * alpha * inside),
    ], seconds=0.0)
    candidate, alpha = best_edit(method, region, Latents(torch.zeros(2, 1)), images,
                                 Setting(target_change=0.05))
    assert candidate.label == "inside" and alpha == pytest.approx(5.0, rel=1e-3)


def test_overlapping_parts_on_known_parts():
    # parts on a 4x4 grid: the top half, the bottom-right and the bottom-left quadrants
    P = np.zeros((4, 4, 3))
    P[:2, :, 0] = P[2:, 2:, 1] = P[2:, :2, 2] = 1.0
    fit = tp.Factorization(A=np.eye(2), P=P.reshape(16, 3), spatial_shape=(4, 4))
    region = np.zeros((16, 16), bool)
    region[8:, 6:] = True  # the bottom-right quadrant and a bit more
    assert overlapping_parts(fit, region) == [[1], [2], [1, 2]]


# -- any adapter: a style-based one edits in W+ ------------------------------------------------
def test_every_method_runs_on_a_style_based_adapter_and_edits_in_w_plus():
    from test_style_adapter import tiny

    from tensorpanda.app.locality import is_style_based

    gan = tiny()
    assert is_style_based(gan)
    setting = Setting(n_directions=2, n_appearances=1, n_parts=3, fit_samples=40,
                      ganspace_samples=200, batch_size=8, sefa_layers=slice(0, 3))
    panda, fit = panda_method(gan, "b8.conv1", setting, seed=0)
    sefa, ganspace = sefa_method(gan, setting), ganspace_method(gan, setting, seed=0)
    assert np.allclose(
        np.abs(np.asarray(gan.sefa_directions(slice(0, 3), 2).U) @ np.asarray(
            tp.sefa(gan.latent_projection(slice(0, 3)).numpy(), 2).U).T), np.eye(2), atol=1e-5)
    latents = gan.sample_latents(6, seed=3)
    images = gan.generate(latents, batch_size=8)
    region = np.zeros((16, 16), bool)
    region[8:, 4:12] = True
    for method in (panda, sefa, ganspace):
        candidates = method.candidates_for(region)
        assert candidates, method.name
        for candidate in candidates:
            assert torch.equal(candidate.edit(latents, 0.0), images), candidate.label
    assert "at [0, 1, 2]" in sefa.candidates_for(region)[0].label
    # a SeFa edit moves W+ at its layers only: the deepest styles stay as they were
    moved = gan.shift_ws(latents, torch.ones(6), 1.0, slice(0, 3), batch_size=8)
    assert torch.equal(moved.ws[:, 3:], gan.to_ws(latents, batch_size=8).ws[:, 3:])
    candidate, alpha = best_edit(sefa, region, latents, images, Setting(target_change=0.02))
    assert alpha > 0 and candidate.label.startswith("sefa")
    assert fit.rank[1] == 3

"""The locality harness: editors, calibration, and zero-strength identity for every method."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("gan_face_generate")
from tensorpanda.adapters import load  # noqa: E402
from tensorpanda.adapters.locality import (  # noqa: E402
    Setting,
    calibrate,
    ganspace_method,
    inside_change,
    overlapping_parts,
    panda_method,
    sefa_method,
)

pytestmark = [pytest.mark.generator, pytest.mark.backend_independent]
SETTING = Setting(n_directions=2, n_appearances=1, fit_samples=300, ganspace_samples=300)


@pytest.fixture(scope="module")
def setup():
    gan = load("dcgan-faces")
    panda, fit = panda_method(gan, "main.5", SETTING, seed=0)
    methods = [panda, sefa_method(gan, SETTING), ganspace_method(gan, SETTING, seed=0)]
    latents = gan.sample_latents(8, seed=3)
    return gan, fit, methods, latents, gan.generate(latents)


def test_an_edit_of_strength_zero_is_the_identity_for_every_method(setup):
    _, _, methods, latents, images = setup
    region = np.zeros((64, 64), bool)
    region[40:56, 20:44] = True
    for method in methods:
        for candidate in method.candidates_for(region):
            assert torch.equal(candidate.edit(latents, 0.0), images), candidate.label


def test_calibration_matches_the_requested_change_inside(setup):
    _, _, methods, latents, images = setup
    region = np.zeros((64, 64), bool)
    region[20:34, 12:52] = True
    for method in methods:
        candidate = method.candidates_for(region)[0]
        alpha = calibrate(candidate.edit, latents, images, region, target=0.05)
        change = inside_change(images, candidate.edit(latents, alpha), region)
        assert change == pytest.approx(0.05, rel=0.05), method.name


def test_overlapping_parts_prefers_the_parts_inside_the_region(setup):
    _, fit, _, _, _ = setup
    import tensorpanda as tp

    region = np.asarray(tp.part_mask(fit, 3, size=(64, 64)))
    first, second, both = overlapping_parts(fit, region)
    assert first == [3] and both == sorted(first + second)

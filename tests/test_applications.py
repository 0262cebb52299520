"""Editing, saliency, ROIR and figures on the learned factors (no generator involved)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorly as tl
from PIL import Image

import tensorpanda as tp
from helpers import host, planted, to_backend
from tensorpanda import figures
from tensorpanda.saliency import interpolation_matrix


@pytest.fixture(scope="module")
def fitted():
    Z, _, _ = planted(n=120, channels=10, height=6, width=8, n_parts=4, noise=0.05)
    return Z, tp.tucker2(to_backend(Z), (None, 4), random_state=0)


def test_part_map_is_the_normalised_sum_of_parts(fitted):
    _, fit = fitted
    P = host(fit.P)
    region = host(tp.part_map(fit, [1, 3]))
    want = P[:, 1] + P[:, 3]
    want = (want - want.min()) / (want.max() - want.min())
    np.testing.assert_allclose(region, want.reshape(6, 8), atol=1e-12)
    assert host(tp.part_mask(fit, 1)).dtype == bool


def test_edit_direction_is_alpha_times_appearance_outer_region(fitted):
    _, fit = fitted
    delta = host(tp.edit_direction(fit, appearance=2, parts=1, alpha=3.0))
    a, p = host(fit.A)[:, 2], host(tp.part_map(fit, 1)).reshape(-1)
    np.testing.assert_allclose(delta.reshape(10, -1), 3.0 * np.outer(a, p), atol=1e-12)
    zero = host(tp.edit_direction(fit, appearance=2, parts=1, alpha=0.0))
    assert not zero.any()


def test_several_edits_add_up(fitted):
    _, fit = fitted
    both = host(tp.edit_direction(fit, [0, 2], [1, [0, 3]], alpha=[1.5, -2.0]))
    one = host(tp.edit_direction(fit, 0, 1, 1.5))
    two = host(tp.edit_direction(fit, 2, [0, 3], -2.0))
    np.testing.assert_allclose(both, one + two, atol=1e-12)


def test_sweep_and_apply(fitted):
    Z, fit = fitted
    delta = tp.edit_direction(fit, 0, 0)
    frames = host(tp.sweep(delta, [-1.0, 0.0, 2.0]))
    np.testing.assert_allclose(frames[2], 2 * host(delta), atol=1e-12)
    assert not frames[1].any()
    edited = host(tp.apply(to_backend(Z[:3]), delta))
    np.testing.assert_allclose(
        edited - Z[:3], np.broadcast_to(host(delta), (3, 10, 6, 8)), atol=1e-12
    )
    with pytest.raises(ValueError, match="do not end with the edit's shape"):
        tp.apply(to_backend(Z[:3, :, :4]), delta)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"appearance": 10, "parts": 0}, ValueError, r"appearance index 10 is out of range"),
        ({"appearance": 0, "parts": [4]}, ValueError, r"part index 4 is out of range"),
        ({"appearance": [0, 1], "parts": 2}, ValueError, "need 2 entries in parts"),
        ({"appearance": 0, "parts": 1, "alpha": [1, 2]}, ValueError, "alpha has 2 values"),
        ({"appearance": 0.5, "parts": 1}, TypeError, "must be integers"),
    ],
)
def test_edit_arguments_are_checked(fitted, kwargs, error, message):
    _, fit = fitted
    with pytest.raises(error, match=message):
        tp.edit_direction(fit, **kwargs)


def test_saliency_is_row_j_of_the_appearance_coordinates(fitted):
    Z, fit = fitted
    maps = host(tp.saliency(fit, to_backend(Z[:4]), appearance=3, normalize=False))
    want = np.einsum("c,ncs->ns", host(fit.A)[:, 3], Z[:4].reshape(4, 10, -1))
    np.testing.assert_allclose(maps.reshape(4, -1), want, rtol=1e-9, atol=1e-12)
    scaled = host(tp.saliency(fit, to_backend(Z[:4]), 3, size=(12, 16)))
    assert scaled.shape == (4, 12, 16)
    assert np.allclose(scaled.min(axis=(1, 2)), 0) and np.allclose(scaled.max(axis=(1, 2)), 1)
    masks = host(tp.saliency(fit, to_backend(Z[:4]), 3, threshold=0.5))
    assert masks.dtype == bool and masks.any()


def test_upsampling_keeps_constants_and_interpolates_linearly():
    M = interpolation_matrix(4, 10)
    np.testing.assert_allclose(M.sum(axis=1), 1)
    ramp = np.arange(4.0)
    inner = M @ ramp
    assert np.all(np.diff(inner) >= 0) and inner[0] == 0 and inner[-1] == 3
    maps = to_backend(np.ones((2, 3, 3)))
    np.testing.assert_allclose(host(tp.upsample(maps, (7, 5))), 1.0)


def test_region_scores_find_the_appearance_living_in_a_region(fitted):
    _, fit = fitted
    rng = np.random.RandomState(0)
    A = host(fit.A)
    region = np.zeros((6, 8), bool)
    region[:, :2] = True  # the left edge
    # data where appearance 5 is strong only on the left edge
    Z = rng.standard_normal((30, 10, 6, 8)) * 0.1
    Z += 5 * A[:, 5][None, :, None, None] * region[None, None]
    scores = tp.region_scores(fit, to_backend(Z), region)
    assert int(np.argmax(np.abs(scores))) == 5 and scores[5] > 1.5  # others: < 0.2
    assert tp.region_scores(fit, to_backend(-Z), region)[5] < -1.5  # −a_5 lives there now
    with pytest.raises(ValueError, match="both inside and outside"):
        tp.region_scores(fit, to_backend(Z), np.ones((6, 8), bool))
    with pytest.raises(ValueError, match=r"mask of the \(6, 8\) grid"):  # transposed
        tp.region_scores(fit, to_backend(Z), np.ascontiguousarray(region.T))
    flat = tp.region_scores(fit, to_backend(Z), region.reshape(-1))  # flat is fine
    np.testing.assert_allclose(flat, scores)


def test_roir_known_answers():
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(5, 3, 8, 8))
    M = np.zeros((8, 8))
    M[2:6, 3:7] = 1  # 16 of 64 pixels
    inside_only = X + 0.3 * M
    np.testing.assert_allclose(tp.roir(X, inside_only, M), 0.0)
    uniform = X + 0.3
    np.testing.assert_allclose(tp.roir(X, uniform, M), np.sqrt(48 / 16))
    per_sample = np.stack([M] * 5)
    np.testing.assert_allclose(tp.roir(X, uniform, per_sample), np.sqrt(3))
    ratios = tp.roir(X, X, M)
    assert np.isnan(ratios).all()  # no change at all
    assert tp.summarize([1.0, 3.0, np.nan]) == (2.0, 1.0)


def test_roir_input_checks():
    X = np.zeros((2, 3, 4, 4))
    with pytest.raises(ValueError, match="differ in shape"):
        tp.roir(X, X[:1], np.ones((4, 4)))
    with pytest.raises(ValueError, match="does not fit images"):
        tp.roir(X, X, np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        tp.roir(X, X, 2 * np.ones((4, 4)))


def test_figures_are_written_and_never_overwritten(fitted, tmp_path):
    _, fit = fitted
    rng = np.random.RandomState(0)
    images = rng.uniform(size=(3, 3, 24, 32))
    path = figures.parts_figure(fit.parts, images, tmp_path / "parts.png", upscale=1)
    picture = np.asarray(Image.open(path))
    assert picture.shape == (4 * 26 + 2, 4 * 34 + 2, 3)  # 1 + 3 rows of 4 parts, padded
    with pytest.raises(FileExistsError, match="overwrite=True"):
        figures.parts_figure(fit.parts, images, path)
    frames = np.stack([images * s for s in (0.2, 0.6, 1.0)])
    strip = np.asarray(Image.open(figures.edit_strip(frames, tmp_path / "s.png", upscale=1)))
    assert strip.shape == (3 * 26 + 2, 3 * 34 + 2, 3)
    gif = Image.open(figures.edit_gif(frames, tmp_path / "e.gif"))
    assert gif.n_frames == 4  # forward (3) then back without repeating the ends (1)
    maps = rng.uniform(size=(3, 6, 8))
    figures.saliency_figure(images, maps, tmp_path / "sal.png")
    with pytest.raises(ValueError, match=r"\(T, N, 3, H, W\)"):
        figures.edit_strip(images, tmp_path / "bad.png")


def test_overlay_shows_the_map_where_it_is_high():
    images = np.zeros((1, 3, 4, 4))
    maps = np.zeros((4, 4))
    maps[0, 0] = 1.0
    out = figures.overlay(images, maps, strength=1.0)
    assert out[0, 0, 0].sum() > 2.0 and out[0, 3, 3].sum() < 0.1
    assert tl.is_tensor(tp.part_map(tp.tucker2(to_backend(np.ones((3, 2, 2, 2))), (None, 1)), 0))


def test_figures_clip_values_outside_the_unit_interval_instead_of_wrapping():
    bright = figures.grid(np.full((1, 2, 2, 3), 1.2), columns=1, pad=0)
    dark = figures.grid(np.full((1, 2, 2, 3), -0.2), columns=1, pad=0)
    assert (bright == 255).all() and (dark == 0).all()
    images = np.full((1, 3, 4, 4), 0.5)
    too_high = figures.overlay(images, np.full((4, 4), 3.0), strength=1.0)
    at_one = figures.overlay(images, np.ones((4, 4)), strength=1.0)
    np.testing.assert_allclose(too_high, at_one)

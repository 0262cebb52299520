"""Editing, saliency and ROIR on the learned factors (no generator involved)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorly as tl

import tensorpanda as tp
from helpers import host, planted, to_backend
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
    assert tl.is_tensor(tp.part_map(fit, 0)) and tl.is_tensor(tp.part_mask(fit, 0, (12, 16)))


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

"""The sufficient statistics equal the sums they stand for, held or streamed, in any batching."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import host, to_backend
from tensorpanda.data import BatchSource
from tensorpanda.models import make_model
from tensorpanda.operators import MatrixOperator, StreamedOperator
from tensorpanda.statistics import (
    PARALLEL_MIN,
    accumulate,
    channel_gram_terms,
    channel_scatter,
    gram,
    product_terms,
    spatial_gram_terms,
)

rng = np.random.default_rng(0)
Z = rng.standard_normal((7, 4, 5))  # 7 samples, C = 4, S = 5
A = rng.standard_normal((4, 3))  # a free appearance basis
P = rng.random((5, 2))
X = rng.random((5, 2))


def close(x, expected):
    np.testing.assert_allclose(host(x), expected, rtol=1e-10, atol=1e-10)


def test_spatial_statistics():
    terms = spatial_gram_terms()(to_backend(Z))
    close(terms["K_S"], sum(z.T @ z for z in Z))
    close(terms["sq_norm"], (Z**2).sum())
    terms = spatial_gram_terms(to_backend(A), to_backend(A.T @ A))(to_backend(Z))
    close(terms["K_S"], sum(z.T @ A @ A.T @ z for z in Z))
    close(terms["K_S2"], sum(z.T @ A @ A.T @ A @ A.T @ z for z in Z))


def test_channel_statistics():
    D = 2 * np.eye(2) - P.T @ P
    terms = channel_gram_terms(to_backend(P), to_backend(D), to_backend(P.T @ P))(to_backend(Z))
    close(terms["K_C"], sum(z @ P @ D @ (z @ P).T for z in Z))
    close(terms["K_C2"], sum(z @ P @ P.T @ P @ (z @ P).T for z in Z))
    close(channel_scatter(to_backend(Z)), sum(z @ z.T for z in Z))


def test_products_equal_forming_the_statistic_first():
    close(product_terms(to_backend(X))(to_backend(Z))["KX"], sum(z.T @ z for z in Z) @ X)
    terms = product_terms(to_backend(X), to_backend(A), to_backend(A.T @ A))(to_backend(Z))
    close(terms["KX"], sum(z.T @ A @ A.T @ z for z in Z) @ X)
    close(terms["K2X"], sum(z.T @ A @ A.T @ A @ A.T @ z for z in Z) @ X)


@pytest.mark.backend_independent
def test_the_threaded_gram_equals_the_plain_product():
    Y = rng.standard_normal((PARALLEL_MIN // 8 + 3, 8))
    np.testing.assert_allclose(gram(Y), Y.T @ Y, rtol=1e-10)


def test_a_pass_sums_over_batches_and_keeps_the_head_apart():
    source = BatchSource(to_backend(Z), batch_size=3)  # batches of 3, 3 and 1
    totals = accumulate(source, spatial_gram_terms(), head=4,
                        head_terms=lambda Zb: {"scatter": channel_scatter(Zb)})
    assert totals["n_samples"] == 7 and totals["head_samples"] == 4
    close(totals["K_S"], sum(z.T @ z for z in Z))
    close(totals["head_scatter"], sum(z @ z.T for z in Z[:4]))


def test_a_pass_names_the_first_non_finite_sample():
    bad = Z.copy()
    bad[4, 1, 2] = np.nan
    with pytest.raises(ValueError, match="sample 4 .*NaN"):
        accumulate(BatchSource(to_backend(bad), batch_size=3), spatial_gram_terms())


@pytest.mark.parametrize("model, appearances", [("panda", "orthonormal"), ("panda", "free"),
                                                ("tucker", "nonnegative")])
def test_held_and_streamed_operators_agree(model, appearances):
    source = BatchSource(to_backend(Z), batch_size=2)
    m = make_model(model, appearances, "hals")
    held = m.parts_operator(source, to_backend(A), streamed=False)
    streamed = m.parts_operator(source, to_backend(A), streamed=True)
    assert isinstance(held, MatrixOperator) and isinstance(streamed, StreamedOperator)
    for h, s in zip(held.products(to_backend(X)), streamed.products(to_backend(X)), strict=True):
        close(s, host(h))

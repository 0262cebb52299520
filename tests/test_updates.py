"""Properties of the internal update rules, line search, initialisation and dtype helpers.

These replace the doctests the internal modules used to carry: each test states a property
(gradient, exactness, feasibility, invariance) and checks it on the active TensorLy backend.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorly as tl

from helpers import host, to_backend
from tensorpanda import _backend as B
from tensorpanda import data, init, quartic, updates
from tensorpanda.operators import MatrixOperator

EPS = np.finfo(np.float64).eps


def _psd(rng, n, m=None):
    Y = rng.standard_normal((m or 2 * n, n))
    return Y.T @ Y


def _tied_problem(seed, S=16, R=3):
    """Random symmetric PSD K1 ≠ K2, a non-negative X and a direction D (float64, host)."""
    rng = np.random.default_rng(seed)
    return _psd(rng, S), _psd(rng, S), rng.uniform(0.1, 1, (S, R)), rng.standard_normal((S, R))


def _f(X, K1, K2, const=5.0):
    """quartic.objective at a host X, the products taken on the backend."""
    x = to_backend(X)
    return quartic.objective(x, tl.dot(K1, x), tl.dot(K2, x), const)


@pytest.mark.parametrize("seed", [0, 1])
def test_tied_gradient_matches_central_differences(seed):
    K1h, K2h, X, _ = _tied_problem(seed)
    K1, K2, x = to_backend(K1h), to_backend(K2h), to_backend(X)
    G = host(updates.tied_gradient(x, tl.dot(K1, x), tl.dot(K2, x)))
    h, fd = 1e-5, np.zeros_like(X)
    for idx in np.ndindex(*X.shape):
        E = np.zeros_like(X)
        E[idx] = h
        fd[idx] = (_f(X + E, K1, K2) - _f(X - E, K1, K2)) / (2 * h)
    assert np.abs(fd - G).max() <= 1e-7 * np.abs(G).max()


def _quartic_from_critical_points(roots, scale=1.0, c0=0.0):
    """c_0..c_4 of c0 + ∫₀ᵗ 4·scale·Π(s − r) ds: a quartic with critical points ``roots``."""
    coef = (np.polynomial.Polynomial.fromroots(roots) * (4 * scale)).integ().coef.real
    return coef + np.r_[c0, 0.0, 0.0, 0.0, 0.0]


@pytest.mark.backend_independent
@pytest.mark.parametrize("seed", range(6))
def test_minimize_is_the_global_minimum_on_the_interval(seed):
    rng = np.random.default_rng(seed)
    # two local minima (r1 < r3) with the maximum r2 between: a local search could stop at r1
    roots = np.sort(rng.uniform(0.1, 3.0, 3))
    coeffs = _quartic_from_critical_points(roots, rng.uniform(0.5, 2), rng.standard_normal())
    poly = np.polynomial.Polynomial(coeffs)
    for t_max in (rng.uniform(0.05, 4.0), 5.0, np.inf):
        t, value = quartic.minimize(coeffs, t_max)
        grid = np.linspace(0, min(t_max, 10.0), 200_001)
        assert 0.0 <= t <= t_max
        assert value == pytest.approx(float(poly(t)), rel=1e-12, abs=1e-12)
        assert value <= poly(grid).min() + 1e-12
        assert poly(grid).min() - value <= 1e-6  # the grid comes close: t is a true minimiser


@pytest.mark.backend_independent
def test_minimize_boundary_and_ascent():
    rng = np.random.default_rng(0)
    for _ in range(5):
        # f decreases until its only critical point a > 0 (complex pair b ± ic), then rises
        a, b, c = rng.uniform(1, 3), rng.standard_normal(), rng.uniform(0.1, 1)
        coeffs = _quartic_from_critical_points([a, b + 1j * c, b - 1j * c])
        assert quartic.minimize(coeffs, a / 2)[0] == a / 2  # minimum beyond t_max
        assert quartic.minimize(coeffs, np.inf)[0] == pytest.approx(a, rel=1e-9)
        # an ascent direction (f non-decreasing on t ≥ 0) leaves X where it is
        ascent = np.r_[rng.standard_normal(), rng.uniform(0.1, 1, 4)]
        for t_max in (1.0, np.inf):
            assert quartic.minimize(ascent, t_max) == (0.0, ascent[0])


@pytest.mark.parametrize("seed", [0, 1])
def test_coefficients_reproduce_the_objective_along_a_line(seed):
    K1h, K2h, X, D = _tied_problem(seed)
    K1, K2, x, d = to_backend(K1h), to_backend(K2h), to_backend(X), to_backend(D)
    coeffs = quartic.coefficients(
        x, d, tl.dot(K1, x), tl.dot(K1, d), tl.dot(K2, x), tl.dot(K2, d), 5.0
    )
    poly = np.polynomial.Polynomial(coeffs)
    for t in (0.0, 0.3, -0.7, 1.0, 2.5):
        assert poly(t) == pytest.approx(_f(X + t * D, K1, K2), rel=1e-10)


def test_objective_is_the_reconstruction_error():
    rng = np.random.default_rng(0)
    Z, P = rng.standard_normal((10, 5, 16)), rng.uniform(size=(16, 3))
    A = init.random_orthonormal((5, 3), np.random.RandomState(0))
    K = to_backend(np.einsum("ncs,cd,ndt->st", Z, A @ A.T, Z))  # K_S(A) = Σ Z_iᵀ A Aᵀ Z_i
    direct = sum(((z - A @ A.T @ z @ P @ P.T) ** 2).sum() for z in Z)
    assert _f(P, K, K, float((Z**2).sum())) == pytest.approx(direct, rel=1e-10)


@pytest.mark.parametrize("seed", range(4))
def test_feasible_step_stays_feasible(seed):
    rng = np.random.default_rng(seed)
    X, D = rng.uniform(0.05, 2, (16, 3)), rng.standard_normal((16, 3))
    x, d = to_backend(X), to_backend(D)
    t = quartic.feasible_step(x, d, 1e6)
    Y = X + t * D
    # the boundary binds: one entry reaches zero, and none passes it by more than rounding
    # (x + (x/−d)·d can round to −1 ulp; the line search clips that)
    assert 0 < t < 1e6 and abs(Y.min()) <= 4 * EPS * X.max()
    t_margin = quartic.feasible_step(x, d, 1e6, margin=1e-3)
    assert t_margin == pytest.approx(t * (1 - 1e-3), rel=1e-12)
    assert (X + t_margin * D > 0).all()  # no positive entry lands on (or past) zero
    assert quartic.feasible_step(x, d, t / 2) == t / 2  # the cap binds first
    assert quartic.feasible_step(x, to_backend(np.abs(D)), 3.0) == 3.0  # nothing shrinks


def _subspace_problem(seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((30, 4, 16))
    return Z, np.einsum("ncs,nct->st", Z, Z), float((Z**2).sum()), rng.uniform(0.1, 1, (16, 3))


def test_subspace_objective_is_scale_free_least_squares():
    Z, Kh, c, X = _subspace_problem()
    K = to_backend(Kh)
    value = updates.subspace_objective(to_backend(X), tl.dot(K, to_backend(X)), c)
    direct = sum(((z - z @ X @ np.linalg.pinv(X)) ** 2).sum() for z in Z)
    assert value == pytest.approx(direct, rel=1e-9)  # Tucker-2 with least-squares cores
    for scales in ([3.0, 1.0, 1.0], [1e-3, 1.0, 1e3]):
        xs = to_backend(X * np.array(scales))
        assert updates.subspace_objective(xs, tl.dot(K, xs), c) == pytest.approx(value, rel=1e-9)


@pytest.mark.parametrize("rule", updates.RULES)
def test_subspace_steps_unit_columns_and_monotone(rule):
    _, Kh, c, X = _subspace_problem(1)
    op, x = MatrixOperator(to_backend(Kh)), to_backend(X)
    values = [updates.subspace_objective(x, op.products(x)[0], c)]
    for _ in range(4):
        step = updates.subspace_steps(op, x, rule, c, max_steps=1, tol=-np.inf)
        x, Xh = step.X, host(step.X)
        assert np.allclose(np.linalg.norm(Xh, axis=0), 1.0, atol=1e-12)
        assert (Xh >= 0).all()
        assert step.objective == pytest.approx(
            updates.subspace_objective(x, op.products(x)[0], c), rel=1e-12
        )
        values.append(step.objective)
    assert all(b <= a + 1e-12 * abs(a) for a, b in zip(values[:-1], values[1:], strict=True))
    assert values[-1] < values[0]


@pytest.mark.backend_independent
def test_nndsvd_is_positive_and_keeps_the_larger_signed_part():
    U = init.random_orthonormal((9, 4), np.random.RandomState(0))
    norm = np.linalg.norm
    U *= np.where(norm(np.maximum(U, 0), axis=0) > norm(np.maximum(-U, 0), axis=0), 1, -1)
    U[:, 1] *= -1  # every column's larger part is positive, but column 1's is negative
    X = init.nonneg_from_eigenvectors(U, "nndsvd")
    assert (X > 0).all()
    fills = []
    for j, sign in enumerate([1, -1, 1, 1]):
        part = np.maximum(sign * U[:, j], 0)
        kept = part > 0
        assert np.allclose(X[kept, j], part[kept] / np.linalg.norm(part))
        fills.extend(X[~kept, j])
    assert np.ptp(fills) == 0 and 0 < fills[0]  # zeros of the kept part: one small fill
    assert np.allclose(init.nonneg_from_eigenvectors(U, "svd"), np.abs(U))  # |U| is unit-norm


@pytest.mark.backend_independent
def test_random_orthonormal_has_orthonormal_columns():
    for seed, shape in [(0, (7, 3)), (1, (5, 5)), (2, (40, 6))]:
        A = init.random_orthonormal(shape, np.random.RandomState(seed))
        assert A.shape == shape and np.allclose(A.T @ A, np.eye(shape[1]), atol=1e-12)


def test_operator_path_spans_the_top_eigenspace():
    rng = np.random.RandomState(0)
    n, rank = 16, 3  # n > rank + oversampling, so the subspace iteration is not trivially exact
    V = init.random_orthonormal((n, n), rng)
    lam = np.r_[10.0, 8.0, 6.0, 0.5 ** np.arange(1, n - 2)]
    K = to_backend((V * lam) @ V.T)
    ctx = B.context_of(K)
    U = host(init.top_eigenvectors(K, n, rank, rng, ctx))
    W = host(init.top_eigenvectors(MatrixOperator(K), n, rank, rng, ctx))
    assert np.allclose(host(K) @ U, U * lam[:rank], atol=1e-9)  # K U = U Λ, decreasing
    assert np.abs(U @ U.T - W @ W.T).max() <= 1e-8  # same eigenspace
    P = host(init.parts_from_gram("nndsvd", K, (n, rank), rng, ctx))
    P_op = host(init.parts_from_gram("nndsvd", MatrixOperator(K), (n, rank), rng, ctx))
    assert np.allclose(P, P_op, atol=1e-8) and (P > 0).all()


@pytest.mark.parametrize(
    "dtype, expected",
    [("int8", "float64"), ("int64", "float64"), ("uint8", "float64"), ("bool", "float64"),
     ("float16", "float32"), ("float32", "float32"), ("float64", "float64")],
)
def test_solver_dtype_name(dtype, expected):
    x = tl.tensor(np.zeros(2, dtype=dtype))  # the active backend's own dtype names
    assert data.solver_dtype_name(x) == expected
    with pytest.raises(TypeError, match="complex"):
        data.solver_dtype_name(tl.tensor(np.zeros(2, dtype="complex64")))

"""Bad and edge inputs to the core get a correct result or a clear error, on every backend:
dtypes read by kind and size, collapsed parts, zero starts, underflowing data, callbacks,
adam under torch.no_grad(), and NaN/inf where data and strengths enter the applications."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tensorly as tl

import tensorpanda as tp
from helpers import host, planted, to_backend
from tensorpanda import loop
from tensorpanda.data import as_source
from tensorpanda.params import SOLVERS, STOCHASTIC, make_config
from tensorpanda.problem import first_pass, start

AUTOGRAD = tl.get_backend() in ("pytorch", "jax")


@pytest.fixture(scope="module")
def Z():
    return planted(n=40, channels=8, height=4, width=4, n_parts=2)[0]


@pytest.fixture(scope="module")
def fit(Z):
    return tp.tucker2(to_backend(Z), (None, 2), random_state=0)


def _torch():
    return pytest.importorskip("torch")


# -- dtypes: read by kind and size, never from the dtype's string ------------------------------
@pytest.mark.parametrize("as_batches", [False, True], ids=["array", "batches"])
def test_big_endian_data_is_fitted_like_native_data(Z, dtype, as_batches):
    native = Z.astype(dtype)
    swapped = native.astype(native.dtype.newbyteorder(">"))
    assert swapped.dtype.str == (">f8" if dtype == "float64" else ">f4")

    def data(x):  # numpy input on every backend: the library converts it
        return [x[:20], x[20:]] if as_batches else x

    a = tp.tucker2(data(native), (None, 2), random_state=0)
    b = tp.tucker2(data(swapped), (None, 2), random_state=0)
    assert host(b.P).dtype == np.dtype(dtype)
    np.testing.assert_array_equal(host(b.P), host(a.P))
    np.testing.assert_array_equal(host(b.A), host(a.A))
    assert b.history == a.history


def test_big_endian_integers_and_long_double_are_fitted_in_float64(Z):
    counts = np.round(np.abs(Z) * 100).astype(">i4")
    fit = tp.tucker2(counts, (None, 2))
    assert host(fit.P).dtype == np.float64
    fit = tp.tucker2(Z.astype(np.longdouble), (None, 2))
    assert host(fit.P).dtype == np.float64


def test_bfloat16_torch_tensor_is_fitted_in_float32(Z):
    torch = _torch()
    data = torch.from_numpy(Z).to(torch.bfloat16)
    fit = tp.tucker2(data, (None, 2), random_state=0)
    assert host(fit.P).dtype == np.float32
    assert 0 < fit.relative_error < 0.5


def test_meta_device_tensor_is_refused(Z):
    torch = _torch()
    meta = torch.empty(Z.shape, device="meta")
    with pytest.raises(ValueError, match="has no data: it is on the meta device"):
        tp.tucker2(meta, (None, 2))
    with pytest.raises(ValueError, match="batch 0 has no data: it is on the meta device"):
        tp.tucker2([meta], (None, 2))
    P = torch.empty((16, 2), device="meta")
    with pytest.raises(ValueError, match="initial P has no data: it is on the meta device"):
        tp.tucker2(to_backend(Z), (None, 2), init=(None, P))


# -- collapsed parts: one check in the loop, for every solver ----------------------------------
def _problem(Z, solver: str, **params):
    """A started problem as a solver of this name would hold it (no solver run)."""
    if solver in STOCHASTIC:
        params.setdefault("appearances", "free")
    config = make_config((None, 2), {"solver": solver, **params}, "tucker2")
    source = as_source(to_backend(Z))
    return start(source, config, first_pass(source, config))


@pytest.mark.parametrize("solver", SOLVERS)
def test_parts_collapsed_to_zero_raise_for_every_solver(Z, solver):
    problem = _problem(Z, solver, learning_rate=0.5)
    problem.P = problem.P * 0
    with pytest.raises(tp.DivergenceError, match=rf"solver='{solver}' clamped every entry of P"):
        loop.record(problem, 1.0)
    message = "learning_rate=0.5 is too large.*try learning_rate=0.05" if solver in STOCHASTIC \
        else "another init"
    with pytest.raises(tp.DivergenceError, match=message):
        loop.record(problem, 1.0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_dead_part_warns_for_every_solver(Z, solver):
    problem = _problem(Z, solver, learning_rate=0.5)
    problem.P = problem.P * to_backend(np.array([1.0, 0.0], dtype=host(problem.P).dtype))
    loop.record(problem, 1.0)  # one dead part of two: not a collapse
    with pytest.warns(tp.ConvergenceWarning, match=r"1 dead part\(s\) of 2: column\(s\) 1 of P"):
        fit = loop.finish(problem, is_converged=True, stopped=False)
    assert fit.info["converged"]


def test_a_healthy_fit_does_not_warn(Z):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tp.tucker2(to_backend(Z), (None, 2))


@pytest.mark.skipif(not AUTOGRAD, reason="adam needs an autograd backend")
def test_adam_with_a_step_too_large_raises_instead_of_returning_zero_parts(Z):
    with pytest.raises(tp.DivergenceError, match=r"solver='adam' clamped every entry of P.*"
                       r"learning_rate=10 is too large.*Gram solver"):
        tp.tucker2(to_backend(Z), (None, 2), solver="adam", learning_rate=10.0)


# -- a zero start is refused -------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["hals", "mu", "pgd"])
@pytest.mark.parametrize("model", ["panda", "tucker"])
def test_all_zero_initial_parts_are_refused(Z, dtype, solver, model):
    zeros = np.zeros((16, 2), dtype=dtype)
    with pytest.raises(ValueError, match="initial P is all zeros"):
        tp.tucker2(to_backend(Z), (None, 2), init=(None, to_backend(zeros)), solver=solver,
                   model=model)


def test_a_zero_column_of_the_initial_parts_is_refused(Z):
    P = np.full((16, 3), 0.1)
    P[:, 1] = 0
    with pytest.raises(ValueError, match=r"column\(s\) 1 of the initial P are all zeros"):
        tp.tucker2(to_backend(Z), (None, 3), init=(None, to_backend(P)))


def test_all_zero_initial_appearances_are_refused(Z):
    with pytest.raises(ValueError, match="initial A is all zeros"):
        tp.tucker2(to_backend(Z), (4, 2), appearances="free",
                   init=(to_backend(np.zeros((8, 4))), None))


# -- tiny data is not "all zeros" ------------------------------------------------------------
@pytest.mark.parametrize("scale,dtype_name", [(1e-200, "float64"), (1e-30, "float32"),
                                              (1e-20, "float32")])
def test_data_whose_squares_underflow_says_so(Z, scale, dtype_name):
    tiny = (Z * scale).astype(dtype_name)
    assert np.abs(tiny).max() > 0
    with pytest.raises(ValueError, match=rf"squares underflow {dtype_name}: its largest "
                       r"\|value\| is .*rescale it, e\.g\. divide it by its largest"):
        tp.tucker2(to_backend(tiny), (None, 2))


@pytest.mark.parametrize("solver", ["hals", "mu", "pgd"])
@pytest.mark.parametrize("rank", [(None, 2), (4, 2)])
def test_the_fit_does_not_depend_on_the_data_scale(Z, solver, rank):
    # a power of two scales every value exactly: small or large data, the same factors
    a = tp.tucker2(to_backend(Z), rank, solver=solver, random_state=0)
    for scale in (2.0**-400, 2.0**300):
        b = tp.tucker2(to_backend(Z * scale), rank, solver=solver, random_state=0)
        np.testing.assert_allclose(host(b.P), host(a.P), rtol=1e-8, atol=1e-10)
        assert b.info["n_iter"] == a.info["n_iter"]


def test_all_zero_data_keeps_its_message(Z, dtype):
    zeros = np.zeros(Z.shape, dtype=dtype)
    with pytest.raises(ValueError, match="the data is all zeros: there is nothing"):
        tp.tucker2(to_backend(zeros), (None, 2))
    once = iter([to_backend(zeros)])  # cannot be read again: both causes are named
    with pytest.raises(ValueError, match="all zeros, or so small that its squares underflow"):
        tp.tucker2(once, (None, 2))


# -- the callback's verdict ------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.array([True, False]), np.zeros(3), 1, "stop"],
                         ids=["bool array", "float array", "int", "str"])
def test_a_callback_must_return_a_bool_or_none(Z, value):
    with pytest.raises(TypeError, match="callback must return a bool .* or None"):
        tp.tucker2(to_backend(Z), (None, 2), callback=lambda state: value)


def test_numpy_and_backend_bools_stop_the_fit(Z):
    for value in (np.bool_(True), np.array(True), tl.tensor(np.array(True))):
        fit = tp.tucker2(to_backend(Z), (None, 2), tol=0, callback=lambda state, v=value: v)
        assert fit.info["stopped_by_callback"] and fit.info["n_iter"] == 1
    fit = tp.tucker2(to_backend(Z), (None, 2), callback=lambda state: None)
    assert not fit.info["stopped_by_callback"]


# -- adam where GAN code runs ----------------------------------------------------------------
@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_adam_fits_inside_torch_no_grad(Z, mode):
    if tl.get_backend() != "pytorch":
        pytest.skip("torch's grad modes apply to the pytorch backend")
    torch = _torch()
    with getattr(torch, mode)():
        data = to_backend(Z)
        fit = tp.tucker2(data, (None, 2), solver="adam", learning_rate=1e-2, max_iter=3,
                         tol=0, random_state=0)
    assert fit.history[-1] < fit.history[0]


# -- NaN/inf where data and strengths enter the applications ---------------------------------
@pytest.fixture(scope="module")
def Z_nan(Z):
    bad = Z.copy()
    bad[7, 2, 1, 1] = np.nan
    return bad


@pytest.mark.parametrize("application", ["saliency", "region_scores", "reconstruction_error"])
def test_applications_name_the_sample_holding_nan(fit, Z_nan, application):
    border = np.ones((4, 4), bool)
    border[1:-1, 1:-1] = False
    call = {
        "saliency": lambda data: tp.saliency(fit, data, appearance=0),
        "region_scores": lambda data: tp.region_scores(fit, data, border),
        "reconstruction_error": lambda data: tp.reconstruction_error(fit, data),
    }[application]
    with pytest.raises(ValueError, match=r"sample 7 .*contains NaN.*nan_to_num"):
        call(to_backend(Z_nan))
    batches = [to_backend(Z_nan[:5]), to_backend(Z_nan[5:])]
    with pytest.raises(ValueError, match=r"sample 7 \(batch 1\) contains NaN"):
        call(batches)


def test_finite_data_whose_sum_overflows_is_accepted(fit, Z):
    big = (Z * 1e37).astype("float32")  # finite, but its sum overflows float32
    maps = tp.saliency(fit, to_backend(big), appearance=0)
    assert np.isfinite(host(maps)).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_edit_strengths_must_be_finite(fit, Z, bad):
    with pytest.raises(ValueError, match="alpha must be finite"):
        tp.edit_direction(fit, appearance=0, parts=1, alpha=bad)
    with pytest.raises(ValueError, match="alpha must be finite"):
        tp.edit_direction(fit, appearance=[0, 1], parts=[0, 1], alpha=[1.0, bad])
    delta = tp.edit_direction(fit, appearance=0, parts=1, alpha=2.0)
    with pytest.raises(ValueError, match="alphas must be finite"):
        tp.sweep(delta, [0.0, bad])
    with np.errstate(invalid="ignore"):
        bad_delta = delta * bad
    with pytest.raises(ValueError, match="delta contains NaN or inf"):
        tp.apply(to_backend(Z[:2]), bad_delta)
    with pytest.raises(ValueError, match="delta contains NaN or inf"):
        tp.sweep(bad_delta, [1.0])


@pytest.mark.parametrize("name", ["tol", "learning_rate"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_tolerance_or_step_is_refused(Z, name, bad):
    message = rf"{name} must be a (non-negative|positive) number \(finite\)"
    with pytest.raises(ValueError, match=message):
        tp.tucker2(to_backend(Z), (None, 2), **{name: bad})

"""The same fit on every installed TensorLy backend gives the same factors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import tensorly as tl

import tensorpanda as tp
from helpers import congruence, host, planted

OTHERS = [
    b
    for b, module in (("numpy", "numpy"), ("pytorch", "torch"), ("jax", "jax"))
    if b != tl.get_backend() and importlib.util.find_spec(module)
]


def _fit_on(backend: str, Z: np.ndarray, **kwargs) -> tuple[np.ndarray, np.ndarray, float]:
    with tl.backend_context(backend):
        fit = tp.tucker2(tl.tensor(Z), **kwargs)
        return host(fit.A), host(fit.P), fit.objective


@pytest.mark.parametrize("other", OTHERS)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"rank": (None, 4)},
        {"rank": (6, 4), "solver": "hals"},
        {"rank": (6, 4), "model": "tucker", "solver": "pgd"},
        {"rank": (None, 4), "statistics": "streamed"},
    ],
    ids=["panda-mu", "panda-hals-RC<C", "tucker-pgd", "streamed"],
)
def test_backends_agree(other, kwargs):
    Z, _, _ = planted(n=100, noise=0.05)
    A, P, f = _fit_on(tl.get_backend(), Z, random_state=0, **kwargs)
    A_o, P_o, f_o = _fit_on(other, Z, random_state=0, **kwargs)
    assert f == pytest.approx(f_o, rel=1e-8)
    np.testing.assert_allclose(P, P_o, atol=1e-6)
    assert congruence(A, A_o) > 1 - 1e-8

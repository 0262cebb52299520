"""Shared fixtures. The TensorLy backend comes from $TENSORLY_BACKEND (numpy by default), as
in TensorLy's own suite: `make test` runs the whole suite once per backend."""

from __future__ import annotations

import os

import pytest
import tensorly as tl

BACKEND = os.environ.get("TENSORLY_BACKEND", "numpy")
tl.set_backend(BACKEND)

if BACKEND == "jax":
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 tests need real float64


def pytest_report_header(config):
    return f"tensorly backend: {BACKEND}"


def pytest_collection_modifyitems(config, items):
    if BACKEND == "numpy":
        return
    skip = pytest.mark.skip(reason="backend-independent: runs in the numpy pass")
    for item in items:
        if item.get_closest_marker("backend_independent"):
            item.add_marker(skip)


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test (other test runs share the machine's cores)."""
    import torch  # here, not at the top: most of the suite runs without torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

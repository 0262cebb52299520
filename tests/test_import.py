"""The core stays light: no torch and no adapters behind `import tensorpanda`."""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = """
import sys
import tensorpanda, tensorpanda.fitting, tensorpanda.io, tensorpanda.refine
import numpy as np
fit = tensorpanda.tucker2(np.random.default_rng(0).random((20, 3, 2, 2)), (None, 2))
loaded = [m for m in ("torch", "tensorpanda.adapters", "jax") if m in sys.modules]
print(",".join(loaded))
"""


def test_import_and_fit_on_numpy_pull_in_neither_torch_nor_the_adapters():
    env = {**os.environ, "TENSORLY_BACKEND": "numpy"}
    out = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_the_core_never_imports_the_adapters():
    import tensorpanda

    root = os.path.dirname(tensorpanda.__file__)
    for name in os.listdir(root):
        if name.endswith(".py"):
            with open(os.path.join(root, name), encoding="utf-8") as handle:
                source = handle.read()
            assert "adapters" not in "".join(
                line for line in source.splitlines() if line.lstrip().startswith(("import", "from"))
            ), name


BLOCK_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, NoTorch())
import numpy as np, tensorpanda as tp
tp.tucker2(np.random.default_rng(0).random((20, 3, 2, 2)), (None, 2))  # the core works
try:
    import tensorpanda.adapters
except ImportError as error:
    print(error)
"""


def test_without_torch_the_core_fits_and_the_adapters_name_the_extra():
    env = {**os.environ, "TENSORLY_BACKEND": "numpy"}
    out = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH], env=env, capture_output=True, text=True, check=True
    )
    assert "pip install 'tensorpanda[gan]'" in out.stdout

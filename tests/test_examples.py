"""The gallery's scripts (examples/) run as a user runs them, at small sizes, and write what
docs/examples.md shows; what they print is checked, so they cannot rot unnoticed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
pytestmark = pytest.mark.backend_independent


def run_example(name: str, tmp_path: Path, *args: str) -> str:
    """Run examples/<name>.py in a fresh folder, as `python examples/<name>.py ...`."""
    out = tmp_path / f"{name}.png"
    env = {**os.environ, "OMP_NUM_THREADS": "2", "TENSORLY_BACKEND": "numpy"}
    run = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args, "--out", str(out)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"examples/{name}.py failed:\n{run.stderr[-3000:]}"
    assert f"wrote {out}" in run.stdout
    image = read_png(out)
    assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 64
    assert image.std() > 10, "the figure is blank"
    return run.stdout


def read_png(path: Path) -> np.ndarray:
    Image = pytest.importorskip("PIL.Image", reason="the examples' figures need pillow")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def test_every_example_is_shown_in_the_docs_with_its_figure():
    page = (ROOT / "docs" / "examples.md").read_text()
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
    assert len(scripts) == 4
    for script in scripts:
        assert f'--8<-- "examples/{script}"' in page, f"docs/examples.md does not include {script}"
        figure = f"images/examples/{script[:-3].replace('_', '-')}.png"
        assert figure in page and (ROOT / "docs" / figure).exists(), figure


def test_factorise_your_own_tensor_finds_the_planted_parts(tmp_path):
    stdout = run_example("factorise_tensor", tmp_path, "--samples", "120")
    cosines = [float(c) for c in re.findall(r"->\d+ \(([\d.]+)\)", stdout)]
    assert len(cosines) == 4 and min(cosines) > 0.95, stdout
    found = {int(m) for m in re.findall(r"->(\d+) ", stdout)}
    assert found == {0, 1, 2, 3}, "two planted parts matched the same found part"
    assert (tmp_path / "factorise_tensor.safetensors").exists()


@pytest.mark.generator
def test_a_gan_from_checkpoint_to_a_local_edit(tmp_path):
    stdout = run_example("gan_edit", tmp_path, "--samples", "200")
    assert (tmp_path / "gan_edit.safetensors").exists()
    mean = float(re.search(r"ROIR at alpha 1.5 = ([\d.]+)", stdout).group(1))
    assert mean < 1.0, f"the edit is not local: {stdout}"


@pytest.mark.generator
def test_panda_is_more_local_than_sefa_and_ganspace(tmp_path):
    stdout = run_example("compare_baselines", tmp_path, "--samples", "200", "--directions",
                         "2", "--held-out", "6")
    roir = {name: float(v) for name, v in re.findall(r"^\s+(\w+)\s+([\d.]+) ±", stdout, re.M)}
    assert set(roir) == {"PandA", "SeFa", "GANSpace"}, stdout
    assert roir["PandA"] < min(roir["SeFa"], roir["GANSpace"]), stdout


@pytest.mark.generator
def test_choosing_a_layer_and_ranks(tmp_path):
    stdout = run_example("choose_layer_and_ranks", tmp_path, "--samples", "120", "--held-out",
                         "60", "--layers", "main.2", "main.5", "--parts", "4", "8")
    rows = re.findall(r"^(main\.\d+)\s+\(.*?\)\s+(\d+)\s+([-\d.]+)\s+[\d.]+$", stdout, re.M)
    assert len(rows) == 4, stdout
    score = {(layer, int(R)): float(s) for layer, R, s in rows}
    for layer in ("main.2", "main.5"):  # more parts explain more of the held-out energy
        assert 0 < score[(layer, 4)] < score[(layer, 8)] <= 1.0 + 1e-9, score

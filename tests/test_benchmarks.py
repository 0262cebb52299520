"""The benchmarks run in their --smoke mode, so that they cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.backend_independent, pytest.mark.slow]


def test_solver_benchmark_smoke(tmp_path):
    out = tmp_path / "bench.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_solvers.py"), "--smoke",
         "--markdown", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    for title in ("(a) Time to reach", "(b) A streamed R_C = C fit", "(c) Peak memory"):
        assert title in text
    # every solver row carries a number, and the memory ratio is printed
    assert text.count("| mu |") == 1 and "**ratio" in text


@pytest.mark.generator
def test_locality_evaluation_smoke(tmp_path):
    pytest.importorskip("gan_face_generate")
    out = tmp_path / "results.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "eval_locality.py"), "--smoke",
         "--markdown", str(out), "--figure", str(tmp_path / "grids")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    for method in ("| PandA |", "| SeFa |", "| GANSpace |", "| uniform change (reference) |"):
        assert method in text
    grids = sorted((tmp_path / "grids").glob("*.png"))
    assert len(grids) == 2
    for grid in grids:  # the page links each grid, relative to itself
        assert f"](grids/{grid.name})" in text

"""The layout keeps its shape: three layers, dependencies one way, no import circle.

The rules, read from the source with ``ast`` (every import counts, including those inside
functions, so a lazy import cannot hide a dependency or a circle):

- the core (``tensorpanda/``) imports neither ``tensorpanda.adapters``, ``tensorpanda.app``
  nor ``tensorpanda.benchmarks``; at import time it needs only the standard library and the
  dependencies declared in pyproject.toml (torch, tqdm and pillow only inside functions);
- the adapters (``adapters/``) import neither the application layer nor the benchmarks;
- no module of the project imports, directly or through others, itself;
- no core module is over 600 lines;
- and, run for real: importing every core module and using the factors (I/O, editing,
  saliency, metrics, baselines) loads neither torch, tqdm, pillow nor an upper layer.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent

ROOT = Path(__file__).resolve().parents[1]
# each folder of the repository and the package it is installed as (pyproject.toml)
FOLDERS = {
    "tensorpanda": "tensorpanda",
    "adapters": "tensorpanda.adapters",
    "app": "tensorpanda.app",
    "benchmarks": "tensorpanda.benchmarks",
}
CORE, ADAPTERS, APP, BENCHMARKS = FOLDERS.values()
HEAVY = ("torch", "tqdm", "PIL")  # what the extras bring; the core defers them to calls
MAX_CORE_LINES = 600


@dataclass(frozen=True)
class Import:
    """One import statement (or literal ``importlib.import_module``) of a project module."""

    source: str  # the importing module
    target: str  # the imported module, absolute
    path: Path
    line: int
    at_import: bool  # runs when ``source`` is imported (not inside a function)

    def __str__(self) -> str:
        where = "" if self.at_import else " (inside a function)"
        return f"{self.path.relative_to(ROOT)}:{self.line} imports {self.target}{where}"


@cache
def project_modules() -> dict[str, Path]:
    """Every module of the four folders by its installed name."""
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def layer(module: str) -> str:
    """The layer a module belongs to: its installed package among FOLDERS' values."""
    for package in (ADAPTERS, APP, BENCHMARKS):
        if module == package or module.startswith(package + "."):
            return package
    return CORE if module.split(".")[0] == CORE else ""


def absolute(name: str) -> str:
    """An absolute import as the installed name (``import adapters.x`` from the repository
    root is the same code as ``tensorpanda.adapters.x``)."""
    head, _, tail = name.partition(".")
    if head in FOLDERS and head != CORE:
        return FOLDERS[head] + (f".{tail}" if tail else "")
    return name


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names, relative levels resolved."""
    if not node.level:
        return absolute(node.module or "")
    package = module.split(".") if is_package else module.split(".")[:-1]
    if node.level - 1 >= len(package):
        raise ValueError(f"{module}: relative import beyond the top-level package")
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


class _Collector(ast.NodeVisitor):
    """Walks one module, noting each import and whether it runs at import time."""

    def __init__(self, module: str, path: Path, known: dict):
        self.module, self.path, self.known = module, path, known
        self.is_package = path.name == "__init__.py"
        self.depth = 0  # > 0 inside a function or lambda
        self.imports: list[Import] = []

    def add(self, target: str, node: ast.AST) -> None:
        self.imports.append(Import(self.module, target, self.path, node.lineno, self.depth == 0))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.add(absolute(alias.name), node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = resolve(self.module, self.is_package, node)
        for alias in node.names:
            # ``from . import io`` imports the submodule tensorpanda.io, not the package
            submodule = f"{base}.{alias.name}"
            self.add(submodule if submodule in self.known else base, node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("import_module", "__import__") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                self.add(absolute(first.value), node)
        self.generic_visit(node)

    def _deferred(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _deferred

    def visit_If(self, node: ast.If) -> None:
        # ``if TYPE_CHECKING:`` never runs: its imports are dependencies but not import-time
        test = node.test
        name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", "")
        if name == "TYPE_CHECKING":
            self._deferred(ast.Module(body=node.body, type_ignores=[]))
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)


@cache
def all_imports() -> tuple[Import, ...]:
    known = project_modules()
    found = []
    for module, path in known.items():
        collector = _Collector(module, path, known)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found += collector.imports
    return tuple(dict.fromkeys(found))  # ``from . import a, b`` may name one module twice


def listing(imports) -> str:
    return "\n  " + "\n  ".join(str(i) for i in imports)


def test_the_folders_are_the_packages_pyproject_installs():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dir = config["tool"]["setuptools"]["package-dir"]
    for folder, package in FOLDERS.items():
        assert package_dir.get(package) == folder, f"pyproject.toml installs {package} elsewhere"
    # any further package lives inside one of the four folders, so this test reads it too
    stray = [f for f in package_dir.values() if Path(f).parts[0] not in FOLDERS]
    assert not stray, f"packages outside the four folders: {stray}"
    assert {CORE, ADAPTERS, APP, BENCHMARKS} <= set(project_modules())


def test_the_parser_sees_every_kind_of_import(tmp_path):
    source = """
import os
from . import cli
from .cli import main
from .. import io
from ..result import Factorization
import adapters.hooks
def f():
    import torch
    importlib.import_module("tqdm")
class C:
    from PIL import Image
if TYPE_CHECKING:
    from ..adapters import hooks
later = lambda: __import__("jax")
"""
    path = tmp_path / "mod.py"
    known = {"tensorpanda.io": path, "tensorpanda.result": path, "tensorpanda.app.cli": path}
    collector = _Collector("tensorpanda.app.mod", path, known)
    collector.visit(ast.parse(source))
    assert [(i.target, i.at_import) for i in collector.imports] == [
        ("os", True),
        ("tensorpanda.app.cli", True),
        ("tensorpanda.app.cli", True),
        ("tensorpanda.io", True),
        ("tensorpanda.result", True),
        ("tensorpanda.adapters.hooks", True),
        ("torch", False),
        ("tqdm", False),
        ("PIL", True),  # a class body runs at import
        ("tensorpanda.adapters", False),  # under TYPE_CHECKING: a dependency, never run
        ("jax", False),
    ]


def test_the_core_imports_neither_the_adapters_nor_the_application_layer():
    upward = [
        i for i in all_imports()
        if layer(i.source) == CORE and layer(i.target) in (ADAPTERS, APP, BENCHMARKS)
    ]
    assert not upward, "the core reaches up a layer:" + listing(upward)


def test_the_adapters_import_neither_the_application_layer_nor_the_benchmarks():
    upward = [
        i for i in all_imports()
        if layer(i.source) == ADAPTERS and layer(i.target) in (APP, BENCHMARKS)
    ]
    assert not upward, "the adapters reach up a layer:" + listing(upward)


def test_the_core_loads_torch_tqdm_and_pillow_only_inside_functions():
    eager = [
        i for i in all_imports()
        if layer(i.source) == CORE and i.at_import and i.target.split(".")[0] in HEAVY
    ]
    assert not eager, "the core imports an extra at import time:" + listing(eager)


def declared_dependencies() -> set[str]:
    """The import names of the core's declared dependencies (pyproject.toml)."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = (re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0] for spec in
             config["project"]["dependencies"])
    return {name.lower().replace("-", "_") for name in names}


def test_the_core_needs_only_its_declared_dependencies_at_import():
    allowed = declared_dependencies() | set(sys.stdlib_module_names) | {CORE, "__future__"}
    extra = [
        i for i in all_imports()
        if layer(i.source) == CORE and i.at_import and i.target.split(".")[0] not in allowed
    ]
    assert not extra, (
        "the core imports a package pyproject.toml does not declare (defer it to a function, "
        "or declare it):" + listing(extra)
    )


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (or a self-loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in project_modules()}
    for i in all_imports():
        if i.target in graph:
            graph[i.source].add(i.target)
    return graph


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert strongly_connected(graph) == [["a", "b", "c"], ["e"]]


def test_there_is_no_import_circle_anywhere():
    circles = strongly_connected(import_graph())
    report = []
    for modules in circles:
        edges = [i for i in all_imports() if i.source in modules and i.target in modules]
        report.append(" <-> ".join(modules) + listing(edges))
    assert not circles, "import circles (lazy imports included):\n" + "\n".join(report)


def test_no_core_module_is_over_600_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for module, path in project_modules().items()
        if layer(module) == CORE and (n := len(path.read_text(encoding="utf-8").splitlines()))
        > MAX_CORE_LINES
    }
    assert not long, f"core modules over {MAX_CORE_LINES} lines: {long}"


LIGHT = f"""
import pkgutil, sys, warnings
import numpy as np
import tensorpanda as tp
for module in pkgutil.iter_modules(tp.__path__):
    __import__("tensorpanda." + module.name)
Z = np.random.default_rng(0).random((30, 4, 3, 3))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fit = tp.tucker2(Z, (None, 2), random_state=0)
    tp.Tucker2(rank=(None, 2)).fit(Z)
tp.load(tp.save(fit, sys.argv[1]))
tp.part_mask(fit, 0, size=(6, 6)); tp.saliency(fit, Z[:2], 0, size=(6, 6))
tp.region_scores(fit, Z, np.eye(3, dtype=bool)); tp.sefa(np.eye(4), 2)
tp.ganspace(Z[:, 0].reshape(30, -1), Z.reshape(30, -1), 2); tp.reconstruction_error(fit, Z)
heavy = {HEAVY + (ADAPTERS, APP, BENCHMARKS)!r}
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in heavy
                      or m.startswith(heavy[-3:]))))
"""


def test_every_core_module_and_application_runs_without_the_extras(tmp_path):
    """Complements test_import: every core module (found, not listed) and the applications
    on factors (I/O, editing, saliency, metrics, baselines) load no torch, tqdm, pillow,
    adapters, application layer or benchmarks on the numpy backend."""
    env = {**os.environ, "TENSORLY_BACKEND": "numpy"}
    out = subprocess.run(
        [sys.executable, "-c", LIGHT, str(tmp_path / "factors.npz")],
        env=env, capture_output=True, text=True, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"loaded: {out.stdout.strip()}"

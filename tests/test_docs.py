"""The documentation's code runs, and its pages link where they say."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
pytestmark = pytest.mark.backend_independent


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S)


@pytest.mark.generator
def test_the_adapter_guide_runs_and_is_short():
    blocks = python_blocks("adapters.md")
    complete = blocks[0]
    assert len(complete.strip().splitlines()) < 40
    namespace: dict = {}
    exec(compile(complete, "docs/adapters.md", "exec"), namespace)  # noqa: S102
    exec(compile(blocks[1], "docs/adapters.md", "exec"), namespace)  # noqa: S102
    assert namespace["gan"].layers == {"4": (32, 8, 8)}


def test_pages_link_to_existing_files():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
            if not target.startswith("http"):
                assert (page.parent / target).exists(), f"{page.name} links to {target}"


def test_every_page_in_the_site_navigation_exists():
    config = (DOCS.parent / "mkdocs.yml").read_text()
    pages = re.findall(r"^\s+- [^:]+: (\S+\.md)$", config, flags=re.M)
    assert len(pages) >= 8
    for page in pages:
        assert (DOCS / page).exists(), f"mkdocs.yml lists {page}, which is missing"


def public_objects():
    """Every function, class and method whose name and module have no leading underscore,
    in the core and in the adapters, by qualified name."""
    import tensorpanda
    import tensorpanda.adapters

    seen = set()
    for package in (tensorpanda, tensorpanda.adapters):
        modules = [package.__name__] + [
            f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)
            if not m.name.startswith("_")
        ]
        for module_name in modules:
            module = importlib.import_module(module_name)
            for name, obj in vars(module).items():
                if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                    continue
                if obj.__module__ != module_name or id(obj) in seen:
                    continue
                seen.add(id(obj))
                yield f"{module_name}.{name}", obj
                if inspect.isclass(obj):
                    for method_name, method in vars(obj).items():
                        function = getattr(method, "__func__", method)
                        if not method_name.startswith("_") and inspect.isfunction(function):
                            yield f"{module_name}.{name}.{method_name}", function


def test_every_public_object_has_a_numpydoc_docstring_with_an_example():
    objects = dict(public_objects())
    assert len(objects) > 100
    no_example = [q for q, obj in objects.items() if ">>>" not in (inspect.getdoc(obj) or "")]
    no_parameters = [
        q for q, obj in objects.items()
        if inspect.isfunction(obj)
        and set(inspect.signature(obj).parameters) - {"self", "cls"}
        and "Parameters\n----------" not in (inspect.getdoc(obj) or "")
    ]
    assert not no_example, f"no Examples section: {no_example}"
    assert not no_parameters, f"no Parameters section: {no_parameters}"

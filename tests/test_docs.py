"""The documentation's code runs, its pages link where they say, and the public API carries
numpydoc docstrings with examples that run as doctests."""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
import typing
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PACKAGES = ("tensorpanda", "tensorpanda.adapters")  # whose __all__ is the public API
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


def returned_class(function):
    """The project class a function's return annotation names (e.g. ``pca`` -> ``PCA``)."""
    try:
        returned = typing.get_type_hints(function).get("return")
    except (NameError, TypeError):  # an annotation only a type checker can resolve
        return None
    if inspect.isclass(returned) and returned.__module__.startswith(PACKAGES[0]):
        return returned
    return None


def public_api():
    """What ``tensorpanda.__all__`` and ``tensorpanda.adapters.__all__`` export, the classes
    their functions return, and the public methods of those classes, by the qualified name
    in their defining module."""
    seen = {}
    exported = [
        getattr(package, name)
        for package in map(importlib.import_module, PACKAGES)
        for name in package.__all__
    ]
    exported += [returned_class(obj) for obj in exported if inspect.isfunction(obj)]
    for obj in exported:
        if obj is not None:
            seen[f"{obj.__module__}.{obj.__qualname__}"] = obj
            if inspect.isclass(obj):
                for method_name, method in vars(obj).items():
                    function = getattr(method, "__func__", method)
                    if not method_name.startswith("_") and inspect.isfunction(function):
                        seen[f"{obj.__module__}.{function.__qualname__}"] = function
    return seen


def collected_examples(module_name: str) -> dict[str, int]:
    """Doctest's view of a module, as ``--doctest-modules`` collects it: examples per name."""
    module = importlib.import_module(module_name)
    return {test.name: len(test.examples) for test in doctest.DocTestFinder().find(module)}


def has_parameters(obj) -> bool:
    """Whether a callable takes arguments besides self/cls (then it documents them)."""
    try:
        names = set(inspect.signature(obj).parameters) - {"self", "cls"}
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return bool(names)


def test_the_public_api_has_numpydoc_docstrings_with_runnable_examples():
    api = public_api()
    assert {"tensorpanda.result.Factorization.transform", "tensorpanda.io.save"} <= set(api)
    examples = {}
    for module_name in {obj.__module__ for obj in api.values()}:
        examples.update(collected_examples(module_name))
    no_docstring, no_example, no_parameters, not_collected = [], [], [], []
    for name, obj in sorted(api.items()):
        doc = inspect.getdoc(obj) or ""
        if not doc:
            no_docstring.append(name)
            continue
        if "Examples\n--------" not in doc or ">>>" not in doc.split("Examples\n--------")[1]:
            no_example.append(name)
        # a class documents its constructor's arguments (a dataclass's fields as Attributes)
        sections = ("Parameters\n----------",) + (
            ("Attributes\n----------",) if inspect.isclass(obj) else ()
        )
        if has_parameters(obj) and not any(section in doc for section in sections):
            no_parameters.append(name)
        # an inherited docstring is the parent's to run; one of its own must run here
        if obj.__doc__ and ">>>" in obj.__doc__ and not examples.get(name):
            not_collected.append(name)
    assert not no_docstring, f"public names without a docstring: {no_docstring}"
    assert not no_example, f"public names without an Examples section: {no_example}"
    assert not no_parameters, f"public callables without a Parameters section: {no_parameters}"
    assert not not_collected, f"examples --doctest-modules would not run: {not_collected}"


def api_page_targets() -> list[str]:
    """The dotted names the API page hands to mkdocstrings (``::: name``)."""
    return re.findall(r"^::: (\S+)$", (DOCS / "api.md").read_text(), flags=re.M)


def resolve(dotted: str):
    """The object a ``::: dotted.name`` of the API page documents, imported as installed."""
    # the page names the adapters by their folder (mkdocstrings reads the source tree)
    dotted = re.sub(r"^(adapters|app|benchmarks)\b", r"tensorpanda.\1", dotted)
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(dotted)


def test_the_api_page_names_what_exists_and_the_whole_public_api():
    import tensorpanda
    import tensorpanda.adapters

    targets = api_page_targets()
    for target in targets:
        try:
            resolve(target)
        except (ImportError, AttributeError) as error:
            pytest.fail(f"docs/api.md documents {target}, which does not exist: {error}")
    documented = {resolve(target) for target in targets if target != "adapters"}
    undocumented = [n for n in tensorpanda.__all__ if getattr(tensorpanda, n) not in documented]
    assert not undocumented, f"docs/api.md lacks {undocumented}"
    members = re.search(r"members: \[(.*?)\]", (DOCS / "api.md").read_text()).group(1)
    listed = {name.strip() for name in members.split(",")}
    assert set(tensorpanda.adapters.__all__) <= listed, (
        f"docs/api.md's adapters section lacks {set(tensorpanda.adapters.__all__) - listed}"
    )

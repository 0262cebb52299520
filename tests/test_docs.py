"""The documentation's code runs, and its pages link where they say."""

from __future__ import annotations

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

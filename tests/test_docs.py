"""The documentation's code runs, its pages link where they say, and the public API carries
numpydoc docstrings with examples that run as doctests."""

from __future__ import annotations

import doctest
import importlib
import inspect
import json
import re
import shutil
import subprocess
import sys
import typing
from html.parser import HTMLParser
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


# --- the built site: maths typeset, no raw Sphinx syntax, nothing fetched at view time ---

ROOT = DOCS.parent
RAW_SPHINX = re.compile(
    r":(?:py:)?(?:func|meth|class|mod|attr|data|exc|obj|const|math):(?:`|<code>)|\.\. math::"
)
# TeX that reached the page as text: delimiters or commands outside the spans KaTeX renders
UNTYPESET_TEX = re.compile(r"\$\$|\\\(|\\\[|\\(?:frac|sum|min|lVert|top|alpha|hat|mathbb)\b"
                           r"|\$[^\s$]([^$\n]*[^\s$])?\$")


class PageText(HTMLParser):
    """A page's visible prose: the text outside code, scripts and arithmatex spans, and the
    TeX inside those spans, and the stylesheets and scripts it loads."""

    SKIP = {"code", "pre", "script", "style", "textarea"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.prose, self.maths, self.assets = [], [], []
        self._stack: list[tuple[str, bool]] = []  # (tag, is arithmatex or skipped)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.assets.append(attrs["src"])
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.assets.append(attrs["href"])
        if tag in {"br", "img", "link", "meta", "hr", "input"}:
            return
        maths = "arithmatex" in (attrs.get("class") or "").split()
        self._stack.append((tag, maths))
        if maths:
            self.maths.append("")

    def handle_endtag(self, tag):
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        inside = [maths for tag, maths in self._stack if maths or tag in self.SKIP]
        if any(maths for _, maths in self._stack):
            self.maths[-1] += data
        elif not inside:
            self.prose.append(data)


def parse(page: Path) -> PageText:
    parser = PageText()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built once from the working tree with warnings as errors."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install .[docs])")
    out = tmp_path_factory.mktemp("site")
    # not --quiet: it silences the plugins' warnings (griffe, autorefs) before --strict
    # counts them, and the build would pass with unresolved references
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    warnings = [line for line in build.stderr.splitlines() if not line.startswith("INFO")]
    assert build.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(warnings[-40:])
    return out


def pages(site: Path) -> list[Path]:
    return [p for p in site.rglob("*.html") if p.parent.name not in {"search", "javascripts"}]


def test_the_site_has_no_raw_sphinx_roles_or_directives(site):
    found = {
        str(page.relative_to(site)): sorted(set(RAW_SPHINX.findall(page.read_text())))
        for page in pages(site)
    }
    found = {page: roles for page, roles in found.items() if roles}
    assert not found, (
        f"raw Sphinx syntax in the pages (write [`name`][tensorpanda.name], $tex$): {found}"
    )


def test_no_tex_is_left_as_text_on_any_page(site):
    leftovers = {}
    for page in pages(site):
        prose = " ".join(parse(page).prose)
        hits = [m.group(0) for m in UNTYPESET_TEX.finditer(prose)]
        if hits:
            leftovers[str(page.relative_to(site))] = hits[:5]
    assert not leftovers, f"TeX outside the maths spans (not typeset): {leftovers}"


# Unicode maths (Aᵀ, ‖Z‖) on the Markdown pages: a formula written as text, not typeset.
# Docstrings may keep it in their prose (help() shows it), so the API page is not checked.
UNICODE_MATHS = re.compile(r"\S*(?:ᵀ|‖)\S*")
PLAIN_BLOCK = re.compile(r'<div class="highlight"><pre>(.*?)</pre>', flags=re.S)


def test_the_guide_pages_write_their_formulas_in_tex(site):
    untypeset = {}
    for page in pages(site):
        if page.parent.name == "api":
            continue
        text = page.read_text(encoding="utf-8")
        hits = UNICODE_MATHS.findall(" ".join(parse(page).prose))
        # a code block in no language, with no comment, holding maths: a formula in monospace
        for block in PLAIN_BLOCK.findall(text):
            block = re.sub(r"<[^>]+>", "", block)
            if "#" not in block and UNICODE_MATHS.search(block):
                hits.append(block.strip().splitlines()[0][:60])
        if hits:
            untypeset[str(page.relative_to(site))] = hits[:4]
    assert not untypeset, f"formulas as Unicode text: write $...$ or $$...$$ TeX: {untypeset}"


def test_the_maths_pages_and_docstrings_carry_formulas(site):
    index, api = parse(site / "index.html"), parse(site / "api" / "index.html")
    assert any("\\min" in tex and "\\lVert" in tex for tex in index.maths)
    # the docstrings' formulas (tucker2, Tucker2) reach the API page as maths too
    assert sum("\\min" in tex for tex in api.maths) >= 2
    for tex in index.maths + api.maths:
        assert tex.strip().startswith(("\\(", "\\[")), f"a maths span without delimiters: {tex}"


def test_every_page_loads_katex_from_the_site_itself(site):
    for page in pages(site):
        assets = parse(page).assets
        assert not [a for a in assets if a.startswith(("http:", "https:", "//"))], page
        assert any(a.endswith("katex.min.js") for a in assets), f"{page} lacks KaTeX"
        for asset in assets:  # every script and stylesheet is in the site
            path = asset.split("?")[0]
            local = site / path.lstrip("/") if path.startswith("/") else page.parent / path
            assert local.resolve().exists(), f"{page} loads {asset}, which is not in the site"
    fonts = list((site / "javascripts" / "katex" / "fonts").glob("*.woff2"))
    css = (site / "javascripts" / "katex" / "katex.min.css").read_text()
    assert fonts and all(f"fonts/{f.name}" in css for f in fonts)
    for name in re.findall(r"url\((fonts/[^)]+)\)", css):  # no font the CSS asks for is missing
        assert (site / "javascripts" / "katex" / name).exists(), name


def test_katex_parses_every_formula_of_the_site(site, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the browser test below covers typesetting")
    formulas = [tex.strip() for page in pages(site) for tex in parse(page).maths]
    assert formulas
    (tmp_path / "formulas.json").write_text(json.dumps(formulas))
    script = (
        "const katex = require(process.argv[1]);"
        "const bad = [];"
        "for (const tex of require(process.argv[2])) {"
        "  const display = tex.startsWith('\\\\[');"
        "  try { katex.renderToString(tex.slice(2, -2), {displayMode: display,"
        "                                                 throwOnError: true}); }"
        "  catch (e) { bad.push(tex + ' -> ' + e.message); } }"
        "console.log(JSON.stringify(bad));"
    )
    katex = DOCS / "javascripts" / "katex" / "katex.min.js"
    run = subprocess.run([node, "-e", script, str(katex), str(tmp_path / "formulas.json")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [], "KaTeX cannot typeset these formulas"


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
        "google-chrome")


def rendered_dom(browser: str, page: Path) -> str:
    """The page's DOM after its scripts ran, in headless Chromium, offline."""
    run = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_a_browser_typesets_every_formula(site):
    browser = chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (apt-get install chromium): no browser check")
    for name in ("index.html", "api/index.html"):
        expected = len(parse(site / name).maths)
        dom = rendered_dom(browser, site / name)
        assert "katex-error" not in dom, f"KaTeX refused a formula on {name}"
        # KaTeX replaces a span's TeX by <span class="katex"> (or "katex-display")
        typeset = len(re.findall(r'class="arithmatex"><span class="katex', dom))
        assert typeset == expected >= 1, f"{name}: {typeset} of {expected} formulas typeset"


def test_wide_tables_scroll_instead_of_being_cut(site):
    css = (site / "css" / "extra.css").read_text()
    rule = re.search(r"table\.docutils \{(.*?)\}", css, flags=re.S).group(1)
    assert "overflow-x: auto" in rule and "display: block" in rule
    assert "white-space: normal" in css
    assert all("css/extra.css" in " ".join(parse(p).assets) for p in pages(site))

# Each target makes its own virtual environment and installs what it needs.
# torch is pinned to the local CPU build through constraints.txt (see that file).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
BACKENDS ?= numpy pytorch jax

DEMO_OUT ?= demo-output

SITE     ?= site

.PHONY: help venv dev demo test lint docs bench clean

help:
	@echo "make demo   install into $(VENV), then fit PandA on the DCGAN-faces generator and"
	@echo "            write figures and a summary to $(DEMO_OUT)/ (refreshed on re-runs)"
	@echo "make test   install into $(VENV) and run ruff and the test suite once per TensorLy backend"
	@echo "make docs   build the documentation site into $(SITE)/ (warnings are errors)"
	@echo "make bench  the solver benchmark at full size (about half an hour; ARGS=--smoke: seconds)"

# The package with the DCGAN-faces weights: what the demo needs.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PIP) -e ".[gan]"
	# the DCGAN-faces weights; its declared dependencies (wandb, torchvision, ...) are not
	# needed to read them and would replace the CPU torch build
	$(PIP) --no-deps gan-face-generate
	touch $@

# Everything the tests, the jax backend, the BigGAN adapter and the docs need.
$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e ".[gan,test,jax,biggan,docs]"
	touch $@

venv: $(VENV)/.installed

dev: $(VENV)/.installed-dev

demo: venv
	$(VENV)/bin/tensorpanda demo --out $(DEMO_OUT) --overwrite

lint: dev
	$(VENV)/bin/ruff check .

# The suite runs once per TensorLy backend; the docstring examples (numpy reprs) and the
# documentation site are checked once. As root (CI), the headless Chromium of the browser
# test (tests/test_editor.py) is installed from the Debian packages when missing, and that
# test fails rather than skips without it.
test: dev lint
	@set -e; if [ "$$(id -u)" = 0 ]; then \
	  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	    apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  fi; \
	  export TENSORPANDA_REQUIRE_BROWSER=1; \
	fi; \
	for b in $(BACKENDS); do \
	  echo "=== tests on the $$b backend"; \
	  if [ "$$b" = numpy ]; then doctests="--doctest-modules tensorpanda adapters app"; \
	  else doctests=""; fi; \
	  TENSORLY_BACKEND=$$b $(PY) -m pytest -q -p no:cacheprovider tests $$doctests; \
	done
	$(MAKE) --no-print-directory docs

docs: dev
	$(VENV)/bin/mkdocs build --strict --site-dir $(SITE)

bench: dev
	$(PY) benchmarks/bench_solvers.py $(ARGS)

clean:
	rm -rf $(VENV) $(SITE) build dist *.egg-info .pytest_cache .ruff_cache

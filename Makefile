# Each target makes its own virtual environment and installs what it needs.
# torch is pinned to the local CPU build through constraints.txt (see that file).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
BACKENDS ?= numpy pytorch jax

DEMO_OUT ?= demo-output

.PHONY: help venv demo test lint bench clean

help:
	@echo "make demo   install into $(VENV), then fit PandA on the DCGAN-faces generator and"
	@echo "            write figures and a summary to $(DEMO_OUT)/ (refreshed on re-runs)"
	@echo "make test   install into $(VENV) and run ruff and the test suite once per TensorLy backend"
	@echo "make bench  the solver benchmark at full size (about half an hour; ARGS=--smoke: seconds)"

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PIP) -e ".[test,jax,biggan]"
	# the DCGAN-faces weights; its declared dependencies (wandb, torchvision, ...) are not
	# needed to read them and would replace the CPU torch build
	$(PIP) --no-deps gan-face-generate
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/tensorpanda demo --out $(DEMO_OUT) --overwrite

lint: venv
	$(VENV)/bin/ruff check .

test: venv lint
	@set -e; for b in $(BACKENDS); do \
	  echo "=== tests on the $$b backend"; \
	  TENSORLY_BACKEND=$$b $(PY) -m pytest -q -p no:cacheprovider; \
	done

bench: venv
	$(PY) benchmarks/bench_solvers.py $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache

# Two entry points, each creating or reusing the virtual environment:
#   make demo   cluster scikit-learn's digits, print NMI next to KMeans
#   make test   lint (ruff) and run the test suite (what CI runs)
#
# torch is installed first and pinned to the CPU build available here
# (TORCH_SPEC); a torch already in the environment satisfies the `deep` extra's
# `torch>=2.1` range, so no CUDA build is ever downloaded. Elsewhere use e.g.
#   make test TORCH_SPEC=torch TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.skjule-installed

.PHONY: demo test test-fast lint browser clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[deep,test,dask,plot,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/plot_quickstart_digits.py

test: $(STAMP) browser lint
	$(PY) -m pytest -q

# ruff, pinned in the `test` extra (configuration in pyproject.toml); the same
# checks run before each commit with `pre-commit install`.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# tests/test_report.py opens the HTML report in headless Chromium. As root on
# Debian/Ubuntu it is installed here if missing; elsewhere the test skips and
# says why. Never fails the build.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	  >/dev/null; } || true

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

clean-venv:
	rm -rf $(VENV)

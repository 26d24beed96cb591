# Set-up and the two commands of the README. `make demo` runs the demo, `make test` the test suite; both create
# .venv and install the project into it when needed. TORCH pins the PyTorch build installed first (a CPU wheel by
# default, so that set-up never pulls a multi-GB CUDA build); override e.g. `make test TORCH="torch==2.8.0"`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
EXTRAS ?= all
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(EXTRAS)

.PHONY: install demo demo-clm demo-convert demo-audio test lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

demo: install
	$(PY) -m perceiver.demos.digits

demo-clm: install
	$(PY) -m perceiver.demos.pydoc_clm

demo-convert: install
	$(PY) -m perceiver.demos.convert_mlm

demo-audio: install
	$(PY) -m perceiver.demos.symbolic_audio

test: install
	$(PY) -m pytest -q

lint: install
	$(PY) -m ruff check perceiver tests benchmarks
	$(PY) -m ruff format --check perceiver tests benchmarks

format: install
	$(PY) -m ruff check --fix perceiver tests benchmarks
	$(PY) -m ruff format perceiver tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info

# Set-up and the two commands of the README. `make demo` runs the demo, `make test` the test suite; both create
# .venv and install the project into it when needed, with the pinned, tested versions of
# requirements/constraints.txt. TORCH pins the PyTorch build installed first (a CPU wheel by default, so that set-up
# never pulls a multi-GB CUDA build); override e.g. `make test TORCH="torch==2.8.0"`.
#
# Dependency drift: `make test-latest` tests against the newest releases in a separate venv, `make test-lower`
# against the lower bounds of pyproject.toml (requirements/lower.txt), `make lock` refreshes the pinned set.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_LOWER ?= torch==2.6.0
PYTHON_LOWER ?= python3.11
EXTRAS ?= all
CONSTRAINTS ?= requirements/constraints.txt
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(EXTRAS)

.PHONY: install demo demo-clm demo-convert demo-audio test lint format clean lock test-latest test-lower

install: $(STAMP)

# $(call new-venv,DIR,PYTHON,TORCH,PIP_ARGS): a fresh venv in DIR with TORCH, then the project with PIP_ARGS
define new-venv
	rm -rf $(1)
	$(2) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --upgrade pip
	$(1)/bin/python -m pip install --quiet "$(3)"
	$(1)/bin/python -m pip install --quiet $(4) -e ".[$(EXTRAS)]"
endef

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
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

# the newest releases that pyproject.toml allows (torch stays $(TORCH)), pinned into $(CONSTRAINTS)
lock:
	$(call new-venv,.venv-lock,$(PYTHON),$(TORCH),)
	{ echo "# Pinned, tested versions for make (refresh: make lock, then make test; torch is chosen by TORCH)"; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v -E '^(torch|triton|nvidia-.*)=='; } > $(CONSTRAINTS)
	rm -rf .venv-lock

test-latest:
	$(call new-venv,.venv-latest,$(PYTHON),$(TORCH),)
	.venv-latest/bin/python -m pytest -q

# a CUDA build of torch from PyPI (several GB) unless TORCH_LOWER names a CPU wheel that pip can find
test-lower:
	$(call new-venv,.venv-lower,$(PYTHON_LOWER),$(TORCH_LOWER),-c requirements/lower.txt)
	.venv-lower/bin/python -m pytest -q

clean:
	rm -rf $(VENV) .venv-lock .venv-latest .venv-lower .pytest_cache .ruff_cache build *.egg-info

# Two entry points for a fresh machine: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The package ships the schemas of the custom resources it emits (renderer/_data/schemas), so no
# RENDER_SCHEMA_LOCATION is needed; the tests read ../shared/schemas only to check those copies.

.PHONY: demo test tools bench golden clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	# The real OPA engine, the tests' reference for the policies (declares Python >= 3.14, works on 3.11).
	$(BIN)/pip install -q --ignore-requires-python opa-golib-python-bindings==0.4.4
	# Byte-compiled as an installed package is (an editable install is not; with PYTHONDONTWRITEBYTECODE
	# set, every run would compile the renderer's sources again: 0.2-0.3 s of each command).
	$(BIN)/python -m compileall -q renderer
	touch $@

demo: $(BIN)/.installed
	$(BIN)/render --offline

tools:
	bash scripts/install-tools.sh

test: $(BIN)/.installed tools
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2

golden: $(BIN)/.installed
	UPDATE_GOLDEN=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/pipeline/test_bundles.py -k golden

$(BIN)/.bench-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/pip install -q -e '.[bench]'
	touch $@

bench: $(BIN)/.bench-installed
	$(BIN)/python -m compileall -q renderer  # the code as it is now, as an installed package runs it
	$(BIN)/python bench/bench_render.py --bundles 10000
	$(BIN)/python bench/bench_policies.py
	$(BIN)/python bench/bench_engines.py

clean:
	rm -rf rendered bench/out

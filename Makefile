# Two entry points for a fresh machine: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Custom-resource schemas (kubeconform layout) are data the project reads, never copies in.
SHARED_SCHEMAS := $(abspath ../shared/schemas/crds)
ifneq ($(wildcard $(SHARED_SCHEMAS)),)
export RENDER_SCHEMA_LOCATION ?= $(SHARED_SCHEMAS)
endif

.PHONY: demo test tools bench golden clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	# The real OPA engine, the tests' reference for the policies (declares Python >= 3.14, works on 3.11).
	$(BIN)/pip install -q --ignore-requires-python opa-golib-python-bindings==0.4.4
	touch $@

demo: $(BIN)/.installed
	$(BIN)/render --offline

tools:
	bash scripts/install-tools.sh

test: $(BIN)/.installed tools
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2

golden: $(BIN)/.installed
	UPDATE_GOLDEN=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_golden.py

$(BIN)/.bench-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/pip install -q -e '.[bench]'
	touch $@

bench: $(BIN)/.bench-installed
	$(BIN)/python bench/bench_render.py --bundles 10000
	$(BIN)/python bench/bench_policies.py

clean:
	rm -rf rendered bench/out

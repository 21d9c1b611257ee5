# Sensor Pulse: `make run` starts the app locally, `make test` checks everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 7071
DATA_DIR ?= .devhost

.PHONY: setup run test lint typecheck unit bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) -m devhost --port $(PORT) --data-dir $(DATA_DIR)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: setup
	$(PY) -m mypy

test: lint typecheck
	$(PY) -m pytest

unit: setup
	$(PY) -m pytest tests/unit

bench: setup
	for name in summariser dashboard coldstart freshness; do $(PY) -m bench $$name || exit 1; done

clean:
	rm -rf $(VENV) $(DATA_DIR) .mypy_cache .ruff_cache .pytest_cache .hypothesis

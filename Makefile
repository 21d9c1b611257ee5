# Sensor Pulse: `make run` starts the app locally, `make test` checks everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
PORT ?= 7071
DATA_DIR ?= .devhost
MICROSHARE ?=
REQUIRE_KEYS ?=

.PHONY: setup run import test lint typecheck secrets unit bench clean chromium

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $(STAMP)

# Azurite and the Cosmos DB stand-in for the integration tests, pinned by package-lock.json.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

setup: $(STAMP)

# Debian's Chromium for the dashboard's browser tests: Playwright drives it and never downloads a browser.
# Nothing to do when `chromium` is on PATH; otherwise apt-get installs it, as root or through sudo.
chromium:
	@command -v chromium >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" = 0 ]; then as_root=; elif command -v sudo >/dev/null 2>&1; then as_root=sudo; else \
		echo "make chromium: chromium is not installed and installing it needs root or sudo;" \
			"install Debian's chromium package (apt-get install chromium) and run make again" >&2; exit 1; fi; \
	set -x; $$as_root apt-get update && $$as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends chromium

run: setup
	$(PY) -m devhost --port $(PORT) --data-dir $(DATA_DIR) $(if $(MICROSHARE),--microshare $(MICROSHARE)) $(if $(REQUIRE_KEYS),--require-keys) $(if $(filter 0,$(DEMO_ALERTS)),,--demo-alerts)

# Uploads one file of readings to the devhost `make run` started (POST /api/imports) and follows its import.
import: setup
	@test -n "$(FILE)" || { echo "usage: make import FILE=path/to/readings.csv (or .jsonl, .json, each optionally .gz)" >&2; exit 2; }
	$(PY) -m devhost.import_file "$(FILE)" --port $(PORT) --data-dir $(DATA_DIR)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: setup
	$(PY) -m mypy

# detect-secrets over every file git knows; a finding not reviewed in .secrets.baseline fails (tools/secrets_scan.py).
secrets: setup  # pragma: allowlist secret (a target name, not a secret)
	$(PY) -m tools.secrets_scan

# The emulators are started by the tests themselves on free loopback ports and stopped afterwards;
# SENSORPULSE_REQUIRE_EMULATORS turns a missing emulator (or chromium for the browser tests) into a failure, not a skip.
test: lint typecheck secrets $(NODE_STAMP) chromium
	SENSORPULSE_REQUIRE_EMULATORS=1 $(PY) -m pytest

unit: setup
	$(PY) -m pytest tests/unit

bench: setup $(NODE_STAMP)
	for name in summariser dashboard fleet coldstart freshness state_roundtrip forwarder backfill ingest import; do $(PY) -m bench $$name || exit 1; done

clean:
	rm -rf $(VENV) node_modules $(DATA_DIR) .mypy_cache .ruff_cache .pytest_cache .hypothesis

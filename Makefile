# The commands the README names. CI runs `make test` (through .ci/run) and nothing else.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
TOOLS := .venv-tools
PY := $(VENV)/bin/python
export AWS_DEFAULT_REGION ?= eu-west-1
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help run test install lint types template schemas unit integration e2e bench bench-backend bench-cold-import bench-imports bench-shipments soak-imports clean

help:
	@echo "make run    start the service locally (HTTP API on http://127.0.0.1:3000)"
	@echo "make test   lint, types, template checks, unit, integration and end-to-end tests"
	@echo "make bench  benchmarks (not part of make test)"

# ------------------------------------------------------------------ installs
$(VENV)/.installed: pyproject.toml layers/domain/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check pip==25.3
	$(VENV)/bin/pip install --quiet -r layers/domain/requirements.txt
	$(VENV)/bin/pip install --quiet --group dev
	touch $@

$(TOOLS)/.installed: pyproject.toml
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check pip==25.3
	$(TOOLS)/bin/pip install --quiet --group tools
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

# ------------------------------------------------------------------ the two commands
run: install
	$(PY) -m local

test: install $(TOOLS)/.installed lint types template
	$(PY) -m pytest

# ------------------------------------------------------------------ parts of make test
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(VENV)/.installed
	$(VENV)/bin/mypy layers/domain/inventory local
	@# every function is a module named `app`, as in Lambda: check them one at a time
	for handler in functions/*/app.py; do $(VENV)/bin/mypy "$$handler"; done

template: $(TOOLS)/.installed
	$(TOOLS)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --template template.yaml
	$(TOOLS)/bin/sam build --template template.yaml --build-dir .aws-sam/build --cached --cache-dir .aws-sam/cache

# the JSON Schema of every bus event, in and out, from the models of inventory.messages
schemas: $(VENV)/.installed
	PYTHONPATH=layers/domain $(PY) -m inventory.messages.schemas schemas/events

unit: install
	$(PY) -m pytest tests/unit

integration: install
	$(PY) -m pytest tests/integration

e2e: install
	$(PY) -m pytest tests/e2e

# ------------------------------------------------------------------ benchmarks (not in make test)
bench: bench-backend bench-cold-import bench-imports bench-shipments

bench-backend: install
	$(PY) -m bench.backend

bench-cold-import: install
	$(PY) -m bench.cold_import

# the end-to-end import tests with files of 1,000,000 rows (about 30 minutes)
soak-imports: install
	E2E_IMPORT_ROWS=1000000 $(PY) -m pytest tests/e2e/test_stock_imports_e2e.py --no-cov --timeout=3600

# 100,000 and 1,000,000-row imports against raw BatchWriteItem on the same backend (about 10 minutes)
bench-imports: install
	$(PY) -m bench.imports

# 5,000 shipment events through the fulfilment handler, 100,000 products at the location, taking turns
# with raw conditional writes of the same changes on backends of their own, three times (about 12 minutes)
bench-shipments: install
	$(PY) -m bench.shipments

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage

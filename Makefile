# The commands the README names. CI runs `make test` (through .ci/run) and nothing else.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
TOOLS := .venv-tools
SCAN := .venv-scan
PY := $(VENV)/bin/python
export AWS_DEFAULT_REGION ?= eu-west-1
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help run dlq test install lint types template scan schemas unit integration e2e bench bench-backend bench-cold-import bench-imports bench-shipments bench-exports soak soak-imports soak-hostile clean

help:
	@echo "make run    start the service locally (HTTP API on http://127.0.0.1:3000)"
	@echo "make test   lint, types, template checks, unit, integration and end-to-end tests"
	@echo "make bench  benchmarks (not part of make test)"
	@echo "make dlq ARGS=\"list --local\"   the dead-letter queues (README: Dead letters)"

# ------------------------------------------------------------------ installs
# uv installs the pinned groups of pyproject.toml: on a fresh machine the three environments take
# about 1 minute with uv against about 4 with pip. It writes the dependencies' bytecode at install
# time, as pip does (PYTHONDONTWRITEBYTECODE stops every later write), and never downloads a Python.
UV := $(VENV)/bin/uv
UV_INSTALL = $(UV) pip install --quiet --compile-bytecode
export UV_PYTHON_DOWNLOADS := never

$(VENV)/.installed: pyproject.toml layers/domain/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9
	$(UV_INSTALL) --python $(PY) -r layers/domain/requirements.txt --group dev
	touch $@

$(TOOLS)/.installed: $(VENV)/.installed pyproject.toml
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(TOOLS)
	$(UV_INSTALL) --python $(TOOLS)/bin/python --group tools
	touch $@

$(SCAN)/.installed: $(VENV)/.installed pyproject.toml
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(SCAN)
	$(UV_INSTALL) --python $(SCAN)/bin/python --group scan
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

# ------------------------------------------------------------------ the two commands
run: install
	$(PY) -m local

# Three test processes on these 2-core machines: a test and its local backends (processes of their
# own) take turns, so two processes left a quarter of the CPU idle (measured on 2026-12-01: 776 s
# with two, 635 s with three). Whole modules go to one process (--dist loadfile), each process
# with backends of its own, so a module's fixtures and the order of its tests are as in one process;
# modules are handed out in the order collected (tests/conftest.py puts the long ones first).
TEST_WORKERS ?= 3

# The installs, then the checks, run side by side (each waits mostly on the network, or on one core).
CHECKS := lint types template scan

test:
	$(MAKE) --no-print-directory --jobs=4 --output-sync=target install $(TOOLS)/.installed $(SCAN)/.installed
	$(MAKE) --no-print-directory --jobs=4 --output-sync=target $(CHECKS)
	$(PY) -m pytest --numprocesses $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# what the dead-letter queues hold, and their redrive: make dlq ARGS="list --local" (README, Dead letters)
dlq: $(VENV)/.installed
	@PYTHONPATH=layers/domain $(PY) -m inventory.ops dlq $(ARGS)

# ------------------------------------------------------------------ parts of make test
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(VENV)/.installed
	$(VENV)/bin/mypy layers/domain/inventory local tests/unit/fakes.py
	@# every function is a module named `app`, as in Lambda: check them one at a time
	for handler in functions/*/app.py; do $(VENV)/bin/mypy "$$handler"; done

template: $(TOOLS)/.installed
	$(TOOLS)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --template template.yaml
	$(TOOLS)/bin/sam build --template template.yaml --build-dir .aws-sam/build --cached --cache-dir .aws-sam/cache

# checkov over the template, offline (.checkov.yaml): every failed check is fixed, or waived next to
# its resource in template.yaml with its reason. No update check against the package index either.
scan: $(SCAN)/.installed
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(SCAN)/bin/checkov --config-file .checkov.yaml --file template.yaml --quiet

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
# Each is a module run from the repository root, with the domain layer on the path where Lambda puts
# it (as pytest's pythonpath does for the tests). Arguments: make bench-<name> ARGS="--runs 9".
BENCH := PYTHONPATH=$(CURDIR)/layers/domain $(PY) -m

bench: bench-backend bench-cold-import bench-imports bench-shipments bench-exports

bench-backend: install
	$(BENCH) bench.backend $(ARGS)

# each function's import and first invocation on the local backends, in fresh processes, against
# minimal Powertools handlers of its trigger type (about 3 minutes)
bench-cold-import: install
	$(BENCH) bench.cold_import $(ARGS)

# the failure-path suites for longer: every kind of fault at every crash point five times, 600
# examples of the allocation state machine and 300 of the switch's on DynamoDB, and one product's
# history of 20,000 shipment lines, and a pre-order of 10,000 open allocations of one product (about
# an hour); each prints how much it ran (the history and the pre-order: the largest item written,
# what a read or a line touched)
soak: install
	CRASH_POINT_ROUNDS=5 STATE_MACHINE_EXAMPLES=600 SWITCH_MACHINE_EXAMPLES=300 HISTORY_LINES=20000 \
		ALLOCATION_LINES=10000 IMPORT_LAYERS=500 \
		$(PY) -m pytest -s --no-cov --timeout=3600 -p no:cacheprovider tests/integration/test_crash_points.py \
		tests/integration/test_allocation_machine.py "tests/integration/test_repository_contract.py::test_the_switch_state_machine_holds" \
		tests/integration/test_history.py tests/integration/test_allocation_lines.py \
		tests/integration/test_import_layers.py 2>&1 \
		| grep -v '^{' 

# the end-to-end import tests with files of 1,000,000 rows (about 30 minutes)
soak-imports: install
	E2E_IMPORT_ROWS=1000000 $(PY) -m pytest tests/e2e/test_stock_imports_e2e.py --no-cov --timeout=3600

# requests generated from the OpenAPI document, HOSTILE_EXAMPLES an operation (make test: 100), against
# the real handlers on the local backends; prints how many were sent, by status
soak-hostile: install
	HOSTILE_EXAMPLES=$${HOSTILE_EXAMPLES:-2000} $(PY) -m pytest tests/integration/test_hostile_openapi.py --no-cov --timeout=7200

# 100,000 and 1,000,000-row imports against raw BatchWriteItem on the same backend (about 10 minutes)
bench-imports: install
	$(BENCH) bench.imports $(ARGS)

# Two workloads through the shipment events handler, the outbox relay at its deployed cadence, taking
# turns with a floor (a conditional update of a 1 KB item per line, a put per event) on backends of
# their own: uniform (5,000 events, 100,000 products) and skewed (10,000 events, a third of the lines
# on ten hot products, the hottest with 5,000 open allocations). Per line, write requests and units of
# the hot path, the background and the relay, the largest item, the time ratio; PASS/FAIL per target,
# exit 1 on a FAIL (about 20 minutes). A quick one:
# ARGS="--workload uniform --products 5000 --events 500", or "--workload skewed --skew-scale 0.05"
bench-shipments: install
	$(BENCH) bench.shipments $(ARGS)

# A full export of one location of 100,000 and of 1,000,000 products (an initial import, 1% of the
# products with a hot item), the unit run in-process, against a floor of raw consistent Queries of
# the same partitions written and uploaded as the export does; then a delta after 1,000 changes at
# the larger one. Rows per second, read requests and units, memory growth; PASS/FAIL per target,
# exit 1 on a FAIL (about 5 minutes). A quick one: ARGS="--products 2000,20000 --changes 100"
bench-exports: install
	$(BENCH) bench.exports $(ARGS)

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage

# braze-bridge: `make run` and `make test` do everything on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast fuzz lint fmt migrate sandbox bench clean chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/braze-bridge serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations
	$(BIN)/mypy src
	$(BIN)/lint-imports

# The console's end-to-end tests drive Debian's Chromium (no browser download: no internet).
# Installing needs root (or sudo); nothing is run when a chromium is already on PATH.
SUDO := $(shell test "$$(id -u)" -eq 0 || echo sudo)
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
		echo "installing Debian's chromium for the console e2e tests"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# What CI runs (.ci/run): lint, then every test, Chromium included. The suite includes
# tests/fuzz (schemathesis over /openapi.json, about 90 s); `make fuzz` runs that part alone and
# prints the number of generated cases and failures.
test: lint chromium
	$(BIN)/python -m pytest -q

fuzz: $(STAMP)
	$(BIN)/python -m pytest -q tests/fuzz

# For development: no lint, no subprocess/browser tests (`slow`), no fuzzing, no Chromium needed.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not fuzz"

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench migrations
	$(BIN)/ruff check --fix src tests bench migrations

migrate: $(STAMP)
	$(BIN)/braze-bridge migrate

sandbox: $(STAMP)
	$(BIN)/braze-bridge sandbox --port 9000

# Benchmarks print figures against a baseline run in the same command (bench/RESULTS.md).
BENCH_DB ?= postgresql://postgres@127.0.0.1:5432/test
bench: $(STAMP)
	$(BIN)/python bench/antavo.py
	$(BIN)/python bench/hook_cpu.py
	BRAZE_BRIDGE_TEST_DATABASE_URL=$(BENCH_DB) $(BIN)/python bench/ingest_sql.py --batch-size 32 --batches 600
	BRAZE_BRIDGE_TEST_DATABASE_URL=$(BENCH_DB) $(BIN)/python bench/ingest.py --requests 10000 --rounds 3
	BRAZE_BRIDGE_TEST_DATABASE_URL=$(BENCH_DB) $(BIN)/python bench/delivery.py --objects 100000 --workers 1,2 --emails 500
	BRAZE_BRIDGE_TEST_DATABASE_URL=$(BENCH_DB) $(BIN)/python bench/event_log.py 1000000

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

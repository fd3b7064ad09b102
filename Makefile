# braze-bridge: `make run` and `make test` do everything on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: `make run` installs only what the service needs; the test tools (pytest,
# ruff, mypy, Playwright, schemathesis...) come with the targets that use them.
STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install install-dev run test test-fast chaos fuzz lint fmt migrate sandbox bench clean chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP)

install: $(STAMP)
install-dev: $(DEV_STAMP)

run: $(STAMP)
	$(BIN)/braze-bridge serve

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations
	$(BIN)/mypy src
	$(BIN)/lint-imports

# The console's end-to-end tests drive Debian's Chromium (no browser download: no internet).
# Nothing is run when a chromium is already on PATH. Otherwise it is installed with apt as
# root, or with sudo when sudo works without a password; with neither, this says so and the
# browser tests skip (under CI they fail instead).
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
		if [ "$$(id -u)" -eq 0 ]; then SUDO=; \
		elif sudo -n true 2>/dev/null; then SUDO=sudo; \
		else echo "chromium is not installed and this user cannot install Debian packages:"; \
			echo "  the console browser tests will be skipped (install: apt-get install chromium)"; \
			exit 0; fi; \
		echo "installing Debian's chromium (apt-get install chromium) for the console browser tests"; \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# What CI runs (.ci/run): lint, then every test, Chromium included. The suite includes
# tests/fuzz (schemathesis over /openapi.json, about 90 s); `make fuzz` runs that part alone and
# prints the number of generated cases and failures.
test: lint chromium
	$(BIN)/python -m pytest -q

fuzz: $(DEV_STAMP)
	$(BIN)/python -m pytest -q tests/fuzz

# Chaos (part of `make test` too, about 30 s): bench/faults.py with backends terminated
# mid-ingest, a 503/429 storm and worker SIGKILLs; acknowledged = stored = delivered.
chaos: $(DEV_STAMP)
	$(BIN)/python -m pytest -q tests/e2e/test_chaos.py

# For development: no lint, no subprocess/browser tests (`slow`), no fuzzing, no Chromium needed.
test-fast: $(DEV_STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not fuzz"

fmt: $(DEV_STAMP)
	$(BIN)/ruff format src tests bench migrations
	$(BIN)/ruff check --fix src tests bench migrations

migrate: $(STAMP)
	$(BIN)/braze-bridge migrate

sandbox: $(STAMP)
	$(BIN)/braze-bridge sandbox --port 9000

# Benchmarks print figures against a baseline run in the same command (bench/RESULTS.md).
BENCH_DB ?= postgresql://postgres@127.0.0.1:5432/test
bench: $(DEV_STAMP)
	$(BIN)/python bench/antavo.py
	$(BIN)/python bench/hook_cpu.py
	BRAZE_BRIDGE_TEST_DATABASE_URL=$(BENCH_DB) $(BIN)/python bench/ingest_sql.py --batch-size 32 --batches 600
	BRAZE_BRIDGE_TEST_DATABASE_URL=$(BENCH_DB) $(BIN)/python bench/ingest.py --requests 10000 --rounds 3
	BRAZE_BRIDGE_TEST_DATABASE_URL=$(BENCH_DB) $(BIN)/python bench/delivery.py --objects 100000 --workers 1,2 --emails 500
	BRAZE_BRIDGE_TEST_DATABASE_URL=$(BENCH_DB) $(BIN)/python bench/event_log.py 1000000

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

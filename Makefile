# The single entry point. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Locked dependencies (uv pip compile, hashes, Python 3.11-3.13): the service's own in LOCK
# (what the Docker image installs), plus the dev tools and the demo stack in DEV_LOCK.
LOCK := requirements/lock.txt
DEV_LOCK := requirements/dev.txt
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet
# Debian packages the test suite runs for real: the old ClickHouse server (18.16,
# the second analytics engine) and Prometheus (evaluates the dashboards' PromQL).
SYSTEM_PACKAGES := clickhouse-server prometheus

.DEFAULT_GOAL := help
.PHONY: help install lock sysdeps lint format test test-fast chaos demo bench clean docs

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml $(LOCK) $(DEV_LOCK)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	@$(BIN)/pip check >/dev/null || { $(BIN)/pip check; \
	  echo "$(LOCK) / $(DEV_LOCK) do not match pyproject.toml: run make lock"; exit 1; }
	@touch $(STAMP)

install: $(STAMP) ## create .venv: the project, its dev tools and the demo stack, as locked

lock: ## regenerate requirements/*.txt from pyproject.toml (after changing a dependency)
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet uv; }
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) -o $(LOCK)
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra demo $(LOCK_FLAGS) -c $(LOCK) \
	  -o $(DEV_LOCK)

sysdeps: ## apt-get the Debian servers the tests use (clickhouse-server, prometheus) if missing
	@missing=""; \
	command -v clickhouse-server >/dev/null || [ -x /usr/sbin/clickhouse-server ] || missing="$$missing clickhouse-server"; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "not root: skipping$$missing (their tests will be skipped)"; fi; \
	fi

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: $(STAMP) sysdeps lint ## lint, then the whole test suite against real services (not slow)
	$(BIN)/pytest -q -m 'not slow'

test-fast: $(STAMP) ## only the pure tests (no services)
	$(BIN)/pytest -q -m 'not integration'

chaos: $(STAMP) sysdeps ## the slow fault-injection campaigns (tests marked slow), minutes each
	@$(BIN)/pytest -q -m slow; status=$$?; \
	if [ $$status -eq 5 ]; then echo "no slow campaign is defined yet"; status=0; fi; exit $$status

demo: $(STAMP) ## start the embedded stack, worker, API and a checkout simulator (Ctrl-C stops all)
	$(BIN)/loyalty demo

bench: $(STAMP) ## the worker against a hand-written loop, 2 workers, latency (BENCH_ARGS=--long: 1M swipes)
	$(BIN)/python bench/throughput.py $(BENCH_ARGS)

docs: $(STAMP) ## regenerate docs/settings.md from stream/settings.py
	$(BIN)/python -m stream.settings_doc docs/settings.md

clean: ## remove the venv and local state
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# The two commands of the README: `make up` and `make test`. Both set everything up first,
# idempotently: a second run only checks what is already there.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: up test setup system-deps lint typecheck unit bench schemas

up: setup
	$(BIN)/chorus up

test: setup lint typecheck
	$(BIN)/python -m schemas.jsonschema --check
	$(BIN)/pytest

setup: system-deps $(INSTALLED)
	@$(BIN)/python -m cli.main fetch

system-deps:
	@bash devstack/system-deps.sh

$(INSTALLED): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade 'pip==26.3'
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,parquet]'
	@touch $@

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -m unit

# Benchmarks print medians and percentiles beside floors measured in the same run.
bench: setup
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python -m bench.commands
	$(BIN)/python -m bench.live
	$(BIN)/python -m bench.replay
	$(BIN)/python -m bench.media

schemas: $(INSTALLED)
	$(BIN)/python -m schemas.jsonschema --write

# Trove — the two commands a newcomer runs are `make run` and `make test`; both set everything up first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
TROVE := $(BIN)/trove
PYTHON ?= python3

.PHONY: help setup system-deps venv deno db db-start db-stop db-reset db-status run test lint bench schema

help:
	@echo "make run       set up, start the local stack and archive the demo accounts"
	@echo "make test      set up and run every test (ruff, sqlfluff, pytest incl. pgTAP)"
	@echo "make bench     run the benchmarks in bench/"
	@echo "make db-reset  rebuild the local database from the migrations"
	@echo "make db-stop   stop the local database"
	@echo "make schema    regenerate supabase/schema.sql from the migrations"

system-deps:
	@scripts/install-system-deps.sh

# The venv is rebuilt when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | { grep -v 'is ignored: it is neither' || true; }; test $${PIPESTATUS[0]} -eq 0
	@touch $@

venv: $(VENV)/.installed

# Deno runs the Edge Functions of supabase/functions/ (their tests relay to the real service).
deno:
	@scripts/install-deno.sh

setup: system-deps venv deno

db: setup
	@$(TROVE) db start
	@$(TROVE) db migrate --local-stack --seed

db-start: db

db-stop: venv
	@$(TROVE) db stop

db-status: venv
	@$(TROVE) db status

db-reset: setup
	@$(TROVE) db reset

# Starts the HTTP service and the worker; for each platform without credentials also its simulator and the demo
# archive. Runs until Ctrl-C (RUN_ARGS=--once exits when the demo archive is done).
run: db
	@echo "Database: $$($(TROVE) db url)"
	@$(TROVE) run $(RUN_ARGS)

lint: setup
	@$(BIN)/ruff check worker tests bench
	@$(BIN)/ruff format --check worker tests bench
	@$(BIN)/sqlfluff lint supabase/local supabase/migrations supabase/tests supabase/seed.sql
	@DENO_DIR=.local/deno-cache .local/deno/node_modules/.bin/deno fmt --check --quiet supabase/functions
	@DENO_DIR=.local/deno-cache .local/deno/node_modules/.bin/deno lint --quiet supabase/functions
	@DENO_DIR=.local/deno-cache .local/deno/node_modules/.bin/deno check --quiet supabase/functions/*/index.ts

test: lint
	@$(BIN)/pytest

bench: setup
	@$(BIN)/python bench/run.py

# supabase/schema.sql: a fresh database migrated on a throwaway cluster (never the `make run` one), dumped.
schema: setup
	@$(TROVE) db schema

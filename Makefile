# Developer entry points. Everything runs from the virtualenv in $(VENV), created on demand.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
COMPOSE := docker compose --env-file .env -f docker/compose.yaml
# The packages mypy checks (tests, bench and migrations are excluded in pyproject.toml).
# Every top-level package with an apps.py (a Django app or the project), found, not listed.
MYPY_PACKAGES := $(sort $(patsubst %/,%,$(dir $(wildcard */apps.py))) commsplatform)

.DEFAULT_GOAL := help
.PHONY: help install run test fuzz lint fmt bench up down clean system-packages

help:
	@echo "make run    the whole platform locally (embedded Redis, Kafka, SMTP; SQLite)"
	@echo "make test   lint, then the pytest suite (starts its own PostgreSQL and Redis)"
	@echo "make fuzz   schemathesis over every operation with FUZZ_MAX_EXAMPLES (default 200) examples each"
	@echo "make lint | fmt | bench | up | down | clean"

install: $(INSTALLED)

# Re-installs when a requirements file changes.
$(INSTALLED): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

run: $(INSTALLED)
	$(BIN)/python -m commsplatform.devstack

test: lint system-packages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Debian packages some tests drive (nginx, chromium, prometheus, postfix's smtp-sink, wrk):
# installed when missing and possible, else one line says what to install.
system-packages:
	@bash scripts/system-packages.sh

# `make test` fuzzes with a few examples per operation; this runs many more (same seed unless FUZZ_SEED).
FUZZ_MAX_EXAMPLES ?= 200
fuzz: $(INSTALLED)
	FUZZ_MAX_EXAMPLES=$(FUZZ_MAX_EXAMPLES) $(BIN)/python -m pytest tests/hardening/test_fuzz.py -s $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(MYPY_PACKAGES)

fmt: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(INSTALLED)
	$(BIN)/python -m bench $(BENCH_ARGS)

up: .env
	$(COMPOSE) up -d --build

down: .env
	$(COMPOSE) down

.env:
	@echo "No .env: copy .env.example to .env and fill in the secrets (see docker/README.md)." >&2
	@exit 1

clean:
	rm -rf var staticfiles .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

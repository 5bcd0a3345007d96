# Two set-up commands for a fresh machine (see README.md):
#   make run   -- the embedded default on http://127.0.0.1:6543
#   make test  -- the whole suite on SQLite and PostgreSQL, with real services
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
TESTING := $(VENV)/.installed-testing

.PHONY: install run test lint bench clean

$(INSTALLED): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(TESTING): $(INSTALLED)
	$(BIN)/pip install -q -e '.[testing]'
	touch $@

install: $(INSTALLED)

run: $(INSTALLED)
	mkdir -p var/symbols/try
	$(BIN)/tecken-pyramid migrate development.ini
	$(BIN)/pserve development.ini

test: $(TESTING)
	.ci/test

# ruff: lint and format check (pyproject.toml); .ci/test runs it first.
lint: $(TESTING)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(TESTING)
	.ci/ensure-packages memcached wrk haproxy
	$(BIN)/python bench/download.py
	$(BIN)/python bench/inprocess.py
	$(BIN)/python bench/upload.py
	$(BIN)/python bench/missing_symbols.py
	$(BIN)/python bench/faults.py

clean:
	rm -rf $(VENV) var build *.egg-info

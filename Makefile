# rrp-eval: every target sets up .venv (if needed) from pyproject.toml first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rrp-eval-installed
# the browser checks' axe-core and playwright-core (npm; skipped where npm is missing)
BROWSER := tests/browser
BROWSER_STAMP := $(BROWSER)/node_modules/.rrp-eval-installed
ARGS ?=
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint format clean distclean

help: ## list the targets
	@echo "rrp-eval make targets (PYTHON=$(PYTHON), VENV=$(VENV)):"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  \1\t/' | expand -t 14

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "rrp-eval needs Python 3.11 or newer, found " + sys.version.split()[0] + "; run make with PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

$(BROWSER_STAMP): $(BROWSER)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix $(BROWSER) --silent --no-audit --no-fund && touch $@; \
	else echo "npm not found: the accessibility checks will be skipped (CI fails them)"; fi

install: $(STAMP) $(BROWSER_STAMP) ## create .venv if needed and install rrp-eval with its test and dev tools

run: $(STAMP) ## the main job on the demonstration programme (outputs/demo/); ARGS="..." adds options
	$(BIN)/rrp-eval run $(ARGS)

test: $(STAMP) $(BROWSER_STAMP) ## run the whole test suite; PYTEST_ARGS="..." adds pytest options
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## the inner loop: unit tests without the slow and notebook ones (under a minute)
	$(BIN)/python -m pytest -m "not slow and not notebook" -q $(PYTEST_ARGS)

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## remove generated outputs and caches (keeps .venv)
	find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -not -path './$(VENV)/*' -exec rm -rf {} +

distclean: clean ## also remove the virtual environment and the browser checks' packages
	rm -rf $(VENV) $(BROWSER)/node_modules

# Pulse: `make run` to try it, `make test` to check it. Needs only python3 (3.11+).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test lint worker cron bench clean

help:
	@echo "make run     install, migrate, create demo data, serve on 127.0.0.1 (PORT, default 5000)"
	@echo "make test    ruff + pytest (PYTEST_ARGS='-k name' passes arguments through)"
	@echo "make worker  RQ worker (needs REDIS_URL)"
	@echo "make cron    RQ cron scheduler for the periodic jobs (needs REDIS_URL)"
	@echo "make bench   run bench/*.py and print their figures"
	@echo "make clean   remove the virtualenv and caches (keeps instance/)"

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) || { \
	  echo "Could not create $(VENV). On Debian/Ubuntu: apt-get install python3-venv" >&2; \
	  rm -rf $(VENV); exit 1; }

# Reinstall only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $(STAMP) $@

install: $(STAMP)

# Links printed by `pulse demo` follow PORT unless BASE_URL says otherwise.
RUN_ENV = BASE_URL="$${BASE_URL:-http://127.0.0.1:$${PORT:-5000}}"

run: $(STAMP)
	@mkdir -p instance
	$(BIN)/pulse db upgrade
	$(RUN_ENV) $(BIN)/pulse demo
	$(RUN_ENV) $(BIN)/pulse serve

lint: $(DEV_STAMP)
	$(BIN)/ruff check .

# Both run even if ruff fails; the exit status is non-zero if either failed.
test: $(DEV_STAMP)
	@status=0; \
	echo "$(BIN)/ruff check ."; $(BIN)/ruff check . || status=1; \
	echo "$(BIN)/pytest $(PYTEST_ARGS)"; $(BIN)/pytest $(PYTEST_ARGS) || status=1; \
	exit $$status

worker: $(STAMP)
	$(BIN)/pulse worker

cron: $(STAMP)
	$(BIN)/pulse cron

bench: $(STAMP)
	@set -e; for script in bench/*.py; do \
	  echo "== $$script"; $(BIN)/python $$script; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build dist artifacts *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

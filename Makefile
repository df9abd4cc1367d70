# Microscope: `make demo` runs the site on the embedded default; `make test` runs every check.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONUNBUFFERED := 1
# Each pytest pass runs through tests/servers.py: it installs (as root on Debian) or names the
# packages the suite needs; with --servers it starts a private PostgreSQL cluster and Redis on
# free loopback ports for the pass and stops them afterwards. Never the machine's servers.
# `make pytest-postgres PYTEST_ARGS="tests/api -x"` runs a part of a pass.
TEST_RUN := MICROSCOPE_VAR_DIR=$(CURDIR)/var/test $(PY) -m tests.servers

.PHONY: install demo worker test lint pytest-postgres pytest-sqlite bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) manage.py migrate --verbosity 0
	$(PY) manage.py demo_setup
	@echo "Starting a Celery worker and the site at http://127.0.0.1:8000 (Ctrl-C stops both)"
	$(VENV)/bin/celery -A microscope_site worker -Q default,gpu --concurrency 1 --loglevel INFO \
	  --beat --schedule var/celerybeat-schedule --logfile var/worker.log & worker=$$!; \
	  trap "kill $$worker 2>/dev/null" EXIT INT TERM; \
	  $(PY) manage.py runserver 127.0.0.1:8000

worker: install
	$(VENV)/bin/celery -A microscope_site worker -Q default,gpu --concurrency 1 --loglevel INFO

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy microscope_site neurons rendering annotations
	$(VENV)/bin/lint-imports  # the layers contracts in pyproject.toml
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

pytest-postgres: install
	$(TEST_RUN) --servers -- $(PY) -m pytest -q $(PYTEST_ARGS)

# The engine's tests (tests/engine) touch no database, so they run once, on the PostgreSQL pass.
pytest-sqlite: install
	$(TEST_RUN) -- $(PY) -m pytest -q --ignore=tests/engine $(PYTEST_ARGS)

test: lint pytest-postgres pytest-sqlite

bench: install
	$(PY) bench/import.py
	$(PY) bench/render.py

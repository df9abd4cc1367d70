# Microscope: `make demo` runs the site on the embedded default; `make test` runs every check.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
export PYTHONUNBUFFERED := 1
TEST_ENV := MICROSCOPE_VAR_DIR=$(CURDIR)/var/test

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
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

pytest-postgres: install
	$(TEST_ENV) DATABASE_URL=$(PG_TEST_URL) CELERY_BROKER_URL=$(REDIS_TEST_URL) $(PY) -m pytest -q

# The engine's tests (tests/engine) touch no database, so they run once, on the PostgreSQL pass.
pytest-sqlite: install
	$(TEST_ENV) $(PY) -m pytest -q --ignore=tests/engine

test: lint pytest-postgres pytest-sqlite

bench: install
	$(PY) bench/import.py
	$(PY) bench/render.py

# orgenv — two commands: `make run` serves the demo, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/orgenv
HOST ?= 127.0.0.1
PORT ?= 8000
# The access log names the path without its query string: a token wrongly put in a URL
# (refused by the API) must not end up in a log.
ACCESS_LOG_FORMAT := %(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss "%(a)s"

.PHONY: run test test-sqlite test-postgres install env demo lint format docs audit bench bench-scale chromium consumers postgres clean screenshots

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Written once with fresh keys, never overwritten (and never committed).
.env:
	@umask 077; { \
	  echo "SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')"; \
	  echo "FERNET_KEYS=$$($(PY) -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"; \
	  echo "DEBUG=false"; \
	  echo "# notification mails printed by the worker (make run), not sent"; \
	  echo "EMAIL_URL=consolemail://"; \
	} > .env
	@echo "wrote .env with fresh SECRET_KEY and FERNET_KEYS"

env: install .env

demo: env
	$(PY) manage.py migrate --no-input
	$(PY) manage.py demo

run: demo
	$(PY) manage.py collectstatic --no-input --verbosity 0
	@echo "orgenv is serving http://$(HOST):$(PORT)/ — sign in as admin/admin or alice/alice"
	@# One process with threads: the default cache (local memory) is per process, and the
	@# API's rate limits must count every request. Several processes need CACHE_URL=redis://…
	@# Beside it, one background worker (webhooks, mails, periodic tasks). Both run in the
	@# background so that the trap runs at once on Ctrl-C or a TERM to this shell (a shell
	@# runs no trap while a foreground command runs); the worker stops when the server does.
	@$(PY) manage.py db_worker --no-reload & worker=$$!; \
	  $(VENV)/bin/gunicorn config.wsgi --bind $(HOST):$(PORT) --workers 1 --threads 4 \
	    --access-logfile - --access-logformat '$(ACCESS_LOG_FORMAT)' & server=$$!; \
	  trap 'kill $$server $$worker 2>/dev/null' INT TERM; \
	  wait $$server; status=$$?; kill $$server $$worker 2>/dev/null; wait; exit $$status

chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; }

# The dotenv readers tests/test_formats.py checks our dotenv output against: Node (its own
# --env-file and util.parseEnv need 20.12 or later) and npm's dotenv, pinned in package-lock.
consumers:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "installing Node.js and npm for the dotenv reader tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm) >/dev/null; }
	@test -d tests/consumers/node_modules/dotenv || \
	  npm ci --prefix tests/consumers --no-audit --no-fund --silent

postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect 15 main start
	@for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
	  echo "PostgreSQL did not start on 127.0.0.1:5432"; exit 1

# Material for MkDocs prints a notice about MkDocs 2 on every build (docs/developing.md says
# what it means for this site); the build's own warnings still fail it (--strict).
MKDOCS := NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MKDOCS) build --strict --quiet

# The documentation site at http://127.0.0.1:8001/, rebuilt as docs/, mkdocs.yml or the
# README change (port 8000 is make run's).
docs: install
	$(MKDOCS) serve -a 127.0.0.1:8001

format: install
	$(VENV)/bin/ruff format .

# Known vulnerabilities in the installed dependencies (pip-audit, PyPI's advisory data). Run
# only when PyPI's JSON API answers with advisory data: offline, or behind a mirror without
# it, every package would be "not found" and the audit would pass having checked nothing.
AUDIT_PROBE := import json, urllib.request; from importlib.metadata import version; \
  url = "https://pypi.org/pypi/django/" + version("django") + "/json"; \
  json.load(urllib.request.urlopen(url, timeout=10))["vulnerabilities"]
audit: install
	@if $(PY) -c '$(AUDIT_PROBE)' >/dev/null 2>&1; then \
	  $(VENV)/bin/pip-audit --local --skip-editable --progress-spinner off; \
	else \
	  echo "pip-audit: NOT RUN: PyPI's vulnerability data (https://pypi.org/pypi/NAME/VERSION/json)" \
	    "is not reachable from this machine, so the dependencies were not audited."; \
	fi

test-sqlite: install chromium consumers
	env -u DATABASE_URL $(PY) -m pytest

test-postgres: install chromium consumers postgres
	DATABASE_URL=$(PG_URL) $(PY) -m pytest

# The SQLite and PostgreSQL passes run at the same time (each has its own test database;
# about half the wall-clock time of a pass is spent waiting on browsers, servers and sleeps),
# each into its log, printed whole once both have ended.
test: install chromium consumers postgres
	rm -rf artifacts/databases artifacts/test-*.log
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory audit
	@mkdir -p artifacts; echo "running the SQLite and PostgreSQL passes at once" \
	  "(logs: artifacts/test-sqlite.log, artifacts/test-postgres.log)"
	@$(MAKE) --no-print-directory test-sqlite >artifacts/test-sqlite.log 2>&1 & sqlite=$$!; \
	  $(MAKE) --no-print-directory test-postgres >artifacts/test-postgres.log 2>&1 & postgres=$$!; \
	  wait $$sqlite; sqlite_rc=$$?; wait $$postgres; postgres_rc=$$?; \
	  echo "=== SQLite pass (exit $$sqlite_rc)"; cat artifacts/test-sqlite.log; \
	  echo "=== PostgreSQL pass (exit $$postgres_rc)"; cat artifacts/test-postgres.log; \
	  exit $$((sqlite_rc || postgres_rc))

# The workspace tour's pictures (docs/workspace.md): its browser tests, writing docs/screenshots/.
screenshots: install chromium
	ORGENV_DOCS_SCREENSHOTS=1 env -u DATABASE_URL $(PY) -m pytest tests/browser/test_workspace.py -q

# Every page and command at S, M and L on PostgreSQL (docs/scale.md); each size's database is
# generated once (minutes for L) and reused. SIZES="S M L" by default; make bench-scale SIZES=M.
SIZES ?= S M L
bench-scale: install postgres
	$(PY) bench/scale.py --size $(SIZES)

bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >/dev/null
	@# Both benchmarks run; make fails if either missed a target.
	$(PY) bench/masking.py; masking=$$?; $(PY) bench/resolve.py; resolve=$$?; \
	  $(PY) bench/rotate.py; rotate=$$?; exit $$((masking || resolve || rotate))

clean:
	rm -rf $(VENV) staticfiles artifacts .pytest_cache

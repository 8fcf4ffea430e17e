# Bindery developer entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test chromium axe lint typecheck docs unit bench clean server worker deploy serve web screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

## The main job on the embedded default (SQLite under ./.bindery).
demo: $(STAMP)
	$(BIN)/bindery demo

## Everything CI checks: lint, types, the docs site (strict), the whole test suite (SQLite and PostgreSQL,
## browser tests in Chromium, axe-core for their accessibility checks).
test: $(STAMP) chromium axe lint typecheck docs unit

## Debian's Chromium for the console's browser tests (Playwright drives it; no browser download).
chromium:
	@test -x /usr/bin/chromium || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

## axe-core (npm, pinned) for the browser tests' accessibility checks, into the git-ignored node_modules/.
AXE_VERSION := 4.14.1
AXE_STAMP := node_modules/.axe-core-$(AXE_VERSION)
axe: $(AXE_STAMP)
$(AXE_STAMP):
	npm install --prefix . --no-save --no-package-lock --no-audit --no-fund --loglevel=error axe-core@$(AXE_VERSION)
	test -f node_modules/axe-core/axe.min.js
	touch $(AXE_STAMP)

## The docs' console screenshots (docs/screenshots/), from a seeded console in Chromium; not part of `make test`.
screenshots: $(STAMP) chromium axe
	$(BIN)/python -m pytest -p no:xdist -q tests/bindery/web/screenshots.py

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

## The documentation site into ./site; --strict: a broken link, a missing page or one left out of the nav fails
## (not --quiet: it hides the warnings that --strict counts, and the build would pass).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

unit: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadgroup --durations=25

bench: $(STAMP)
	bench/import

## Operations: a Prefect server (on PostgreSQL when PREFECT_API_DATABASE_CONNECTION_URL is set),
## a process worker for the `bindery` pool (flow runs with heartbeats), the deployments of prefect.yaml with the
## crash-recovery and alert automations, or all of it in one process.
## The server's address, and the API every client (deploy, worker, flow runs) calls: one port for all.
SERVER_HOST = $${PREFECT_SERVER_HOST:-127.0.0.1}
SERVER_PORT = $${PREFECT_SERVER_PORT:-4200}
CLIENT_API = PREFECT_API_URL=$${PREFECT_API_URL:-http://127.0.0.1:$(SERVER_PORT)/api}

server: $(STAMP)
	PREFECT_UI_API_URL=$${PREFECT_UI_API_URL:-http://$(SERVER_HOST):$(SERVER_PORT)/api} \
	PREFECT_API_URL=$${PREFECT_API_URL:-http://$(SERVER_HOST):$(SERVER_PORT)/api} \
		$(BIN)/prefect server start --host $(SERVER_HOST) --port $(SERVER_PORT)

worker: $(STAMP)
	$(CLIENT_API) $(BIN)/prefect work-pool create bindery --type process 2>/dev/null || true
	$(CLIENT_API) $(BIN)/bindery worker --pool bindery

deploy: $(STAMP)
	$(CLIENT_API) $(BIN)/prefect work-pool create bindery --type process 2>/dev/null || true
	$(CLIENT_API) BINDERY_PROJECT_DIR=$(CURDIR) $(BIN)/prefect --no-prompt deploy --all
	$(CLIENT_API) $(BIN)/bindery automations
	$(CLIENT_API) $(BIN)/bindery alerts

serve: $(STAMP)
	$(BIN)/python -m bindery.deployments.serve

## The console and HTTP API on http://127.0.0.1:8000 (docs/console.md).
web: $(STAMP)
	$(BIN)/bindery web

clean:
	rm -rf .bindery .pytest_cache .mypy_cache .ruff_cache site

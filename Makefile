# Pastra: `make run` serves the app, `make test` runs the whole suite. Both work from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The google-genai SDKs only speak wss://: `make run` also serves TLS here, with a local
# self-signed certificate (trust it with SSL_CERT_FILE=$(TLS_DIR)/cert.pem).
TLS_PORT ?= 8443
TLS_DIR ?= .local/tls
export DJANGO_SETTINGS_MODULE := pastra_site.settings

.PHONY: run test lint bench soak migrate superuser clean fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	touch $@

$(VENV)/.dev: requirements.lock requirements-dev.lock | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	touch $@ $(VENV)/.runtime

migrate: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput

$(TLS_DIR)/cert.pem: | $(VENV)/.runtime
	$(BIN)/python manage.py local_tls_cert --dir $(TLS_DIR)

run: migrate $(TLS_DIR)/cert.pem
	$(BIN)/daphne -b $(HOST) -p $(PORT) \
		-e ssl:$(TLS_PORT):interface=$(HOST):privateKey=$(TLS_DIR)/key.pem:certKey=$(TLS_DIR)/cert.pem \
		--websocket_timeout 86400 --websocket_connect_timeout 15 \
		--ping-interval 20 --ping-timeout 30 \
		--websocket-max-message-size 1048576 --websocket-max-frame-size 1048576 \
		pastra_site.asgi:application

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The official JS SDK for tests/live/test_js_sdk.py (pinned; skipped without node and npm).
JS_SDK := tests/sdk_js/node_modules/.installed
$(JS_SDK): tests/sdk_js/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix tests/sdk_js --silent --no-audit --no-fund && touch $@; \
	else echo "npm not found: the JS SDK tests will skip"; fi

# Browser tests run in their own pytest process: they allow sync ORM calls in Playwright's loop.
test: $(VENV)/.dev $(JS_SDK) lint
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest -m "not e2e"
	$(BIN)/pytest -m e2e tests/e2e

bench: $(VENV)/.dev
	$(BIN)/python -m bench $(if $(QUICK),--quick,)

# 30 minutes, 200 sessions (half per path) reconnecting every 5 min: RSS, fds and tasks stay
# flat (docs/performance.md). Not in CI. SOAK_MINUTES / SOAK_SESSIONS override.
SOAK_MINUTES ?= 30
SOAK_SESSIONS ?= 200
soak: $(VENV)/.dev
	$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES) --sessions $(SOAK_SESSIONS)

superuser: migrate
	$(BIN)/python manage.py createsuperuser

clean:
	rm -rf $(VENV) static-collected .pytest_cache .ruff_cache .local tests/sdk_js/node_modules

# The long fuzz run, by hand (docs/security.md, "Fuzzing"): random cases, thousands per socket;
# failures are kept in .pytest_cache/hypothesis and replayed first next time. `make test` runs
# the quick, derandomized profile.
fuzz: $(VENV)/.dev
	PASTRA_FUZZ=long $(BIN)/pytest tests/fuzz

# etomcrm: two commands on a fresh machine — `make demo`, then `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint serve bench clean

$(BIN)/etomcrm: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; etomcrm needs Python 3.11 (make PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/etomcrm

# Creates the SQLite database (etomcrm.db here), loads the BMW Extranet scenario and
# shows it. Set ETOMCRM_DATABASE_URL to use PostgreSQL instead.
demo: install
	$(BIN)/etomcrm db upgrade
	$(BIN)/etomcrm demo

# The browser tests drive Debian's Chromium through Playwright for Python; nothing
# downloads a browser build of its own. Installed here when missing.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) apt-get install -y chromium

# Every test, each on SQLite and on PostgreSQL, then lint, types and the layers.
test: install $(CHROMIUM)
	./scripts/ensure-postgres.sh
	$(BIN)/pytest -n 2 --dist loadgroup
	$(MAKE) lint

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

serve: install
	$(BIN)/etomcrm serve --workers 2

clean:
	rm -rf $(VENV) etomcrm.db etomcrm.db-shm etomcrm.db-wal

# The customer API benchmark (bench/README.md): both databases, about 20 minutes.
bench: install
	bench/run_customer_api.sh

# The Fulfillment flows benchmark (bench/README.md): durable against plain, both databases.
.PHONY: bench-flows
bench-flows: install
	$(BIN)/python bench/run_flows.py

#!/usr/bin/env bash
# Customer API benchmark, both databases by default; arguments go to the Python runner.
#   bench/run_customer_api.sh                 # SQLite and PostgreSQL, 100,000 customers
#   bench/run_customer_api.sh --db sqlite     # one database
# Needs: the project's virtualenv (.venv), PostgreSQL on 127.0.0.1:5432 (user postgres,
# trust auth) for --db postgresql/both; installs wrk with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }
fi
exec .venv/bin/python bench/run_customer_api.py "$@"

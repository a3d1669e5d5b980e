#!/usr/bin/env bash
# Install Timestep with its test tools into .venv, make sure the local PostgreSQL is up,
# then run the test suite, the linter and the type checker. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]' -e tests/plugins/timestep-example

bash scripts/ensure-postgres.sh

# PostgreSQL tests must run here, never skip silently.
TIMESTEP_REQUIRE_POSTGRES=1 .venv/bin/python -m pytest "$@"
.venv/bin/ruff check timestep tests bench
.venv/bin/ruff format --check timestep tests bench
.venv/bin/mypy

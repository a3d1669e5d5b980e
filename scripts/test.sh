#!/usr/bin/env bash
# Install Timestep, its plugins and its test tools into .venv, make sure the local PostgreSQL is
# up, then run the test suite (core and plugins), the linter and the type checker.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PLUGINS=(plugins/timestep-firecrawl plugins/timestep-ollama)

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
install=(-e '.[dev,docs]' -e tests/plugins/timestep-example)
for plugin in "${PLUGINS[@]}"; do install+=(-e "$plugin[test]"); done
.venv/bin/python -m pip install --quiet "${install[@]}"

bash scripts/ensure-postgres.sh
# The cross-language tests drive the real JS Agents SDK (Node 20+, versions pinned in tests/js).
npm ci --prefix tests/js --no-audit --no-fund --loglevel=error

# PostgreSQL tests must run here, never skip silently.
TIMESTEP_REQUIRE_POSTGRES=1 .venv/bin/python -m pytest "$@"
.venv/bin/ruff check timestep tests bench plugins examples
.venv/bin/ruff format --check timestep tests bench plugins examples
.venv/bin/mypy
for plugin in "${PLUGINS[@]}"; do (cd "$plugin" && ../../.venv/bin/mypy); done

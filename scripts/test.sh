#!/usr/bin/env bash
# Run PyParrot's tests (sets up .venv first if needed). Extra arguments go to pytest.
# Without arguments: every test on one Redis, then the bus suites (e2e, chaos, live) once
# more on a local Redis Cluster of 3 primaries.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
if [ "$#" -eq 0 ]; then
  .venv/bin/python -m pytest --redis-cluster 3 tests/e2e tests/chaos tests/gateway/test_live*.py
fi

#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing (.venv, mosquitto, the
# detector models), lints, then runs pytest. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ -f models/build_models.py ]; then
  .venv/bin/python models/build_models.py   # skips itself when the cached models pass their smoke test
fi
echo "[test] ruff"
.venv/bin/ruff check edge hub tests bench models
echo "[test] mypy (strict: the contract, the node's link and config)"
.venv/bin/mypy
echo "[test] pytest"
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"

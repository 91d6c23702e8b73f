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
echo "[test] mypy (strict: the contract, the node's link and config, the hub's transport, ingest, store and API)"
.venv/bin/mypy
echo "[test] console types (hub/web: // @ts-check, tsc --noEmit; types generated from contract.schema.json)"
node tools/web/gen-types.mjs --check
tools/web/node_modules/.bin/tsc -p tools/web/tsconfig.json
echo "[test] pytest"
rc=0
.venv/bin/python -m pytest -p no:cacheprovider "$@" || rc=$?
# The node on its real architecture (arm64 Bookworm under qemu-user; ~10 min from nothing, ~4 min with
# its cache): with the whole suite only, not when pytest was given a selection. It runs after pytest
# even when pytest failed, so one CI run reports both. PINGAN_ARM64=0 skips it (refused with CI=true).
if [ $# = 0 ]; then
  echo "[test] arm64 check (scripts/arm64-check.sh)"
  bash scripts/arm64-check.sh || rc=$?
fi
exit $rc

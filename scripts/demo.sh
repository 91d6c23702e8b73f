#!/usr/bin/env bash
# A whole street on this machine: broker, hub, 20 simulated alarm poles. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
PINGAN_SKIP_BROWSER=1 bash scripts/bootstrap.sh
exec .venv/bin/pingan-hub demo "$@"

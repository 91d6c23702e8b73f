#!/bin/bash
# The inside of the arm64 check: runs in the arm64 Bookworm chroot under qemu-user, started by
# scripts/arm64-check.sh (which copies the working tree to /src and starts mosquitto at $BROKER_URL).
# Every step appends "name<TAB>seconds<TAB>result<TAB>note" to $SUMMARY for the host's summary.
set -euo pipefail
: "${BROKER_URL:?}" "${SUMMARY:?}"
cd /src
export PIP_NO_INPUT=1 GPIOZERO_PIN_FACTORY=mock  # .pyc files are written: the rootfs is a cache, and emulated compiling is slow
DOOR=/opt/pingan-door
POLE=/opt/pingan-pole
# What the edge unit tests import beyond the node's own extras: pytest (+ timeout, as CI's suite
# uses), httpx (tests/conftest.py imports it at the top).
TEST_TOOLS=(pytest pytest-timeout httpx)
# The wheels a door must not carry (issue 23, part 4): vision, video, the hub's server.
HEAVY="numpy cv2 onnxruntime av aiortc aioice fastapi sqlalchemy uvicorn"

# Edge unit tests that need no hub, by file name (found wherever they live under tests/, so a move
# into tests/edge/ keeps working; a name that is gone fails the check: update the list then).
# The door's set runs in the door venv (pyserial, no numpy); the pole's needs OpenCV (snapshots).
DOOR_TESTS="test_protocol.py test_config.py test_config_store.py test_aio.py test_outbox.py
            test_power_loss.py test_fingerprint.py test_door.py"
# Not node-only tests: a door with a camera (snapshot of a forced door) needs the pole's OpenCV too;
# the hub's settings error runs `hub.cli serve` (the hub extra).
DOOR_DESELECT=(--deselect "$(find tests -name test_door.py | head -1)::test_forced_with_camera_has_snapshot"
               --deselect "$(find tests -name test_config.py | head -1)::test_hub_settings_error_is_one_line")
POLE_TESTS="test_alarm_post.py test_disk_full.py"
DOOR_TESTS=$(echo $DOOR_TESTS)  # one line, single spaces

STEP=""; T=0
begin() { STEP=$1; T=$(date +%s); echo "[arm64:inside] --- $1"; }
end() { printf '%s\t%s\tok\t%s\n' "$STEP" "$(( $(date +%s) - T ))" "${1:-}" >>"$SUMMARY"; STEP=""; }
on_exit() {
  local rc=$?
  [ -n "$STEP" ] && printf '%s\t%s\tFAILED\t\n' "$STEP" "$(( $(date +%s) - T ))" >>"$SUMMARY"
  exit $rc
}
trap on_exit EXIT

# pip's wheel cache lives in the rootfs (/root/.cache/pip), so a re-run downloads nothing; each run
# still makes fresh venvs and installs from the working tree, which is what is being proved.
venv() {
  rm -rf "$1"
  python3 -m venv "$1"
}

# The two installs run side by side (2 cores; emulated pip is CPU-bound). --no-compile: pip would
# byte-compile every installed file under emulation (a minute and more); Python compiles what is
# imported. --only-binary=:all:: every dependency must be an aarch64 wheel (a Pi must not compile
# anything); the project itself is still built from the working tree.
PIP=(pip install -q --no-compile --only-binary=:all:)
begin "door + pole venvs side by side: pip install '.[door]' / '.[pole]', each + ${TEST_TOOLS[*]} (Python $(python3 -c 'import platform; print(platform.python_version(), platform.machine())'))"
venv $DOOR
venv $POLE
$DOOR/bin/"${PIP[@]}" '.[door]' "${TEST_TOOLS[@]}" >/tmp/pip-door.log 2>&1 &
door_pip=$!
rc=0
$POLE/bin/"${PIP[@]}" '.[pole]' "${TEST_TOOLS[@]}" >/tmp/pip-pole.log 2>&1 || rc=$?
wait $door_pip || { cat /tmp/pip-door.log; exit 1; }
[ $rc = 0 ] || { cat /tmp/pip-pole.log; exit 1; }
end "door: $($DOOR/bin/pip list --format=freeze 2>/dev/null | wc -l) distributions, $(du -sm $DOOR | cut -f1) MB; pole: $($POLE/bin/pip list --format=freeze 2>/dev/null | wc -l) distributions, $(du -sm $POLE | cut -f1) MB"

# (the test tools sit in the door venv too; they bring none of these, so what holds here holds for pingan[door])
begin "door venv holds none of: $HEAVY"
$DOOR/bin/python - $HEAVY <<'EOF'
import importlib.util, sys
found = [m for m in sys.argv[1:] if importlib.util.find_spec(m) is not None]
if found:
    sys.exit(f"pingan[door] brought {found}: a door node must not carry vision, video or hub wheels")
EOF
end

# From here on every check runs even when an earlier one failed, so one run reports them all;
# the exit status is non-zero when any failed.
FAILURES=0
# check NAME CMD...: one check (a single command: errexit does not reach into a function called
# under ||, so functions used here return their own status); its note is the last line of $NOTE.
check() {
  local name=$1 rc=0 t; shift
  t=$(date +%s); NOTE=/tmp/arm64-note; : >$NOTE
  echo "[arm64:inside] --- $name"
  "$@" || rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$(( $(date +%s) - t ))" "$([ $rc = 0 ] && echo ok || echo FAILED)" \
    "$(tail -1 $NOTE)" >>"$SUMMARY"
  [ $rc = 0 ] || FAILURES=$((FAILURES + 1))
}

check_configs() {
  local f bin n=0
  for f in firmware_config/*.example.yaml; do
    # each example with the install its kind gets on a real node
    if grep -q '^  kind: rental_door' "$f"; then bin=$DOOR/bin; else bin=$POLE/bin; fi
    $bin/pingan-edge check "$f" >/dev/null || { echo "pingan-edge check $f failed" >&2; return 1; }
    echo "  ok  $f ($(basename "$(dirname "$bin")"))"
    n=$((n + 1))
  done
  [ $n -gt 0 ] || { echo "no firmware_config/*.example.yaml found" >&2; return 1; }
  echo "$n configs" >$NOTE
}
check "pingan-edge check firmware_config/*.example.yaml" check_configs
check "door node (pingan[door]) + reader simulator on a pty + mosquitto: a finger denied, seen at the broker" \
  $DOOR/bin/python scripts/arm64/nodes.py door --broker "$BROKER_URL"
check "pole node (pingan[pole]) + mock pins + mosquitto: button pressed, alarm + snapshot seen at the broker" \
  $POLE/bin/python scripts/arm64/nodes.py pole --broker "$BROKER_URL"
check "onnxruntime session on the Cortex-A72 cpuinfo (pole venv)" $POLE/bin/python scripts/arm64/nodes.py onnx

# files NAMES...: the paths of these test files wherever they are under tests/; a missing one fails.
files() {
  local name p
  for name in "$@"; do
    p=$(find tests -name "$name" -not -path '*/__pycache__/*' | head -1)
    [ -n "$p" ] || { echo "edge test $name is gone: update the lists in scripts/arm64/inside.sh" >&2; return 1; }
    echo "$p"
  done
}
# run_tests VENV NAMES [pytest args]: pytest's own count line becomes the note; its exit 5 (nothing
# collected) is a failure like any other.
run_tests() {
  local venv=$1 names=$2 list rc=0; shift 2
  list=$(files $names) || return 1
  mapfile -t paths <<<"$list"
  $venv/bin/python -m pytest -p no:cacheprovider -q -o addopts= --timeout=300 "${paths[@]}" "$@" \
    >/tmp/pytest.log 2>&1 || rc=$?
  tail -25 /tmp/pytest.log
  grep -E '(passed|failed|error|no tests ran).* in [0-9.]+s' /tmp/pytest.log | tail -1 | tr -d '=' | xargs >$NOTE
  return $rc
}

if [ -n "${PINGAN_ARM64_TESTS:-}" ]; then  # e.g. PINGAN_ARM64_TESTS=test_door.py to run just that one
  DOOR_TESTS=$(for t in $PINGAN_ARM64_TESTS; do case " $DOOR_TESTS " in *" $t "*) echo "$t";; esac; done)
  POLE_TESTS=$(for t in $PINGAN_ARM64_TESTS; do case " $POLE_TESTS " in *" $t "*) echo "$t";; esac; done)
fi
[ -z "${DOOR_TESTS// /}" ] || check "edge unit tests, door venv: $(echo $DOOR_TESTS)" \
  run_tests $DOOR "$DOOR_TESTS" "${DOOR_DESELECT[@]}"
[ -z "${POLE_TESTS// /}" ] || check "edge unit tests, pole venv: $(echo $POLE_TESTS)" run_tests $POLE "$POLE_TESTS"

[ $FAILURES = 0 ] || { echo "[arm64:inside] $FAILURES check(s) failed" >&2; exit 1; }
